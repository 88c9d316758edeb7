"""``atdata.Index(atmosphere=client)`` against the reference PDS: atmosphere names and AT URIs in
``get_dataset``, and ``PDSBlobStore`` as the index's data store (the atmosphere tutorial)."""

from __future__ import annotations

import pytest

import atdata
from atdata.atmosphere import DatasetPublisher
from atdata.index import Index


@atdata.packable
class Feat:
    idx: int
    name: str


def _feats(n: int) -> list[Feat]:
    return [Feat(idx=i, name=f"f{i}") for i in range(n)]


@pytest.mark.services
def test_get_dataset_takes_at_uris_and_handle_names(pds, publisher, tmp_path):
    acct, atmo = publisher
    ds = atdata.write_samples(_feats(5), str(tmp_path / "f.tar"))
    uri = str(DatasetPublisher(atmo).publish(ds, name="feats", description="five"))
    idx = Index(path=str(tmp_path / "i.db"), atmosphere=atmo)

    by_uri = idx.get_dataset(uri)
    assert (type(by_uri).__name__, by_uri.uri, by_uri.name) == (
        "AtmosphereIndexEntry", uri, "feats",
    )  # fmt: skip
    by_name = idx.get_dataset(f"@{acct['handle']}/feats")
    assert (by_name.uri, by_name.schema_ref) == (uri, by_uri.schema_ref)
    assert by_name.data_urls == by_uri.data_urls and len(by_uri.data_urls) == 1

    # atmosphere=None turns the atmosphere off: refused with the fix
    with pytest.raises(atdata.ConfigError, match=r"atmosphere=None; use atdata\.Index\(\)"):
        Index(path=str(tmp_path / "j.db"), atmosphere=None).get_dataset(uri)


@pytest.mark.services
def test_a_plain_index_reads_the_atmosphere_anonymously(pds, publisher, tmp_path):
    acct, atmo = publisher
    ds = atdata.write_samples(_feats(4), str(tmp_path / "f.tar"))
    uri = str(DatasetPublisher(atmo).publish(ds, name="anon", description="four"))
    idx = Index(path=str(tmp_path / "i.db"))  # no client given: anonymous, read-only

    by_name = idx.get_dataset(f"@{acct['handle']}/anon")
    assert (type(by_name).__name__, by_name.uri, by_name.name) == (
        "AtmosphereIndexEntry", uri, "anon",
    )  # fmt: skip
    assert idx.get_dataset(uri).record["description"] == "four"
    assert idx.get_dataset(f"@{acct['did']}/anon").uri == uri
    assert idx.atmosphere is not None and not idx.atmosphere.is_authenticated
    # the entry's schema is an AT URI: get_schema / get_schema_type read it too
    sref = by_name.schema_ref
    assert sref.startswith(f"at://{acct['did']}/science.alt.dataset.schema/")
    assert idx.get_schema(sref)["name"] == "Feat"
    t = idx.get_schema_type(sref)
    assert [f for f in t.__dataclass_fields__] == ["idx", "name"]
    assert idx.types.Feat is t
    with pytest.raises(atdata.ConfigError, match=r"atdata\.load_dataset"):
        idx.open_dataset(f"@{acct['handle']}/anon")
    with pytest.raises(KeyError):
        idx.get_dataset(f"@{acct['handle']}/no-such-dataset")


@pytest.mark.services
def test_insert_dataset_into_a_pds_blob_store(pds, publisher, tmp_path):
    from atdata._events import capture
    from atdata.atmosphere import PDSBlobStore

    acct, atmo = publisher
    ds = atdata.write_samples(_feats(12), str(tmp_path / "f-%02d.tar"), maxcount=5)
    store = PDSBlobStore(atmo)
    idx = Index(path=str(tmp_path / "i.db"), atmosphere=atmo, data_store=store)
    ref = idx.publish_schema(Feat, version="1.0.0")
    with capture() as events:
        entry = idx.insert_dataset(
            ds, name="blobfeats", schema_ref=ref, description="d", maxcount=5
        )
    # one blob per shard, recorded as at://<did>/blob/<cid>, with counts and checksums
    assert [u.split("/blob/")[0] for u in entry.data_urls] == [f"at://{acct['did']}"] * 3
    assert [s.num_samples for s in entry.shards] == [5, 5, 2]
    assert entry.data_store == f"at://{acct['did']}"
    ups = [e for e in events if e.op == "pds_upload"]
    assert [(e.name, e.data["blob"], e.data["blobs"]) for e in ups] == [
        ("shard_write", 1, 3), ("shard_write", 2, 3), ("shard_write", 3, 3),
    ]  # fmt: skip
    assert [e.data["cid"] for e in ups] == [u.rsplit("/", 1)[1] for u in entry.data_urls]

    # loads back by name from the PDS (the blobs are held by the published entry record)
    back = idx.open_dataset("blobfeats")
    assert [(s.idx, s.name) for s in back.ordered()] == [(i, f"f{i}") for i in range(12)]
    remote = idx.get_dataset(f"@{acct['handle']}/blobfeats")
    assert remote.name == "blobfeats" and remote.record["description"] == "d"
    assert [u.rsplit("cid=", 1)[1] for u in remote.data_urls] == [
        u.rsplit("/", 1)[1] for u in entry.data_urls
    ]
    # write_samples through the same store
    e2 = idx.write_samples(_feats(3), name="three")
    assert [s.idx for s in idx.open_dataset("three").ordered()] == [0, 1, 2]
    assert e2.data_urls[0].startswith(f"at://{acct['did']}/blob/")


