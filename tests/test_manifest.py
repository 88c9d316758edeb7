"""Manifests: writing, reading (ours and upstream's), building after the fact, staleness."""

from __future__ import annotations

import json
import os
import shutil
from typing import Annotated

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata import IntegrityError, ManifestField, SchemaError
from atdata._shards.tar import scan_tar_file
from atdata.manifest._aggregates import CategoricalAggregate, NumericAggregate
from atdata.manifest._builder import build_manifest, manifest_paths
from atdata.manifest._fields import manifest_fields
from atdata.manifest._read import load_manifest, manifest_count, verify_manifest


@atdata.packable
class Img:
    image: atdata.NDArray
    raw: bytes
    label: str
    score: float
    idx: int
    tags: list[str]
    flag: bool
    code: Annotated[int, ManifestField("categorical")]
    note: Annotated[str, ManifestField(exclude=True)]


LABELS = ("cat", "dog", "bird", "fish")


def make(i: int) -> Img:
    return Img(
        image=np.full((2, 2), i, dtype="u1"),
        raw=bytes([i % 256]),
        label=LABELS[i % 4],
        score=i / 100,
        idx=i,
        tags=[f"t{j}" for j in range(i % 3)],
        flag=i % 2 == 1,
        code=i % 2,
        note=f"n{i}",
    )


@pytest.fixture()
def written(tmp_path):
    ds = atdata.write_samples(
        [make(i) for i in range(25)], tmp_path / "img.tar", maxcount=10, key="index", manifest=True
    )
    return ds


def header(shard: str) -> dict:
    return json.load(open(manifest_paths(shard)[0]))


def test_fields_derived_from_schema_with_overrides():
    assert manifest_fields(Img) == {
        "label": "categorical",
        "score": "numeric",
        "idx": "numeric",
        "tags": "set",
        "flag": "categorical",
        "code": "categorical",
    }


def test_bad_override_is_rejected():
    @atdata.packable
    class Bad:
        tags: Annotated[list[str], ManifestField("numeric")]

    with pytest.raises(SchemaError, match=r"Bad\.tags"):
        manifest_fields(Bad)


def test_manifest_beside_every_shard_including_the_last(written):
    shards = written.list_shards()
    assert [os.path.basename(s) for s in shards] == [
        "img-000000.tar",
        "img-000001.tar",
        "img-000002.tar",
    ]
    heads = [header(s) for s in shards]
    assert [h["shard_id"] for h in heads] == ["img-000000", "img-000001", "img-000002"]
    assert [h["num_samples"] for h in heads] == [10, 10, 5]
    assert [h["size_bytes"] for h in heads] == [os.path.getsize(s) for s in shards]
    assert [h["shard_sha256"] for h in heads] == [i.sha256 for i in written.list_shard_infos()]
    h = heads[2]
    assert (h["manifest_version"], h["schema_type"], h["schema_version"], h["offset_kind"]) == (
        "1.0.0",
        "Img",
        "1.0.0",
        "tar",
    )
    assert h["aggregates"]["label"] == {
        "type": "categorical",
        "cardinality": 4,
        "value_counts": {"cat": 2, "bird": 1, "dog": 1, "fish": 1},
    }
    assert h["aggregates"]["idx"] == {
        "type": "numeric",
        "min": 20.0,
        "max": 24.0,
        "mean": 22.0,
        "count": 5,
    }
    assert h["aggregates"]["tags"] == {"type": "set", "all_values": ["t0", "t1"]}
    assert h["aggregates"]["flag"]["value_counts"] == {"False": 3, "True": 2}
    assert h["aggregates"]["code"]["value_counts"] == {"0": 3, "1": 2}
    assert "note" not in h["aggregates"] and "image" not in h["aggregates"]
    assert h["created_at"].endswith("+00:00")


def test_plain_pyarrow_reads_ours_with_upstream_columns_and_tar_offsets(written):
    shard = written.list_shards()[1]
    t = pq.read_table(manifest_paths(shard)[1])
    assert t.column_names == [
        "__key__",
        "__offset__",
        "__size__",
        "label",
        "score",
        "idx",
        "tags",
        "flag",
        "code",
    ]
    assert t.schema.field("__offset__").type == pa.int64()
    assert t.schema.field("tags").type == pa.json_()
    assert t.column("__key__").to_pylist() == [f"{i:08d}" for i in range(10, 20)]
    scanned = [(o, s) for _n, o, s in scan_tar_file(shard)]
    assert (
        list(zip(t.column("__offset__").to_pylist(), t.column("__size__").to_pylist(), strict=True))
        == scanned
    )
    assert t.column("tags").cast(pa.string()).to_pylist()[:3] == ['["t0"]', '["t0","t1"]', "[]"]
    assert t.column("idx").to_pylist() == list(range(10, 20))
    # the offset points at the msgpack payload of that very sample
    with open(shard, "rb") as f:
        f.seek(scanned[3][0])
        assert atdata.DictSample.from_bytes(f.read(scanned[3][1]))["idx"] == 13


