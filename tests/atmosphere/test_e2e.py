"""End-to-end against a real PDS: alice publishes, bob loads by handle and reads exactly what was written."""

from __future__ import annotations

import logging
import os
import pathlib
import re
import shutil
import stat

import numpy as np
import pytest

import atdata
from atdata import NDArray
from atdata._wire.schema_json import schema_record
from atdata.atmosphere import (
    Atmosphere,
    CodeRef,
    SchemaPublisher,
    _repocalls,
    list_datasets,
    list_lenses,
    list_schemas,
    load_remote,
    publish_dataset,
    publish_lens,
    publish_schema,
)
from atdata.atmosphere._cid import blob_cid, record_cid
from atdata.atmosphere._records import ENTRY, SCHEMA
from atdata.atmosphere._resolve import get_record, iter_records, parse_at_uri

pytestmark = pytest.mark.services


@atdata.packable
class Reading:
    idx: int
    station: str
    values: NDArray


def _samples(n: int, width: int = 8) -> list[Reading]:
    return [
        Reading(idx=i, station=f"st-{i % 3}", values=np.arange(width, dtype="f4") * i)
        for i in range(n)
    ]


def _write(tmp_path, n: int, maxcount: int, width: int = 8) -> atdata.Dataset:
    return atdata.write_samples(
        _samples(n, width), str(tmp_path / "r-%04d.tar"), maxcount=maxcount, key="index"
    )


def _same(got: list, n: int, width: int = 8) -> None:
    assert [s.idx for s in got] == list(range(n))
    assert [s.station for s in got] == [f"st-{i % 3}" for i in range(n)]
    for s in got:
        np.testing.assert_array_equal(s.values, np.arange(width, dtype="f4") * s.idx)


def _check_cid(atmo: Atmosphere, uri: str, cid: str) -> None:
    repo, coll, rkey = parse_at_uri(uri)
    value, server_cid = get_record(atmo.pds, repo, coll, rkey)
    assert server_cid == cid
    assert record_cid(value) == cid
    assert atdata.verify_cid(atdata.generate_cid(value), value)


