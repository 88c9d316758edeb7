"""The documented managed-side API: Index return types and methods, entries, stores, sources,
repositories, providers, search, logging and the top-level names (issue 10, items 1, 5, 6)."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

import atdata
import atdata.local
from atdata.index import Index
from tests._index_backends import REDIS_URL, port_open
from tests._services import require_service


@atdata.packable
class Pt:
    """A point with a name."""

    name: str
    value: int


@atdata.packable
class Arr:
    data: atdata.NDArray
    label: str


def _pts(n, start=0):
    return [Pt(name=f"p{i}", value=i) for i in range(start, start + n)]


@pytest.fixture
def index(tmp_path, monkeypatch):
    monkeypatch.setenv("ATDATA_HOME", str(tmp_path / "home"))
    return Index(path=str(tmp_path / "idx" / "index.db"), atmosphere=None)


@pytest.fixture
def redis_client():
    if not port_open(6379):
        require_service("Redis", "nothing listens on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"atdata-test-{uuid.uuid4().hex[:10]}:"
    yield client, prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


# -- LocalDiskStore --------------------------------------------------------------------------
def test_local_disk_store_defaults_and_root(tmp_path, monkeypatch):
    monkeypatch.delenv("ATDATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert atdata.LocalDiskStore().root == tmp_path / ".atdata" / "data"
    store = atdata.LocalDiskStore(root="~/deep/er")
    assert store.root == (tmp_path / "deep" / "er").resolve() and store.root.is_dir()
    assert isinstance(store.root, Path) and store.url == str(store.root)
    assert store.read_url("/x/y.tar") == "/x/y.tar" and store.supports_streaming() is True
    assert isinstance(store, atdata.AbstractDataStore)


def test_local_disk_store_write_shards(tmp_path):
    src = atdata.write_samples(_pts(10), str(tmp_path / "src.tar"))
    store = atdata.LocalDiskStore(tmp_path / "store")
    urls = store.write_shards(src, prefix="datasets/pts/v1", maxcount=3)
    assert isinstance(urls, atdata.ShardWriteResult) and isinstance(urls, list)
    assert len(urls) == 4
    for u in urls:
        p = Path(u)
        assert p.parent == tmp_path / "store" / "datasets" / "pts" / "v1"
        assert p.name.startswith("data--") and p.name.endswith(".tar")
        assert urls.checksums[u] == hashlib.sha256(p.read_bytes()).hexdigest()
    back = atdata.Dataset(list(urls), sample_type=Pt)
    assert [s.value for s in back.ordered()] == list(range(10))
    assert not (tmp_path / "store" / ".staging").exists() or not any(
        (tmp_path / "store" / ".staging").iterdir()
    )
    with pytest.raises(ValueError, match="no samples"):
        store.write_shards([], prefix="empty")
    with pytest.raises(ValueError, match="relative path"):
        store.write_shards(src, prefix="../escape")


def test_write_shards_records_schema_version_and_provenance_in_manifests(tmp_path):
    """Upstream documents ``write_shards(schema_version=, source_job_id=, parent_shards=,
    pipeline_version=)`` as what each manifest header records."""
    import json

    from atdata.manifest._paths import manifest_paths

    src = atdata.write_samples(_pts(4), str(tmp_path / "src.tar"))
    store = atdata.LocalDiskStore(tmp_path / "store")
    urls = store.write_shards(
        src, prefix="p/v2", maxcount=2, manifest=True, schema_version="2.1.0",
        source_job_id="job-42", parent_shards=["s3://in/a.tar"], pipeline_version="pipe-3",
    )  # fmt: skip
    assert len(urls) == 2
    for u in urls:
        header = json.loads(Path(manifest_paths(u)[0]).read_text())
        assert header["schema_version"] == "2.1.0"
        assert header["provenance"] == {
            "source_job_id": "job-42", "parent_shards": ["s3://in/a.tar"],
            "pipeline_version": "pipe-3",
        }  # fmt: skip
        assert header["num_samples"] == 2
    back = atdata.Dataset(list(urls), sample_type=Pt)
    assert back.query("value >= 1").list_locations()[0].key is not None  # the manifests read back
    plain = store.write_shards(src, prefix="p/v3", manifest=True)
    header = json.loads(Path(manifest_paths(plain[0])[0]).read_text())
    assert header["schema_version"] == "1.0.0" and "provenance" not in header


# -- S3Source / S3DataStore (documented constructors) ------------------------------------------
def test_s3source_documented_constructors():
    src = atdata.S3Source("bkt", ["a/0.tar", "a/1.tar"], endpoint="http://127.0.0.1:9", access_key="k",
                          secret_key="s3cr3t", region="eu-west-1")  # fmt: skip
    assert src.shard_list == ["s3://bkt/a/0.tar", "s3://bkt/a/1.tar"] == src.list_shards()
    assert (src.bucket, src.keys, src.endpoint, src.region) == (
        "bkt", ["a/0.tar", "a/1.tar"], "http://127.0.0.1:9", "eu-west-1",
    )  # fmt: skip
    assert "s3cr3t" not in repr(src)
    u = atdata.S3Source.from_urls(["s3://b/x.tar", "s3://b/d/y.tar"], endpoint="http://e")
    assert (u.bucket, u.keys, u.endpoint) == ("b", ["x.tar", "d/y.tar"], "http://e")
    c = atdata.S3Source.from_credentials(
        {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT": "http://r2"},
        "bk",
        ["z.tar"],
    )
    assert (c.access_key, c.secret_key, c.endpoint, c.shard_list) == (
        "k",
        "s",
        "http://r2",
        ["s3://bk/z.tar"],
    )
    with pytest.raises(ValueError, match="span buckets"):
        atdata.S3Source.from_urls(["s3://a/x.tar", "s3://b/y.tar"])
    with pytest.raises(ValueError, match="names no object key"):
        atdata.S3Source.from_urls(["s3://a/"])
    with pytest.raises(KeyError, match="not one of this source's 2 shards"):
        src.open_shard("s3://bkt/other.tar")


def test_s3source_errors_keep_botocore_types():
    from botocore.exceptions import ClientError

    class Denied:
        def get_object(self, **kw):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")

    src = atdata.S3Source("bkt", ["d.tar"], client=Denied())
    with pytest.raises(ClientError) as ei:
        src.open_shard("s3://bkt/d.tar")
    assert isinstance(ei.value, atdata.ShardError) and "s3://bkt/d.tar" in str(ei.value)
    assert "AccessDenied" in str(ei.value)


def test_s3datastore_credentials_spelling(tmp_path):
    env = tmp_path / "creds.env"
    env.write_text("AWS_ENDPOINT=http://127.0.0.1:9000\nAWS_ACCESS_KEY_ID=key\n"
                   "AWS_SECRET_ACCESS_KEY='sec'\n")  # fmt: skip
    s = atdata.S3DataStore(str(env), bucket="lab")
    assert (s.bucket, s.endpoint_url, s.credentials["AWS_SECRET_ACCESS_KEY"]) == (
        "lab", "http://127.0.0.1:9000", "sec",
    )  # fmt: skip
    assert s.read_url("s3://lab/k/a.tar") == "http://127.0.0.1:9000/lab/k/a.tar"
    assert atdata.S3DataStore("plain", "pre").read_url("s3://plain/a.tar") == "s3://plain/a.tar"
    assert isinstance(s, atdata.AbstractDataStore)
    with pytest.raises(ValueError, match="cannot read S3 credentials file"):
        atdata.S3DataStore(str(tmp_path / "missing.env"), bucket="b")


def test_s3datastore_write_shards(s3_endpoint, tmp_path):
    import contextlib

    from atdata.stores._s3 import make_client

    creds = {"AWS_ENDPOINT": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
             "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1"}  # fmt: skip
    client = make_client(endpoint_url=s3_endpoint, aws_access_key_id="testing",
                         aws_secret_access_key="testing-secret", region_name="us-east-1")  # fmt: skip
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket="atdata-ws")
    store = atdata.S3DataStore(creds, bucket="atdata-ws")
    src = atdata.write_samples(_pts(5), str(tmp_path / "s.tar"))
    urls = store.write_shards(src, prefix="runs/v1", maxcount=2)
    assert len(urls) == 3 and all(u.startswith("s3://atdata-ws/runs/v1/data--") for u in urls)
    back = atdata.Dataset(atdata.S3Source.from_urls(list(urls), client=client), sample_type=Pt)
    assert [s.value for s in back.ordered()] == [0, 1, 2, 3, 4]
    assert set(urls.checksums) == set(urls)
    with_prov = store.write_shards(
        src, prefix="runs/v2", manifest=True, source_job_id="j1", pipeline_version="2"
    )
    key = with_prov[0][len("s3://atdata-ws/") :].removesuffix(".tar") + ".manifest.json"
    import json

    header = json.loads(client.get_object(Bucket="atdata-ws", Key=key)["Body"].read())
    assert header["provenance"] == {"source_job_id": "j1", "pipeline_version": "2"}


# -- URLSource ------------------------------------------------------------------------------
def test_urlsource_shard_list_and_streams(tmp_path):
    atdata.write_samples(_pts(4), str(tmp_path / "u-%02d.tar"), maxcount=2)
    src = atdata.URLSource(str(tmp_path / "u-{00..01}.tar"))
    assert src.shard_list == [str(tmp_path / "u-00.tar"), str(tmp_path / "u-01.tar")]
    pairs = list(src.shards)
    assert [p[0] for p in pairs] == src.shard_list
    for _, stream in pairs:
        assert stream.read(0) == b""
        stream.close()
    by_kw = atdata.URLSource(url=str(tmp_path / "u-{00..01}.tar"))  # the documented keyword
    assert by_kw.shard_list == src.shard_list == atdata.URLSource(urls=by_kw.spec).shard_list
    with pytest.raises(ValueError, match=r"URLSource\(url\)"):
        atdata.URLSource()


# -- Index: schemas ---------------------------------------------------------------------------
def test_schema_api_returns_refs_and_dicts(index):
    ref = index.publish_schema(Pt, version="1.0.0")
    assert ref == "atdata://local/schema/Pt@1.0.0"
    d = index.get_schema(ref)
    assert (d["name"], d["version"], d["description"]) == ("Pt", "1.0.0", "A point with a name.")
    assert [f["name"] for f in d["fields"]] == ["name", "value"]
    assert d["schema"]["properties"]["value"] == {"type": "integer"}
    assert [s["$ref"] for s in index.list_schemas()] == [ref]
    assert index.get_schema_record(ref).version == "1.0.0"
    assert index.decode_schema(ref) is Pt and index.decode_schema_as(ref, Pt) is Pt
    pre = index.publish_schema(Pt, version="2.0.0-beta+build.7")
    assert index.get_schema(pre)["version"] == "2.0.0-beta+build.7"
    assert index.publish_schema(Pt, version="") == pre  # empty: automatic (the identical latest)
    with pytest.raises(TypeError, match="not a packable"):
        index.publish_schema(int)


def test_load_schema_types_namespace_and_stubs(tmp_path):
    idx = Index(path=str(tmp_path / "i.db"), stub_dir=tmp_path / "stubs")
    ref = idx.publish_schema(Pt)
    fresh = Index(path=str(tmp_path / "i.db"), auto_stubs=True, stub_dir=tmp_path / "stubs")
    assert repr(fresh.types) == "SchemaNamespace(empty)"
    T = fresh.load_schema(ref)
    assert repr(fresh.types) == "SchemaNamespace(Pt)"
    assert fresh.types.Pt is T and "Pt" in fresh.types and T(name="a", value=1).value == 1
    assert fresh.get_import_path(ref) == "local.Pt_1_0_0"
    stub = tmp_path / "stubs" / "local" / "Pt_1_0_0.py"
    assert "class Pt(PackableSample):" in stub.read_text()
    mtime = stub.stat().st_mtime_ns
    fresh.get_schema(ref)  # current: not written again
    assert stub.stat().st_mtime_ns == mtime and fresh.stub_dir == tmp_path / "stubs"
    import importlib.util

    spec = importlib.util.spec_from_file_location("Pt_1_0_0", stub)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # the stub is an importable module
    assert (
        mod.Pt.__annotations__ == {"name": "str", "value": "int"}
        or "name" in mod.Pt.__annotations__
    )
    assert fresh.clear_stubs() == 1 and not stub.exists()
    plain = Index(path=str(tmp_path / "i.db"))
    assert plain.get_import_path(ref) is None and plain.clear_stubs() == 0
    with pytest.raises(AttributeError, match="load_schema"):
        plain.types.Pt  # noqa: B018


# -- Index: entries ---------------------------------------------------------------------------
def test_entries_documented_api(index, tmp_path):
    e = index.write(_pts(5), name="pts", maxcount=2, metadata={"k": "v"})
    assert isinstance(e, atdata.IndexEntry) and isinstance(e, atdata.local.LocalDatasetEntry)
    assert e.data_urls == [s.url for s in e.shards] and len(e.data_urls) == 3
    assert e.metadata == {"k": "v"} and e.cid.startswith("bafy")
    assert index.get_entry(e.cid) == e == index.get_entry_by_name("pts") == index.get_dataset("pts")
    assert index.list_entries() == [e] == index.all_entries == list(index.entries)
    with pytest.raises(ValueError, match="no samples"):
        index.write([], name="empty")

    ext = atdata.write_samples(_pts(3), str(tmp_path / "ext-%02d.tar"), maxcount=2)
    added = index.add_entry(ext, name="ext", metadata={"src": "lab"})
    assert added.data_urls == ext.list_shards()  # indexed where they are
    assert added.schema_ref == "atdata://local/schema/Pt@1.0.0" and added.metadata == {"src": "lab"}

    store = atdata.LocalDiskStore(tmp_path / "copy")
    copied = index.insert_dataset(
        ext, name="copied", data_store=store, force=True, cache_local=True
    )
    assert all(u.startswith(str(store.root)) for u in copied.data_urls)
    assert [s.value for s in index.open_dataset("copied").ordered()] == [0, 1, 2]
    assert index.data_store is None  # none given: inserts index in place, writes use the default
    moved = index.insert_dataset(ext, name="moved", copy=True)
    home = index.status()["data_store"]["url"]
    assert home == str(tmp_path / "idx" / "data") and all(
        u.startswith(home) for u in moved.data_urls
    )


def test_explicit_store_copies_on_insert(tmp_path):
    store = atdata.LocalDiskStore(tmp_path / "s")
    idx = Index(path=str(tmp_path / "i.db"), data_store=store)
    ext = atdata.write_samples(_pts(2), str(tmp_path / "e.tar"))
    assert idx.insert_dataset(ext, name="e").data_urls[0].startswith(str(store.root))
    assert idx.add_entry(ext, name="e2").data_urls == ext.list_shards()  # add_entry never copies


def test_documented_entry_constructor_and_cid():
    e = atdata.local.LocalDatasetEntry(name="d", schema_ref="atdata://local/schema/Pt@1.0.0",
                                       data_urls=["s3://b/a.tar"])  # fmt: skip
    assert (e.data_urls, e.wds_url, e.sample_kind) == (
        ["s3://b/a.tar"],
        "s3://b/a.tar",
        e.schema_ref,
    )
    pytest.importorskip("libipld")
    assert e.cid == atdata.generate_cid({"schema_ref": e.schema_ref, "data_urls": e.data_urls})
    with pytest.raises(ValueError, match="not both"):
        atdata.DatasetEntry("d", data_urls=["a"], shards=[])


def test_entries_written_to_redis_are_found(redis_client):
    client, prefix = redis_client
    idx = Index(redis=client, prefix=prefix)
    ref = idx.publish_schema(Pt, version="1.0.0-rc.1")
    assert idx.get_schema(ref)["version"] == "1.0.0-rc.1"
    e = atdata.local.LocalDatasetEntry(name="orphan", schema_ref="local://schemas/m.Gone@1.0.0",
                                       data_urls=["s3://b/data.tar"])  # fmt: skip
    stored = e.write_to(client, prefix=prefix)
    assert stored.version == "1.0.0" and idx.get_entry_by_name("orphan").data_urls == [
        "s3://b/data.tar"
    ]
    assert atdata.local.LocalDatasetEntry.from_redis(client, e.cid, prefix=prefix) == stored
    with pytest.raises(KeyError, match=r"m\.Gone@1\.0\.0' is not in the index"):
        idx.get_schema_type(stored.schema_ref)
    with pytest.raises(KeyError, match="nonexistent"):
        idx.get_entry_by_name("nonexistent")


def test_redis_errors_are_storage_and_redis_errors():
    if not port_open(6379):
        require_service("Redis", "nothing listens on 127.0.0.1:6379")
    import redis

    bad = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    idx = Index(redis=bad)  # nothing connects yet
    with pytest.raises(redis.RedisError) as ei:
        idx.publish_schema(Pt, version="1.0.0")
    assert isinstance(ei.value, atdata.StorageError) and "127.0.0.1:1" in str(ei.value)


def test_index_kwargs_select_redis():
    if not port_open(6379):
        require_service("Redis", "nothing listens on 127.0.0.1:6379")
    idx = Index(host="127.0.0.1", port=6379, db=15, prefix=f"atdata-test-{uuid.uuid4().hex}:")
    assert idx.provider.kind == "redis" and idx.list_entries() == []
    with pytest.raises(ValueError, match="takes no options"):
        atdata.providers.create_provider("sqlite", host="x")
    with pytest.raises(ValueError, match="unknown index provider 'mongo'"):
        atdata.providers.create_provider("mongo")
    assert atdata.providers.SqliteProvider is atdata.providers.SQLiteProvider


# -- verify_checksums, search, logging, errors, names -----------------------------------------
def test_verify_checksums(index):
    e = index.write(_pts(4), name="v", maxcount=2)
    assert atdata.verify_checksums(e) == {u: "ok" for u in e.data_urls}
    with open(e.data_urls[1], "r+b") as f:
        f.seek(600)
        f.write(b"X")
    got = atdata.verify_checksums(e)
    assert got[e.data_urls[0]] == "ok" and got[e.data_urls[1]] == "mismatch"
    os.unlink(e.data_urls[0])
    assert atdata.verify_checksums(e)[e.data_urls[0]].startswith("error:")
    remote = atdata.DatasetEntry("r", None, ["s3://b/x.tar"], {"checksums": {"s3://b/x.tar": "0"}})
    assert atdata.verify_checksums(remote) == {"s3://b/x.tar": "skipped"}


def test_search(index):
    index.write(_pts(1), name="mnist-train", tags=["vision"], description="digits")
    index.write(_pts(1), name="mnist-train", tags=["vision", "v2"])  # a newer version
    index.write([Arr(data=np.zeros(2), label="a")], name="audio", metadata={"tags": ["sound"]})
    r = index.search(text="MNIST")
    assert [i.name for i in r.items] == ["mnist-train"] and r.items[0].tags == ["vision", "v2"]
    assert r.items[0].source == "local" and r.items[0].uri == index.get_dataset("mnist-train").cid
    assert [i.name for i in index.search(tags=["sound"])] == ["audio"]
    assert [i.name for i in index.search(schema_ref="atdata://local/schema/Arr@1.0.0")] == ["audio"]
    page = atdata.LocalSearchBackend(index).search(limit=1)
    assert (len(page), page.cursor, page.total_hint) == (1, "1", 2)
    nxt = atdata.LocalSearchBackend(index).search(limit=1, cursor=page.cursor)
    assert [i.name for i in nxt] == ["mnist-train"] and nxt.cursor is None

    class Broken:
        name = "broken"

        def health_check(self):
            raise ConnectionError("down")

    agg = atdata.SearchAggregator([Broken(), atdata.LocalSearchBackend(index)])
    assert [i.name for i in agg.search()] == ["audio", "mnist-train"]
    with pytest.raises(atdata.AppViewRequiredError, match="needs an ATProto AppView"):
        atdata.AppViewSearchBackend(object()).search(text="x")
    assert atdata.AppViewSearchBackend(object()).health_check() is False


def test_logging_is_pluggable(caplog):
    assert atdata.get_logger() is logging.getLogger("atdata")
    with (
        caplog.at_level(logging.INFO, logger="atdata"),
        pytest.raises(RuntimeError),
        atdata.log_operation("copy", shards=3),
    ):
        raise RuntimeError("x")
    assert [r.getMessage()[:20] for r in caplog.records] == [
        "copy: started (shard",
        "copy: failed after 0",
    ]
    seen = []

    class Mine:
        def _log(self, m, *a, **k):
            seen.append(m % a)

        debug = info = warning = error = _log

    try:
        atdata.configure_logging(Mine())
        with atdata.log_operation("op"):
            pass
        assert seen[0] == "op: started" and seen[1].startswith("op: completed in ")
    finally:
        atdata.configure_logging(logging.getLogger("atdata"))
    with pytest.raises(TypeError, match="lacks debug, info"):
        atdata.configure_logging(object())


def test_appview_errors():
    e = atdata.AppViewUnavailableError("https://av.example", "HTTP 502")
    assert isinstance(e, atdata.AppViewError) and isinstance(e, ConnectionError)
    assert (e.url, e.reason) == ("https://av.example", "HTTP 502") and "HTTP 502" in str(e)
    r = atdata.AppViewRequiredError("search")
    assert (
        isinstance(r, ValueError) and isinstance(r, atdata.AtdataError) and r.operation == "search"
    )


def test_upstream_names_exist():
    import atdata.local
    import atdata.repository
    import atdata.search

    for name in ("AppViewError", "AppViewUnavailableError", "AppViewRequiredError", "IndexEntry",
                 "AbstractDataStore", "verify_checksums", "ShardWriteResult", "SearchResult",
                 "SearchResults", "SearchBackend", "AppViewSearchBackend", "LocalSearchBackend",
                 "SearchAggregator", "configure_logging", "get_logger", "log_operation",
                 "get_default_index", "create_repository", "main", "Repository"):  # fmt: skip
        assert getattr(atdata, name) is not None, name
    assert atdata.local.LocalIndex is atdata.Index is atdata.local.Index
    assert atdata.Repository is atdata.repository.Repository
    assert atdata.main is atdata.cli.main


# -- labels and stored lenses (SQLite, Redis and PostgreSQL) ------------------------------------
@pytest.fixture(params=["sqlite", "redis", "postgres"])
def any_index(request, tmp_path):
    from tests._index_backends import make_factory

    factory, cleanup = make_factory(request.param, tmp_path)
    idx = Index(factory(), data_store=atdata.LocalDiskStore(tmp_path / "data"))
    yield idx
    cleanup()


def test_labels(any_index):
    a = any_index.write(_pts(2), name="mnist")
    b = any_index.write(_pts(3), name="mnist")
    any_index.label("stable", a.cid, version="1.0.0", description="first")
    any_index.label("stable", b.cid, version="2.0.0")
    assert any_index.get_label("stable", "1.0.0") == a
    assert any_index.get_label("stable") == b  # the most recently set
    any_index.label("stable", a.cid, version="2.0.0")  # moving a label
    assert any_index.get_label("stable", "2.0.0") == a
    assert sorted(any_index.list_labels()) == [
        ("stable", a.cid, "1.0.0"),
        ("stable", a.cid, "2.0.0"),
    ]
    assert list(any_index.labels) == any_index.list_labels("local")
    with pytest.raises(KeyError, match="no label 'nope'"):
        any_index.get_label("nope")
    with pytest.raises(KeyError, match="no dataset entry with CID 'bafynothing'"):
        any_index.label("dangling", "bafynothing")


def test_stored_lenses(any_index):
    from tests._lens_defs import Full, NameOnly, full_to_name

    ref = any_index.store_lens(full_to_name, name="full_to_name", description="drop value")
    assert ref == "atdata://local/lens/full_to_name@1.0.0"
    assert any_index.store_lens(full_to_name, name="full_to_name").endswith("@1.0.1")
    rec = any_index.get_lens(ref)
    assert (rec["sourceSchema"], rec["viewSchema"], rec["description"]) == (
        "Full",
        "NameOnly",
        "drop value",
    )
    assert rec["getter"] == "tests._lens_defs:full_to_name"
    assert rec["putter"] == "tests._lens_defs:full_to_name_put"
    assert [r["version"] for r in any_index.find_lenses("Full", "NameOnly")] == ["1.0.0", "1.0.1"]
    assert any_index.find_lenses("NameOnly") == []
    assert [r["$ref"] for r in any_index.lenses] == [ref, "atdata://local/lens/full_to_name@1.0.1"]
    got = any_index.load_lens(ref)
    assert got(Full(name="a", value=1)) == NameOnly(name="a")
    assert got.put(NameOnly(name="b"), Full(name="a", value=7)) == Full(name="b", value=7)
    with pytest.raises(ValueError, match="already exists"):
        any_index.store_lens(full_to_name, name="full_to_name", version="1.0.0")
    with pytest.raises(KeyError, match="no lens"):
        any_index.get_lens("atdata://local/lens/missing@1.0.0")

    def local_fn(s: Full) -> NameOnly:
        return NameOnly(name=s.name)

    inner = any_index.store_lens(atdata.Lens(local_fn, source=Full, view=NameOnly), name="inner")
    with pytest.raises(ValueError, match="no importable getter"):
        any_index.load_lens(inner)


def test_top_level_names_upstream_has():
    import subprocess
    import sys
    import warnings

    # subpackages are attributes after a bare ``import atdata`` (imported on first use)
    code = (
        "import atdata, sys; assert 'atdata.atmosphere' not in sys.modules; "
        "print(atdata.atmosphere.Atmosphere.__name__, atdata.manifest.F is not None, "
        "atdata.promote.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Atmosphere", "True", "atdata.promote"]
    assert {"atmosphere", "cli", "promote", "manifest"} <= set(dir(atdata))
    with pytest.warns(DeprecationWarning, match="use atdata.Index"):
        assert atdata.AbstractIndex is Index
    assert atdata.BlobSource.__name__ == "BlobSource"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning, match="get_schema_type"):
            atdata.schema_to_type({"name": "X", "fields": []})


def test_protocol_names_import_from_atdata_protocols(index):
    # upstream's protocols reference page imports these from atdata._protocols
    from atdata._protocols import (
        AbstractDataStore,
        AbstractIndex,
        DataSource,
        IndexEntry,
        Packable,
    )

    assert (AbstractDataStore, DataSource, IndexEntry, Packable) == (
        atdata.AbstractDataStore,
        atdata.DataSource,
        atdata.IndexEntry,
        atdata.Packable,
    )
    assert AbstractIndex is Index and isinstance(index, AbstractIndex)
    entry = index.write([Pt(name="a", value=1)], name="protos")
    assert isinstance(entry, IndexEntry) and isinstance(atdata.LocalDiskStore(), AbstractDataStore)
    assert isinstance(atdata.URLSource("x-{0..1}.tar"), DataSource) and isinstance(
        Pt(name="b", value=2), Packable
    )
    import atdata._protocols as P

    assert set(P.__all__) <= set(dir(P))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = P.Nope


def test_schema_to_type_takes_get_schema_dicts(index):
    ref = index.publish_schema(Pt, version="1.0.0")
    with pytest.warns(DeprecationWarning):
        T = atdata.schema_to_type(index.get_schema(ref))
    assert T.__name__ == "Pt" and T(name="a", value=2).value == 2
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="needs a schema dict"):
        atdata.schema_to_type({"fields": []})


def test_blob_source_from_documented_blob_refs():
    refs = [{"did": "did:plc:abc", "cid": "bafkreia"}, {"did": "did:plc:abc", "cid": "bafkreib"}]
    src = atdata.BlobSource(refs, pds_endpoint="http://127.0.0.1:1")  # nothing is fetched yet
    assert src.list_shards() == ["at://did:plc:abc/blob/bafkreia", "at://did:plc:abc/blob/bafkreib"]
    assert src.blob_refs == refs and src.pds_endpoint == "http://127.0.0.1:1"
    assert atdata.BlobSource(blob_refs=refs, pds_endpoint="http://x").did == "did:plc:abc"
    with pytest.raises(ValueError, match="one BlobSource per repository"):
        atdata.BlobSource(
            [*refs, {"did": "did:plc:other", "cid": "bafkreic"}], pds_endpoint="http://x"
        )


def test_public_modules_serve_upstreams_names():
    import atdata.dataset
    import atdata.index
    import atdata.lens
    import atdata.testing

    for name in ("SchemaField", "SchemaFieldType", "REDIS_KEY_DATASET_ENTRY", "REDIS_KEY_SCHEMA"):
        assert getattr(atdata.index, name) is getattr(atdata.local, name), name
    assert (atdata.index.REDIS_KEY_DATASET_ENTRY, atdata.index.REDIS_KEY_SCHEMA) == (
        "LocalDatasetEntry", "LocalSchema",
    )  # fmt: skip
    assert atdata.lens.LensNotFoundError is atdata.LensNotFoundError
    assert atdata.lens.Packable is atdata.Packable and atdata.lens.S.__name__ == "S"
    assert atdata.lens.LensGetter is not None and atdata.lens.LensPutter is not None
    assert atdata.dataset.LensNetwork is atdata.LensNetwork
    assert atdata.dataset.PartialFailureError is atdata.PartialFailureError
    assert atdata.testing.MockAtmosphereClient is atdata.testing.MockAtmosphere
    f = atdata.index.SchemaField.from_dict(
        {"name": "img", "fieldType": {"$type": "local#ndarray", "dtype": "uint8", "shape": [None, 3]},
         "optional": True}
    )  # fmt: skip
    assert (f.name, f.field_type.kind, f.field_type.dtype, f.optional) == (
        "img",
        "ndarray",
        "uint8",
        True,
    )
    assert f.to_dict() == {
        "name": "img", "fieldType": {"$type": "local#ndarray", "dtype": "uint8", "shape": [None, 3]},
        "optional": True,
    }  # fmt: skip