def test_aborted_shard_leaves_no_manifest(tmp_path):
    with (
        pytest.raises(RuntimeError),
        atdata.ShardWriter(tmp_path / "s-%03d.tar", maxcount=3, key="index", manifest=True) as w,
    ):
        for i in range(5):
            w.write(make(i))
        raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == [
        "s-000.manifest.json",
        "s-000.manifest.parquet",
        "s-000.tar",
    ]


def test_dictsample_columns_come_from_values(tmp_path):
    ds = atdata.write_samples(
        [{"name": f"n{i}", "v": i, "arr": np.zeros(2)} for i in range(3)],
        tmp_path / "d.tar",
        manifest=True,
        key="index",
    )
    h = header(ds.list_shards()[0])
    assert h["fields"] == {"name": "categorical", "v": "numeric"}
    assert h["schema_type"] == "DictSample"


def test_build_after_the_fact_matches_written(tmp_path, written):
    shard = written.list_shards()[0]
    copy = str(tmp_path / "copy.tar")
    shutil.copy(shard, copy)
    build_manifest(copy, Img)
    a = pq.read_table(manifest_paths(shard)[1])
    b = pq.read_table(manifest_paths(copy)[1])
    assert a.select(b.column_names).equals(b.select(b.column_names))
    ha, hb = header(shard), header(copy)
    assert ha["aggregates"] == hb["aggregates"]
    assert hb["shard_sha256"] == ha["shard_sha256"] and hb["shard_id"] == "copy"
    assert verify_manifest(copy) == []


def test_len_and_describe_from_manifests_without_a_scan(written):
    ds = atdata.Dataset(os.path.dirname(written.list_shards()[0]), Img)
    assert len(ds) == 25
    assert ds.describe()["samples"] == 25
    assert ds._shared.indexes == {}  # no shard was scanned
    assert manifest_count(ds.list_shards()[2]) == 5


def test_upstream_manifests_read_with_quirks(interop_dir):
    d = interop_dir / "images"
    shards = [str(d / f"images-00000{i}.tar") for i in range(3)]
    ms = [load_manifest(s) for s in shards]
    assert [m.legacy for m in ms] == [True, True, True]
    assert [m.num_samples for m in ms] == [10, 10, 0]  # upstream drops the last shard's rows
    assert ms[0].header["shard_id"] == "images"  # upstream's wrong id; we key by the shard path
    assert ms[0].kinds == {
        "label": "categorical",
        "score": "numeric",
        "idx": "numeric",
        "tags": "set",
        "flag": "categorical",
    }
    assert manifest_count(shards[0]) is None  # upstream counts are not trusted for len()
    source = atdata.URLSource(shards)
    frames = [m.frame(source) for m in ms]
    assert [len(f) for f in frames] == [10, 10, 5]
    for s, f in zip(shards, frames, strict=True):
        assert list(zip(f["__offset__"], f["__size__"], strict=True)) == [
            (o, z) for _n, o, z in scan_tar_file(s)
        ]
    assert list(frames[2]["idx"]) == [20, 21, 22, 23, 24]
    assert list(frames[0]["tags"].map(list))[:3] == [[], ["t0"], ["t0", "t1"]]
    expected = json.loads((interop_dir / "expected.json").read_text())["images"]["samples"]
    assert list(frames[1]["label"]) == [e["label"] for e in expected[10:20]]
    problems = verify_manifest(shards[2], source)
    assert any("header says 0 samples, shard" in p and "holds 5" in p for p in problems)


def test_upstream_shards_rebuilt_by_cli(tmp_path, interop_dir):
    from atdata.cli import main

    for n in os.listdir(interop_dir / "images"):
        if n.endswith(".tar"):
            shutil.copy(interop_dir / "images" / n, tmp_path / n)
    assert main(["manifest", "build", str(tmp_path)]) == 0
    assert main(["manifest", "build", str(tmp_path)]) == 0  # up to date: nothing rebuilt
    assert main(["manifest", "verify", str(tmp_path)]) == 0
    h = json.loads((tmp_path / "images-000002.manifest.json").read_text())
    assert (h["shard_id"], h["num_samples"], h["aggregates"]["idx"]["min"]) == (
        "images-000002",
        5,
        20.0,
    )
    shutil.copy(interop_dir / "images" / "images-000000.manifest.json", tmp_path)
    shutil.copy(interop_dir / "images" / "images-000000.manifest.parquet", tmp_path)
    assert main(["manifest", "verify", str(tmp_path)]) == 1