def test_publish_blobs_http_lens_then_bob_loads(pds, publisher, bob, http_dir, tmp_path):
    alice, alice_atmo = (
        publisher  # a fresh repository, so discovery lists exactly what is published here
    )
    schema = publish_schema(alice_atmo, Reading, "1.0.0", description="station readings")
    assert re.fullmatch(rf"at://{alice['did']}/{SCHEMA}/[2-7a-z]{{13}}", schema.uri)  # a TID
    _check_cid(alice_atmo, schema.uri, schema.cid)
    again = publish_schema(alice_atmo, Reading, "1.0.0")
    assert (again.created, again.uri, again.cid) == (False, schema.uri, schema.cid)

    # 1) shards as blobs
    ds = _write(tmp_path / "b", 23, maxcount=10) if (tmp_path / "b").mkdir() is None else None
    infos = ds.list_shard_infos()
    publish_blobs = {
        "shards": [i.path for i in infos],
        "version": "1.0.0",
        "num_samples": 23,
        "metadata": {"mean": 0.25, "note": "floats live in msgpack metadata"},
    }
    pub = publish_dataset(alice_atmo, "readings", schema.uri, **publish_blobs)
    assert len(pub.blobs) == 3
    assert [blob_cid(pathlib.Path(i.path).read_bytes()) for i in infos] == pub.blobs
    _check_cid(alice_atmo, pub.uri, pub.cid)
    rerun = publish_dataset(alice_atmo, "readings", schema.uri, **publish_blobs)
    assert (rerun.created, rerun.uri) == (False, pub.uri)

    # 2) shards at HTTP URLs served from loopback
    root, base = http_dir
    hds = _write(tmp_path / "h", 7, maxcount=4) if (tmp_path / "h").mkdir() is None else None
    urls, shas = [], []
    for info in hds.list_shard_infos():
        shutil.copy(info.path, root / os.path.basename(info.path))
        urls.append(f"{base}/{os.path.basename(info.path)}")
        shas.append(info.sha256)
    hpub = publish_dataset(
        alice_atmo, "readings-http", schema.uri, shards=urls, sha256=shas, storage="http"
    )
    _check_cid(alice_atmo, hpub.uri, hpub.cid)

    # 3) a lens between two schema versions
    s2 = publish_schema(alice_atmo, Reading, "1.1.0")
    code = CodeRef(
        "https://github.com/example/lenses",
        "0123456789abcdef0123456789abcdef01234567",
        "lenses/r.py:up",
    )
    lens = publish_lens(
        alice_atmo, "reading-up", schema.uri, s2.uri, code, code, description="no-op"
    )
    _check_cid(alice_atmo, lens.uri, lens.cid)
    assert (
        publish_lens(
            alice_atmo, "reading-up", schema.uri, s2.uri, code, code, description="no-op"
        ).created
        is False
    )

    # bob: his own session, loads by handle; the type is rebuilt from the schema record
    bob_atmo = Atmosphere.login(bob["handle"], bob["password"], pds.url, save=False)
    assert bob_atmo.did == bob["did"]
    got = list(load_remote(f"@{alice['handle']}/readings"))
    _same(got, 23)
    assert type(got[0]).__name__ == "Reading" and type(got[0]) is not Reading
    _same(list(load_remote(f"@{alice['did']}/readings@1.0.0", sample_type=Reading)), 23)
    _same(list(load_remote(f"@{alice['handle']}/readings-http", sample_type=Reading)), 7)
    dd = atdata.load_dataset(f"@{alice['handle']}/readings", sample_type=Reading)
    assert isinstance(dd, atdata.DatasetDict) and list(dd) == ["train"]  # unsplit data is train
    _same(list(dd["train"]), 23)
    _same(list(atdata.load_dataset(f"@{alice['handle']}/readings", split="train")), 23)
    ds_remote = load_remote(f"@{alice['handle']}/readings", sample_type=Reading)
    assert len(ds_remote) == 23  # from the entry record's size.samples: no blob is fetched
    assert ds_remote.count() == 23 and len(ds_remote) == 23 and ds_remote[17].idx == 17

    # discovery
    names = sorted(e.name for e in list_datasets(alice["handle"]))
    assert names == ["readings", "readings-http"]
    entry = next(e for e in list_datasets(alice["handle"]) if e.name == "readings")
    assert entry.metadata == {
        "mean": 0.25,
        "note": "floats live in msgpack metadata",
        "version": "1.0.0",
    }
    assert entry.value["size"] == {"bytes": sum(i.size for i in infos), "shards": 3, "samples": 23}
    assert sorted(v["version"] for _u, _c, v in list_schemas(alice["handle"])) == ["1.0.0", "1.1.0"]
    (lr,) = list_lenses(alice["handle"])
    assert (lr.name, lr.getter.commit, lr.getter.path) == ("reading-up", code.commit, code.path)
    assert not hasattr(lr, "get")  # data only: nothing to execute until bound to local code
    view = lr.bind(Reading, Reading, lambda r: r)
    assert view.get(got[0]) is got[0]


def test_checksum_mismatch_is_an_integrity_error(pds, alice, alice_atmo, http_dir, tmp_path):
    schema = publish_schema(alice_atmo, Reading, "1.0.0")
    root, base = http_dir
    ds = _write(tmp_path, 3, maxcount=10)
    (info,) = ds.list_shard_infos()
    shutil.copy(info.path, root / "tampered.tar")
    publish_dataset(
        alice_atmo,
        "tampered",
        schema.uri,
        shards=[f"{base}/tampered.tar"],
        sha256=["0" * 64],
        storage="http",
    )
    with pytest.raises(atdata.IntegrityError, match=r"sha256 mismatch for shard .*tampered\.tar"):
        list(load_remote(f"@{alice['handle']}/tampered", sample_type=Reading))


def test_blob_limit_splits_shards_and_refuses_oversized_samples(pds, alice, alice_atmo, tmp_path):
    schema = publish_schema(alice_atmo, Reading, "1.0.0")
    ds = _write(tmp_path, 40, maxcount=40, width=2000)  # one shard of ~330 KB
    (info,) = ds.list_shard_infos()
    pub = publish_dataset(
        alice_atmo, "split", schema.uri, shards=[info.path], max_blob_size=100_000
    )
    assert len(pub.blobs) == 4  # ~8.7 KB samples, 11 per 100 KB blob
    _same(list(load_remote(f"@{alice['handle']}/split", sample_type=Reading)), 40, 2000)

    big = (
        _write(tmp_path / "big", 1, maxcount=1, width=40_000)
        if (tmp_path / "big").mkdir() is None
        else None
    )
    before = [u for u, _c, v in iter_records(alice_atmo.pds, alice_atmo.did, ENTRY)]
    with pytest.raises(atdata.ConfigError, match="more than the PDS blob limit of 100000 bytes"):
        publish_dataset(
            alice_atmo,
            "too-big",
            schema.uri,
            shards=[big.list_shard_infos()[0].path],
            max_blob_size=100_000,
        )
    after = [u for u, _c, v in iter_records(alice_atmo.pds, alice_atmo.did, ENTRY)]
    assert after == before


