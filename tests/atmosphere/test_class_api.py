"""The documented class API of atdata.atmosphere, on MockAtmosphere and on the reference PDS."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest

import atdata
from atdata.atmosphere import (
    AtmosphereIndex,
    AtUri,
    DatasetLoader,
    DatasetMetadata,
    DatasetPublisher,
    LabelLoader,
    LabelPublisher,
    LensLoader,
    LensPublisher,
    LexDatasetEntry,
    LexLabelRecord,
    SchemaLoader,
    SchemaPublisher,
    ShardChecksum,
    StorageHttp,
    VerificationLoader,
    VerificationPublisher,
    record_cid,
    storage_from_record,
)
from atdata.testing import MockAtmosphere


@atdata.packable
class Cell:
    idx: int
    tag: str
    vec: atdata.NDArray


def _cells(n: int, start: int = 0) -> list[Cell]:
    return [
        Cell(idx=i, tag=f"t{i}", vec=np.full(2, i, dtype="f4")) for i in range(start, start + n)
    ]


def test_publishers_and_loaders_run_on_the_mock():
    m = MockAtmosphere(did="did:plc:m1", handle="m.test")
    m.login("m.test", "pw")
    s_uri = SchemaPublisher(m).publish(Cell, version="1.0.0", description="cells")
    assert (
        isinstance(s_uri, AtUri)
        and str(s_uri) == "at://did:plc:m1/science.alt.dataset.schema/mock000000001"
    )  # the mock's generated key: no rkey was given
    assert m._call_log[-1][0] == "create_record"
    assert s_uri.cid == record_cid(m.get_record(str(s_uri)))
    assert SchemaPublisher(m).publish(Cell, version="1.0.0") == s_uri  # written once
    schema = SchemaLoader(m).get(s_uri)
    assert (schema["name"], schema["version"], schema["description"]) == ("Cell", "1.0.0", "cells")
    assert SchemaLoader(m).get_typed(s_uri).schema.schema_body["properties"].keys() >= {
        "idx",
        "tag",
        "vec",
    }
    assert [r["name"] for r in SchemaLoader(m).list_all()] == ["Cell"]

    blobs = [b"tar-one", b"tar-two"]
    meta = {"version": "3.1.0", "note": "n", "lr": 0.25}  # floats travel in the msgpack bytes
    uri = DatasetPublisher(m).publish_with_blobs(blobs, str(s_uri), name="cells", metadata=meta)
    loader = DatasetLoader(m)
    assert loader.get_storage_type(uri) == "blobs"
    assert [b["blob"]["size"] for b in loader.get_blobs(uri)] == [7, 7]
    assert loader.get_metadata(uri) == meta
    assert loader.get_metadata_typed(uri) == DatasetMetadata(
        version="3.1.0", custom={"note": "n", "lr": 0.25}
    )
    assert [m.get_blob(m.did, b["blob"]["ref"]["$link"]) for b in loader.get_blobs(uri)] == blobs
    # a label was written with the entry: the name resolves, with and without the version
    assert LabelLoader(m).resolve("m.test", "cells") == str(uri)
    assert LabelLoader(m).resolve("did:plc:m1", "cells", "3.1.0") == str(uri)
    with pytest.raises(KeyError, match="no label 'cells' version '9'"):
        LabelLoader(m).resolve("m.test", "cells", "9")
    again = DatasetPublisher(m).publish_with_blobs(blobs, str(s_uri), name="cells", metadata=meta)
    assert again == uri and len(m.list_datasets()) == 1 and len(m.list_labels()) == 1

    http = DatasetPublisher(m).publish_with_urls(
        ["https://e.org/a.tar"], str(s_uri), name="web",
        checksums=[ShardChecksum("sha256", "ab" * 32)],
    )  # fmt: skip
    assert loader.get_urls(http) == ["https://e.org/a.tar"]
    typed = loader.get_typed(http)
    assert (
        isinstance(typed.storage, StorageHttp)
        and typed.storage.shards[0].checksum.digest == "ab" * 32
    )
    with pytest.raises(ValueError, match=r"not a science\.alt\.dataset\.entry"):
        loader.get(s_uri)

    lens = LensPublisher(m).publish(
        name="tag-only", source_schema=str(s_uri), target_schema=str(s_uri),
        getter_code={"repository": "https://g.org/r", "commit": "abc1234", "path": "l.py:get"},
    )  # fmt: skip
    assert LensLoader(m).get_typed(lens).getter_code.path == "l.py:get"
    assert [r["name"] for r in LensLoader(m).find_by_schemas(str(s_uri))] == ["tag-only"]
    ver = VerificationPublisher(m).publish(
        lens_uri=str(lens), lens_commit="abc1234",
        verification_method="science.alt.dataset.verificationMethod#manualReview",
    )  # fmt: skip
    assert VerificationLoader(m).get_typed(ver).lens == str(lens)
    assert len(VerificationLoader(m).list_for_lens(str(lens))) == 1
    own = LabelPublisher(m).publish("alias", str(uri), version="1", rkey="alias-1")
    assert str(own).endswith("/science.alt.dataset.label/alias-1")
    assert LexLabelRecord.from_record(m.get_record(str(own))).dataset_uri == str(uri)


def test_lexicon_types_round_trip_and_read_both_metadata_forms():
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    e = LexDatasetEntry(
        name="d",
        schema_ref="at://did:plc:a/science.alt.dataset.schema/d:1.0.0",
        storage=storage_from_record(
            {"$type": "science.alt.dataset.storageExternal", "urls": ["https://e.org/x.tar"]}
        ),
        created_at=when,
        metadata=DatasetMetadata(version="1.0.0", split="test", custom={"k": 1}),
    )
    rec = e.to_record()
    assert set(rec["metadata"]) == {"$bytes"}  # the lexicon's form
    assert rec["storage"]["$type"] == "science.alt.dataset.storageHttp"
    assert rec["createdAt"] == "2025-01-02T03:04:05+00:00"
    assert LexDatasetEntry.from_record(rec) == e
    structured = {**rec, "metadata": {"version": "1.0.0", "split": "test", "custom": {"k": 1}}}
    assert LexDatasetEntry.from_record(structured).metadata == e.metadata
    with pytest.raises(ValueError, match="has no 'schemaRef'"):
        LexDatasetEntry.from_record({"name": "d"})


@pytest.mark.services
def test_class_api_on_the_reference_pds(pds, publisher, tmp_path):
    acct, atmo = publisher
    ds = atdata.write_samples(_cells(9), str(tmp_path / "c-%02d.tar"), maxcount=4)
    uri = DatasetPublisher(atmo).publish(ds, name="cells", description="nine cells")
    assert uri.authority == acct["did"] and uri.cid
    loader = DatasetLoader(atmo)
    assert loader.get_storage_type(uri) == "blobs"
    got = list(loader.to_dataset(uri, Cell))
    assert [(c.idx, c.tag) for c in got] == [(i, f"t{i}") for i in range(9)]
    assert type(next(iter(loader.to_dataset(uri)))).__name__ == "Cell"  # type rebuilt from schema

    # the deprecated index and the entry type Index(atmosphere=...) returns
    with pytest.warns(DeprecationWarning, match="Index\\(atmosphere=client\\)"):
        idx = AtmosphereIndex(atmo)
    (entry,) = idx.list_datasets()
    assert (entry.uri, entry.name) == (str(uri), "cells")
    assert [u.split("cid=")[1] for u in entry.data_urls] == [
        b["blob"]["ref"]["$link"] for b in loader.get_blobs(uri)
    ]
    by_name = atmo.get_dataset_entry(f"@{acct['handle']}/cells")
    assert by_name.uri == str(uri) and by_name.schema_ref == entry.schema_ref
    assert idx.get_schema_type(entry.schema_ref).__name__ == "Cell"

    # load_dataset through an Index(atmosphere=...): names resolve through its PDS
    from atdata.index import Index

    idx2 = Index(path=str(tmp_path / "i.db"), atmosphere=atmo)
    dd = atdata.load_dataset(f"@{acct['handle']}/cells", index=idx2)
    assert [c.idx for c in dd["train"]] == list(range(9))
    assert idx2.get_dataset(f"@{acct['handle']}/cells").uri == str(uri)

    # sessions: export, then continue elsewhere without the password
    again = type(atmo).from_session(atmo.export_session())
    assert (again.did, again.handle, again.pds) == (atmo.did, atmo.handle, atmo.pds)
    assert again.list_records("science.alt.dataset.entry")[0][0]["name"] == "cells"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert atdata.atmosphere.AtmosphereClient is type(atmo)


def test_promote_to_atmosphere_on_the_mock(tmp_path):
    from atdata.index import Index
    from atdata.promote import promote_to_atmosphere

    m = MockAtmosphere(did="did:plc:p1", handle="p.test")
    idx = Index(path=str(tmp_path / "i.db"))
    entry = idx.write_samples(_cells(5), name="cells", maxcount=2)
    uri = promote_to_atmosphere(entry, idx, m, description="five", tags=["t"])
    assert isinstance(uri, str) and uri.startswith("at://did:plc:p1/science.alt.dataset.entry/")
    rec = m.get_record(uri)
    assert (rec["name"], rec["description"], rec["tags"]) == ("cells", "five", ["t"])
    assert len(rec["storage"]["blobs"]) == 3 and len(m._blobs) == 3
    assert LabelLoader(m).resolve("p.test", "cells") == uri
    again = promote_to_atmosphere(entry, idx, m, description="five", tags=["t"])
    assert (again, again.created) == (uri, False)
    renamed = atdata.promote_to_atmosphere(entry, idx, m, name="cells-v")
    assert m.get_record(renamed)["name"] == "cells-v" and renamed != uri


def test_schema_type_does_not_depend_on_key_order():
    # a PDS may return an optional field before a required one
    m = MockAtmosphere(did="did:plc:k1")
    body = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"note": {"type": "string"}, "idx": {"type": "integer"}},
        "required": ["idx"],
    }
    uri = m.create_record(
        "science.alt.dataset.schema",
        {"$type": "science.alt.dataset.schema", "name": "Late", "version": "1.0.0",
         "schemaType": "jsonSchema", "schema": body, "createdAt": "2025-01-01T00:00:00Z"},
        rkey="late:1.0.0",
    )  # fmt: skip
    Late = SchemaLoader(m).get_type(uri)
    s = Late(idx=4)
    assert (s.idx, s.note) == (4, None)
    back = Late.from_bytes(s.packed)
    assert (back.idx, back.note) == (4, None)


def test_index_with_an_atmosphere_promotes(tmp_path):
    from atdata.index import Index

    m = MockAtmosphere(did="did:plc:ix", handle="ix.test")
    idx = Index(path=str(tmp_path / "i.db"), atmosphere=m)
    idx.write_samples(_cells(4), name="four", maxcount=2)
    uri = idx.promote_entry("four", name="four-pub", tags=["x"])
    rec = m.get_record(uri)
    assert (rec["name"], rec["tags"], len(rec["storage"]["blobs"])) == ("four-pub", ["x"], 2)
    ds = atdata.write_samples(_cells(3, 10), str(tmp_path / "d.tar"))
    uri2 = idx.promote_dataset(ds, name="three", description="d")
    assert isinstance(uri2, str) and m.get_record(uri2)["description"] == "d"
    assert LabelLoader(m).resolve("ix.test", "three") == uri2
    with pytest.raises(ValueError, match="needs a logged-in"):
        Index(path=str(tmp_path / "j.db"), atmosphere=None).promote_entry("four")


def test_publishing_without_a_login_says_not_authenticated_and_names_no_secret():
    """An Atmosphere never logged in refuses to publish with a ValueError that names no secret."""
    from atdata.atmosphere import Atmosphere

    @atdata.packable
    class Unauth:
        x: int

    with pytest.raises(ValueError, match="not authenticated") as info:
        SchemaPublisher(Atmosphere()).publish(Unauth, version="1.0.0")
    assert isinstance(info.value, atdata.AtdataError)
    text = str(info.value).lower()
    assert "login(" in text
    assert not any(word in text for word in ("password", "token", "secret"))


def test_every_loader_shares_get_get_typed_and_list_all():
    from atdata.atmosphere._api_records import RecordLoader
    from atdata.atmosphere._lexicon import LexLensVerification, LexSchemaRecord

    m = MockAtmosphere(did="did:plc:m2", handle="l.test")
    m.login("l.test", "pw")
    s_uri = SchemaPublisher(m).publish(Cell, version="2.0.0")
    loaders = (SchemaLoader, DatasetLoader, LensLoader, LabelLoader, VerificationLoader)
    assert all(issubclass(c, RecordLoader) for c in loaders)
    assert [c.kind for c in loaders] == ["schema", "entry", "lens", "label", "lensVerification"]
    assert isinstance(SchemaLoader(m).get_typed(s_uri), LexSchemaRecord)
    for other in (DatasetLoader, LensLoader, LabelLoader, VerificationLoader):
        with pytest.raises(ValueError, match=r"is a 'science\.alt\.dataset\.schema'"):
            other(m).get(s_uri)  # another kind of record: refused, naming both kinds
        assert other(m).list_all() == []
    assert VerificationLoader.record_class is LexLensVerification


def test_pds_blob_store_takes_the_documented_client_keyword():
    from atdata.atmosphere import PDSBlobStore

    m = MockAtmosphere(did="did:plc:m3", handle="b.test")
    assert PDSBlobStore(client=m).client is m and PDSBlobStore(m).atmosphere is m
    assert PDSBlobStore(atmosphere=m, max_blob_size=10).limit == 10
    with pytest.raises(ValueError, match=r"PDSBlobStore\(client\)"):
        PDSBlobStore()
    with pytest.raises(ValueError, match="needs the logged-in Atmosphere"):
        PDSBlobStore(m, atmosphere=m)


def test_schema_publisher_writes_at_an_explicit_rkey():
    m = MockAtmosphere(did="did:plc:m4", handle="r.test")
    m.login("r.test", "pw")
    uri = SchemaPublisher(m).publish(Cell, version="1.0.0", rkey="cell-custom")
    assert str(uri) == "at://did:plc:m4/science.alt.dataset.schema/cell-custom"
    assert SchemaLoader(m).get(uri)["version"] == "1.0.0"
    assert SchemaPublisher(m).publish(Cell, version="1.0.0", rkey="cell-custom") == uri  # once

    @atdata.packable
    class Cell2:
        other: str

    with pytest.raises(ValueError, match="different body"):
        SchemaPublisher(m).publish(Cell2, name="Cell", version="1.0.0", rkey="cell-custom")


def test_dataset_publisher_writes_at_an_explicit_rkey(tmp_path):
    m = MockAtmosphere(did="did:plc:m5", handle="d.test")
    m.login("d.test", "pw")
    s_uri = SchemaPublisher(m).publish(Cell, version="1.0.0")
    pub = DatasetPublisher(m)
    urls = ["https://example.org/c-000.tar", "https://example.org/c-001.tar"]
    uri = pub.publish_with_urls(urls, str(s_uri), name="cells", rkey="cells-key")
    assert str(uri) == "at://did:plc:m5/science.alt.dataset.entry/cells-key"
    assert pub.publish_with_urls(urls, str(s_uri), name="cells", rkey="cells-key") == uri
    moved = pub.publish_with_urls(urls[:1], str(s_uri), name="cells", rkey="cells-key")
    assert str(moved) == str(uri) and DatasetLoader(m).get_urls(moved) == urls[:1]  # replaced
    ds = atdata.write_samples(_cells(3), str(tmp_path / "c.tar"))
    blob_uri = pub.publish(ds, name="cells-blobs", schema_uri=str(s_uri), rkey="blobs-key")
    assert str(blob_uri).endswith("/science.alt.dataset.entry/blobs-key")


def test_publish_with_urls_takes_s3_urls_and_brace_patterns_as_the_tutorial_does():
    # upstream's atmosphere tutorial publishes
    # publish_with_urls(urls=["s3://example-bucket/demo-data-{000000..000009}.tar"], ...)
    m = MockAtmosphere(did="did:plc:m7", handle="u7.test")
    m.login("u7.test", "pw")
    s_uri = SchemaPublisher(m).publish(Cell, version="1.0.0")
    pub, loader = DatasetPublisher(m), DatasetLoader(m)
    uri = pub.publish_with_urls(
        urls=["s3://example-bucket/demo/data-{000000..000002}.tar"], schema_uri=str(s_uri),
        name="Demo", tags=["demo"], license="MIT",
    )  # fmt: skip
    info = loader.get_s3_info(uri)
    assert info["bucket"] == "example-bucket"
    assert info["keys"] == [f"demo/data-00000{i}.tar" for i in range(3)]
    web = pub.publish_with_urls(["https://e.org/w-{0..1}.tar"], str(s_uri), name="web2")
    assert loader.get_urls(web) == ["https://e.org/w-0.tar", "https://e.org/w-1.tar"]
    with pytest.raises(ValueError, match="one bucket"):
        pub.publish_with_urls(["s3://a/x.tar", "s3://b/y.tar"], str(s_uri), name="two")
    with pytest.raises(ValueError, match="publish local shards as blobs"):
        pub.publish_with_urls(["/data/x.tar"], str(s_uri), name="local")
    with pytest.raises(ValueError, match="1 checksums for 3 shards"):
        pub.publish_with_urls(
            ["s3://a/x-{0..2}.tar"],
            str(s_uri),
            name="c",
            checksums=[ShardChecksum("sha256", "ab" * 32)],
        )


def test_lens_publisher_publish_from_lens_names_the_lens_functions():
    from tests._lens_defs import Full, NameOnly, full_to_name

    from atdata.atmosphere import LensPublisher

    m = MockAtmosphere(did="did:plc:m6", handle="l6.test")
    m.login("l6.test", "pw")
    src = SchemaPublisher(m).publish(Full, version="1.0.0")
    dst = SchemaPublisher(m).publish(NameOnly, version="1.0.0")
    uri = LensPublisher(m).publish_from_lens(
        full_to_name, name="full-name", source_schema_uri=str(src), target_schema_uri=str(dst),
        code_repository="https://example.org/repo.git", code_commit="abc1234",
    )  # fmt: skip
    lens = LensLoader(m).get_typed(uri)
    assert lens.getter_code.path == "tests._lens_defs:full_to_name"
    assert lens.putter_code.path == "tests._lens_defs:full_to_name_put"
    anon = atdata.Lens(lambda s: s, source=Full, view=Full, name="anon")
    with pytest.raises(ValueError, match="not an importable function"):
        LensPublisher(m).publish_from_lens(
            anon, name="anon", source_schema_uri=str(src), target_schema_uri=str(src),
            code_repository="r", code_commit="c",
        )  # fmt: skip


def test_blob_source_from_refs_takes_upload_refs_with_their_did():
    from atdata.atmosphere import BlobSource

    refs = [{"did": "did:plc:z", "$type": "blob", "ref": {"$link": "bafkreiq"}, "size": 3}]
    src = BlobSource.from_refs(refs, pds_endpoint="http://127.0.0.1:1")
    assert src.list_shards() == ["at://did:plc:z/blob/bafkreiq"] and src.pds_endpoint.endswith(":1")
    with pytest.raises(ValueError, match="needs 'did' and 'cid'"):
        BlobSource.from_refs([{"ref": {"$link": "bafkreiq"}}], pds_endpoint="http://x")


def test_lens_publisher_publish_takes_upstreams_positional_order_and_keeps_every_field():
    # upstream documents publish(name, source_schema_uri, target_schema_uri, code_repository,
    # code_commit, getter_path, putter_path, description, language, metadata, rkey)
    from tests._lens_defs import Full, NameOnly

    m = MockAtmosphere(did="did:plc:m7", handle="l7.test")
    m.login("l7.test", "pw")
    src = str(SchemaPublisher(m).publish(Full, version="1.0.0"))
    dst = str(SchemaPublisher(m).publish(NameOnly, version="1.0.0"))
    uri = LensPublisher(m).publish(
        "full-name", src, dst, "https://example.org/repo.git", "abc1234",
        "mod:get", "mod:put", "drops fields", "python", {"owner": "lab"}, "my-lens",
        source_schema_version="1.0.0", target_schema_version="1.0.0",
    )  # fmt: skip
    assert str(uri) == "at://did:plc:m7/science.alt.dataset.lens/my-lens"
    rec = m.get_record(str(uri))
    assert (rec["getterCode"]["path"], rec["putterCode"]["path"]) == ("mod:get", "mod:put")
    assert rec["description"] == "drops fields" and rec["language"] == "python"
    assert rec["metadata"] == {"owner": "lab"}
    assert (rec["sourceSchemaVersion"], rec["targetSchemaVersion"]) == ("1.0.0", "1.0.0")


def test_pds_blob_store_write_shards_of_no_shards_raises_runtime_error():
    # upstream documents PDSBlobStore.write_shards: RuntimeError if no shards were written
    from atdata.atmosphere import PDSBlobStore

    class NoShards:
        def list_shards(self) -> list[str]:
            return []

    m = MockAtmosphere(did="did:plc:m8", handle="l8.test")
    m.login("l8.test", "pw")
    with pytest.raises(RuntimeError, match="has no shards, so no blob was uploaded"):
        PDSBlobStore(m).write_shards(NoShards(), prefix="x")