# -- staleness and corruption -----------------------------------------------------------------


def test_rewritten_shard_makes_manifest_stale(written, tmp_path_factory):
    shard = written.list_shards()[2]
    other = tmp_path_factory.mktemp("other") / "other.tar"
    atdata.write_samples([make(i) for i in range(7)], other, key="index")
    shutil.copy(other, shard)
    m = load_manifest(shard)
    with pytest.raises(IntegrityError, match="stale"):
        m.check_fresh()
    assert "stale" in verify_manifest(shard)[0]
    ds = atdata.Dataset(os.path.dirname(shard), Img)
    with pytest.raises(IntegrityError, match=r"img-000002\.manifest\.json is stale"):
        ds.query(lambda df: df["idx"] > 0)


def test_parquet_from_another_shard_is_detected(written):
    a, b = written.list_shards()[:2]
    shutil.copy(manifest_paths(a)[1], manifest_paths(b)[1])
    with pytest.raises(IntegrityError, match="does not belong to header"):
        load_manifest(b).table(None)


def test_missing_and_corrupt_parquet_name_the_file(written):
    shard = written.list_shards()[0]
    ppath = manifest_paths(shard)[1]
    with open(ppath, "r+b") as f:
        f.seek(8)
        f.write(b"garbage!" * 8)
    with pytest.raises(IntegrityError, match=r"img-000000\.manifest\.parquet is corrupt"):
        written.query("idx > 1")
    os.unlink(ppath)
    with pytest.raises(IntegrityError, match=r"img-000000\.manifest\.parquet is missing"):
        load_manifest(shard).table(None)


def test_corrupt_header_names_the_file(written):
    shard = written.list_shards()[0]
    with open(manifest_paths(shard)[0], "w") as f:
        f.write("{not json")
    with pytest.raises(IntegrityError, match=r"img-000000\.manifest\.json is corrupt"):
        load_manifest(shard)


def test_wrong_offsets_are_detected_by_verify_and_never_return_wrong_samples(written):
    shard = written.list_shards()[0]
    ppath = manifest_paths(shard)[1]
    t = pq.read_table(ppath)
    offs = t.column("__offset__").to_pylist()
    offs[2], offs[3] = offs[3], offs[2]  # swapped, same token and count
    t = t.set_column(1, "__offset__", pa.array(offs, pa.int64()))
    pq.write_table(t, ppath)
    problems = verify_manifest(shard)
    assert problems == [f"{ppath}: 2 row(s) with wrong offset/size, e.g. key '00000002'"]
    ds = atdata.Dataset(shard, Img)
    res = ds.query(lambda df: df["idx"] == 2)
    with pytest.raises(IntegrityError, match=r"holds '00000003\.msgpack'"):
        list(res.samples)


# -- aggregates -------------------------------------------------------------------------------


def test_categorical_falls_back_to_cardinality_past_the_limit():
    a = CategoricalAggregate(limit=3)
    for v in ["a", "b", "c", "a"]:
        a.add(v)
    assert a.to_dict() == {
        "type": "categorical",
        "cardinality": 3,
        "value_counts": {"a": 2, "b": 1, "c": 1},
    }
    for v in ["d", "e", "a"]:
        a.add(v)
    assert a.to_dict() == {"type": "categorical", "cardinality": 5}
    assert a.value_counts == {"a": 3, "b": 1, "c": 1, "d": 1, "e": 1}  # still counted in memory


def test_empty_numeric_aggregate_is_null_not_infinity():
    assert NumericAggregate().to_dict() == {
        "type": "numeric",
        "min": None,
        "max": None,
        "mean": None,
        "count": 0,
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(10**6), 10**6)), max_size=40))
def test_numeric_aggregate_matches_data(values):
    a = NumericAggregate()
    for v in values:
        a.add(v)
    got = a.to_dict()
    real = [v for v in values if v is not None]
    assert got["count"] == len(real)
    if real:
        assert (got["min"], got["max"]) == (min(real), max(real))
        assert got["mean"] == pytest.approx(sum(real) / len(real))