def test_pagination_reads_every_page(pds, alice_atmo):
    for i in range(7):
        alice_atmo.put_record(
            "science.alt.dataset.label",
            f"page-{i}",
            {
                "$type": "science.alt.dataset.label",
                "name": f"l{i}",
                "datasetUri": f"at://{alice_atmo.did}/science.alt.dataset.entry/none",
                "createdAt": "2025-01-01T00:00:00Z",
            },
        )
    got = [
        u
        for u, _c, _v in iter_records(
            alice_atmo.pds, alice_atmo.did, "science.alt.dataset.label", page_size=2
        )
    ]
    pages = [u for u in got if "/page-" in u]
    assert len(pages) == len(set(pages)) == 7  # four pages of two, no duplicates, none missing
    assert sorted(pages) == [
        f"at://{alice_atmo.did}/science.alt.dataset.label/page-{i}" for i in range(7)
    ]
    own = list(  # the account's own records through its session, pages of two
        _repocalls.own_records(
            alice_atmo._call, alice_atmo._client, alice_atmo.did, "science.alt.dataset.label", 2
        )
    )
    assert own == list(
        iter_records(alice_atmo.pds, alice_atmo.did, "science.alt.dataset.label", page_size=100)
    )


def test_schema_keys_tid_legacy_and_explicit(pds, publisher):
    _acct, atmo = publisher
    legacy = schema_record(Reading, "1.0.0", None, name="Reading")
    old = atmo.put_record(SCHEMA, "reading:1.0.0", legacy)  # how earlier releases wrote it
    found = publish_schema(atmo, Reading, "1.0.0")
    assert (found.created, found.uri) == (False, str(old))  # found by listing, not rewritten

    @atdata.packable
    class Reading2:
        value: int

    with pytest.raises(atdata.ConfigError, match=r"already published at .*reading:1\.0\.0"):
        publish_schema(atmo, Reading2, "1.0.0", name="Reading")
    new = publish_schema(atmo, Reading, "2.0.0")
    assert new.created and re.fullmatch(rf"at://{atmo.did}/{SCHEMA}/[2-7a-z]{{13}}", new.uri)
    pinned = SchemaPublisher(atmo).publish(Reading, version="3.0.0", rkey="pinned")
    assert str(pinned) == f"at://{atmo.did}/{SCHEMA}/pinned"
    assert SchemaPublisher(atmo).publish(Reading, version="3.0.0", rkey="pinned") == pinned
    keys = sorted(u.rsplit("/", 1)[1] for u, _c, _v in atmo.records(SCHEMA))
    assert len(keys) == 3 and "reading:1.0.0" in keys and "pinned" in keys


def test_floats_rejected_before_reaching_the_pds(alice_atmo):
    from atdata.atmosphere import entry_record, storage_http

    with pytest.raises(atdata.SchemaError, match=r"entry record.size.bytes is the float 1.5"):
        entry_record(
            "x",
            "at://d/c/r",
            storage_http([("https://e.org/a.tar", "a" * 64)]),
            size={"bytes": 1.5},
        )
    with pytest.raises(atdata.SchemaError, match="no floats"):
        record_cid({"score": 0.5})
    label = {
        "$type": "science.alt.dataset.label",
        "name": "f",
        "score": 0.5,
        "createdAt": "2025-01-01T00:00:00Z",
    }
    with pytest.raises(
        atdata.SchemaError, match=r"science.alt.dataset.label record.score is the float 0.5"
    ):
        alice_atmo.create_record("science.alt.dataset.label", label)
    # and the PDS itself refuses them: the constraint is the protocol's, not ours
    with pytest.raises(Exception, match="Expected one of null, boolean, integer"):
        alice_atmo._client.com.atproto.repo.create_record(
            {"repo": alice_atmo.did, "collection": "science.alt.dataset.label", "record": label}
        )