@pytest.mark.services
def test_failed_blob_upload_leaves_no_entry(pds, publisher, tmp_path):
    from atdata.atmosphere import PDSBlobStore

    _acct, atmo = publisher
    ds = atdata.write_samples(_feats(4), str(tmp_path / "f.tar"))
    store = PDSBlobStore(atmo)

    def refuse(data: bytes, mime: str, **kw: object) -> dict:
        raise atdata.StorageError("PDS refused the blob (test)")

    atmo.upload_blob = refuse  # type: ignore[method-assign]
    idx = Index(path=str(tmp_path / "i.db"), atmosphere=atmo, data_store=store)
    with pytest.raises(atdata.StorageError, match="no dataset record was written"):
        idx.insert_dataset(ds, name="nope")
    assert idx.list_datasets() == [] and atmo.list_records("science.alt.dataset.entry")[0] == []


@pytest.mark.services
def test_write_and_insert_under_an_at_handle_name_publish_to_the_atmosphere(
    pds, publisher, tmp_path
):
    acct, atmo = publisher
    idx = Index(path=str(tmp_path / "i.db"), atmosphere=atmo)
    got = idx.write_samples(
        _feats(7), name=f"@{acct['handle']}/pub7", maxcount=3, description="seven", license="MIT"
    )
    # published, not indexed locally: the atmosphere's entry comes back, shards are PDS blobs
    assert type(got).__name__ == "AtmosphereIndexEntry" and got.name == "pub7"
    assert got.uri.startswith(f"at://{acct['did']}/science.alt.dataset.entry/")
    assert (got.record["description"], got.record["license"]) == ("seven", "MIT")
    assert got.record["storage"]["$type"] == "science.alt.dataset.storageBlobs"
    assert len(got.record["storage"]["blobs"]) == 3
    assert idx.list_entries() == []
    back = atdata.load_dataset(f"@{acct['handle']}/pub7", split="train")
    assert [(s.idx, s.name) for s in back.ordered()] == [(i, f"f{i}") for i in range(7)]

    # insert_dataset of local shards: uploaded as blobs; found again by name, anonymously too
    ds = atdata.write_samples(_feats(4), str(tmp_path / "g.tar"))
    ins = idx.insert_dataset(ds, name=f"@{acct['did']}/ins4")
    assert ins.record["storage"]["$type"] == "science.alt.dataset.storageBlobs"
    assert Index(path=str(tmp_path / "j.db")).get_dataset(f"@{acct['handle']}/ins4").uri == ins.uri
    back = atdata.load_dataset(f"@{acct['handle']}/ins4", split="train")
    assert [s.idx for s in back.ordered()] == [0, 1, 2, 3]

    # publishing wrote the label too: read back through a plain (anonymous) index
    assert Index(path=str(tmp_path / "l.db")).get_label(f"@{acct['handle']}/pub7").uri == got.uri
    with pytest.raises(KeyError):
        Index(path=str(tmp_path / "l.db")).get_label(f"@{acct['handle']}/no-such-label")

    # the account's published entries, as upstream's list_datasets(repo="_atmosphere")
    mine = idx.list_datasets(repo="_atmosphere")
    assert sorted((e.name, e.uri) for e in mine) == sorted([("pub7", got.uri), ("ins4", ins.uri)])
    assert Index(path=str(tmp_path / "k.db")).list_datasets(repo="_atmosphere") == []

    # what cannot work is refused with the fix
    with pytest.raises(atdata.ConfigError, match=r"log in as @someone\.else"):
        idx.write_samples(_feats(1), name="@someone.else/x")
    s3ds = atdata.Dataset[Feat]("s3://bkt/f-000000.tar")
    with pytest.raises(atdata.ConfigError, match=r"read from S3 .*pass copy=True"):
        idx.insert_dataset(s3ds, name=f"@{acct['handle']}/s3")
    with pytest.raises(atdata.ConfigError, match=r"needs a logged-in client"):
        Index(path=str(tmp_path / "k.db")).write_samples(_feats(1), name=f"@{acct['handle']}/x")
    with pytest.raises(atdata.ConfigError, match=r"atmosphere=None"):
        Index(path=str(tmp_path / "k.db"), atmosphere=None).insert_dataset(
            ds, name=f"@{acct['handle']}/x"
        )