def test_session_saved_private_refreshed_and_revoked(pds, alice, session_path, caplog):
    caplog.set_level(logging.DEBUG)
    atmo = Atmosphere.login(
        f"@{alice['handle']}", alice["password"], session_path=session_path, save=True
    )  # PDS resolved
    assert atmo.pds == pds.url.replace("127.0.0.1", "localhost")
    assert stat.S_IMODE(os.stat(session_path).st_mode) == 0o600
    first = session_path.read_text()
    tokens = [atmo._client._session.access_jwt, atmo._client._session.refresh_jwt]

    resumed = Atmosphere.resume(session_path)
    assert (resumed.did, resumed.handle) == (alice["did"], alice["handle"])
    resumed.refresh()
    assert session_path.read_text() != first  # refreshed tokens saved
    assert stat.S_IMODE(os.stat(session_path).st_mode) == 0o600
    tokens += [resumed._client._session.access_jwt, resumed._client._session.refresh_jwt]
    assert (
        resumed.create_record(
            "science.alt.dataset.label",
            {
                "$type": "science.alt.dataset.label",
                "name": "x",
                "createdAt": "2025-01-01T00:00:00Z",
            },
        ).authority
        == alice["did"]
    )

    # the first session's refresh token was used up by nothing; revoke the resumed one
    stale = session_path.read_text()
    resumed.logout()
    assert not session_path.exists()
    session_path.write_text(stale)
    gone = Atmosphere.resume(session_path)
    with pytest.raises(
        atdata.AuthenticationError, match=r"expired or revoked.*log in again"
    ) as info:
        gone.refresh()

    with pytest.raises(
        atdata.AuthenticationError, match="check the handle and the app password"
    ) as bad:
        Atmosphere.login(alice["handle"], "wrong-" + alice["password"], pds.url, save=False)

    from atproto_client.exceptions import AtProtocolError  # upstream documents these raising it

    assert isinstance(info.value, AtProtocolError) and isinstance(bad.value, AtProtocolError)
    texts = [repr(atmo), repr(resumed), str(info.value), str(bad.value), caplog.text]
    for secret in [alice["password"], *tokens]:
        assert all(secret not in t for t in texts)
    assert (
        repr(atmo)
        == f"Atmosphere(handle={alice['handle']!r}, did={alice['did']!r}, pds={atmo.pds!r})"
    )


def test_sdk_failures_are_atdata_errors_and_the_sdks(alice_atmo):
    from atproto_client.exceptions import AtProtocolError

    missing = f"at://{alice_atmo.did}/science.alt.dataset.label/no-such-rkey"
    from atdata._errors import RecordNotFoundError

    with pytest.raises(RecordNotFoundError) as nf:
        alice_atmo.get_record(missing)
    assert isinstance(nf.value, KeyError) and isinstance(nf.value, AtProtocolError)
    assert "no-such-rkey" in str(nf.value) or "Could not locate record" in str(nf.value)
    with pytest.raises(atdata.StorageError) as bad:
        alice_atmo.create_record("science.alt.dataset.label", {"$type": 7}, validate=True)
    assert isinstance(bad.value, AtProtocolError) and not isinstance(bad.value, KeyError)
    assert f"@{alice_atmo.handle}" in str(bad.value)


def test_not_logged_in_message(tmp_path):
    with pytest.raises(atdata.AuthenticationError, match=r"not logged in .*atdata login"):
        Atmosphere.resume(tmp_path / "none.json")


def test_promote_entry_idempotent_and_completes_after_a_crash(
    pds, alice, alice_atmo, tmp_path, monkeypatch
):
    from atdata.atmosphere import promote_entry
    from atdata.index import Index

    idx = Index(path=str(tmp_path / "index.db"))
    entry = idx.write_samples(_samples(12), name="promoted", maxcount=5)
    entries_before = list(iter_records(alice_atmo.pds, alice_atmo.did, ENTRY))

    calls = {"n": 0}
    real_create = alice_atmo.create_record

    def crash(*a, **kw):
        calls["n"] += 1
        raise atdata.StorageError("simulated crash after the blob uploads")

    monkeypatch.setattr(alice_atmo, "create_record", crash)
    with pytest.raises(atdata.StorageError, match="simulated crash"):
        promote_entry(idx, "promoted", alice_atmo)
    assert calls["n"] == 1
    monkeypatch.setattr(alice_atmo, "create_record", real_create)

    res = idx.promote_entry("promoted", alice_atmo)
    assert res.created and len(res.blobs) == 3
    assert re.fullmatch(rf"at://{alice['did']}/{SCHEMA}/[2-7a-z]{{13}}", res.schema_uri)
    assert res.uris == [res.schema_uri, res.entry_uri]
    _check_cid(alice_atmo, res.entry_uri, res.entry_cid)
    again = promote_entry(idx, "promoted", alice_atmo)
    assert (again.created, again.entry_uri, again.entry_cid, again.blobs) == (
        False,
        res.entry_uri,
        res.entry_cid,
        res.blobs,
    )
    after = list(iter_records(alice_atmo.pds, alice_atmo.did, ENTRY))
    assert len(after) == len(entries_before) + 1
    got = list(load_remote(f"@{alice['handle']}/promoted@{entry.version}"))
    _same(got, 12)


def test_s3_storage_loads_through_boto3_with_checksums(
    pds, alice, alice_atmo, s3_endpoint, tmp_path, monkeypatch
):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="atmo")
    ds = _write(tmp_path, 9, maxcount=4)
    keys, shas = [], []
    for info in ds.list_shard_infos():
        key = f"runs/{os.path.basename(info.path)}"
        s3.upload_file(info.path, "atmo", key)
        keys.append(key)
        shas.append(info.sha256)
    schema = publish_schema(alice_atmo, Reading, "1.0.0")
    kw = {"storage": "s3", "bucket": "atmo", "endpoint": s3_endpoint, "region": "us-east-1"}
    pub = publish_dataset(alice_atmo, "readings-s3", schema.uri, shards=keys, sha256=shas, **kw)
    _check_cid(alice_atmo, pub.uri, pub.cid)
    # a record's http endpoint is refused until the reader trusts it (credentials go there)
    with pytest.raises(atdata.StorageError, match=r"plain http; refusing it"):
        load_remote(f"@{alice['handle']}/readings-s3", sample_type=Reading)
    monkeypatch.setenv("ATDATA_S3_TRUSTED_ENDPOINTS", s3_endpoint)
    _same(list(load_remote(f"@{alice['handle']}/readings-s3", sample_type=Reading)), 9)

    publish_dataset(alice_atmo, "bad-s3", schema.uri, shards=keys[:1], sha256=["1" * 64], **kw)
    with pytest.raises(atdata.IntegrityError, match=r"sha256 mismatch for shard s3://atmo/runs/"):
        list(load_remote(f"@{alice['handle']}/bad-s3", sample_type=Reading))


def test_splits_and_versions_select_entries(pds, publisher, http_dir, tmp_path):
    acct, atmo = publisher
    root, base = http_dir
    schema = publish_schema(atmo, Reading, "1.0.0")
    for split, n in (("train", 5), ("test", 2)):
        (tmp_path / split).mkdir()
        ds = _write(tmp_path / split, n, maxcount=10)
        (info,) = ds.list_shard_infos()
        shutil.copy(info.path, root / f"{split}.tar")
        for version in ("1.0.0", "2.0.0"):
            publish_dataset(
                atmo, "splits", schema.uri, shards=[f"{base}/{split}.tar"], sha256=[info.sha256],
                storage="http", split=split, version=version,
            )  # fmt: skip
    h = acct["handle"]
    assert load_remote(f"@{h}/splits", Reading, split="train").count() == 5
    assert load_remote(f"@{h}/splits@1.0.0", Reading, split="test").count() == 2
    assert sorted((e.version, e.split) for e in list_datasets(h)) == [
        ("1.0.0", "test"), ("1.0.0", "train"), ("2.0.0", "test"), ("2.0.0", "train"),
    ]  # fmt: skip
    with pytest.raises(
        atdata.SplitNotFoundError, match=r"has no split 'val' \(splits: test, train\)"
    ):
        load_remote(f"@{h}/splits", Reading, split="val")
    with pytest.raises(atdata.StorageError, match=r"has no version '3\.0\.0'"):
        load_remote(f"@{h}/splits@3.0.0", Reading)
    with pytest.raises(atdata.StorageError, match=r"has published no dataset named 'nope'"):
        load_remote(f"@{h}/nope", Reading)
