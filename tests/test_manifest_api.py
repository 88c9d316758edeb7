"""The documented ``atdata.manifest`` API: ManifestBuilder/Writer, ShardManifest, aggregates,
QueryExecutor over manifests, field proxies and predicates, and ``ds.query`` results as lists."""

from __future__ import annotations

import datetime
import json
import os
from typing import Annotated

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata.manifest import (
    F,
    FieldProxy,
    ManifestBuilder,
    ManifestField,
    ManifestWriter,
    NumericAggregate,
    Predicate,
    QueryExecutor,
    SampleLocation,
    SetAggregate,
    ShardManifest,
    create_aggregate,
    query_fields,
    resolve_manifest_fields,
)


@atdata.packable
class Pic:
    pixels: atdata.NDArray
    label: Annotated[str, ManifestField("categorical")]
    score: Annotated[float, ManifestField(aggregate="numeric")]
    tags: Annotated[list[str], ManifestField("set")]
    secret: Annotated[str, ManifestField("categorical", exclude=True)] = ""


def pic(i: int) -> Pic:
    return Pic(
        pixels=np.full((2, 2), i, "u1"),
        label=["dog", "cat", "bird"][i % 3],
        score=i / 10,
        tags=[["in"], ["out", "day"], []][i % 3],
    )


# -- fields and aggregates ----------------------------------------------------------------------


def test_resolve_manifest_fields_and_errors():
    got = resolve_manifest_fields(Pic)
    assert got == {
        "label": ManifestField("categorical"),
        "score": ManifestField("numeric"),
        "tags": ManifestField("set"),
    }
    assert got["score"].aggregate == got["score"].kind == "numeric"
    with pytest.raises(TypeError, match="'str' is not a sample type"):
        resolve_manifest_fields(str)
    with pytest.raises(ValueError, match="aggregate must be one of categorical, numeric, set"):
        ManifestField("median")  # type: ignore[arg-type]


def test_aggregates_by_hand():
    agg = create_aggregate("categorical")
    for v in ["b", "a", "b", None, True]:
        agg.add(v)
    assert agg.cardinality == 3 and agg.value_counts == {"b": 2, "a": 1, "True": 1}
    n = NumericAggregate()
    assert (n.mean, n.count, n.to_dict()["min"]) == (0.0, 0, None)
    for v in (2, 4.5, float("nan"), None):
        n.add(v)
    assert (n.min, n.max, n.mean, n.count) == (2.0, 4.5, 3.25, 2)
    s = SetAggregate()
    s.add(["z", "a"])
    s.add(None)
    assert s.all_values == {"a", "z"} and s.to_dict()["all_values"] == ["a", "z"]
    with pytest.raises(ValueError, match="Unknown aggregate kind: 'mode'"):
        create_aggregate("mode")


@settings(max_examples=50, deadline=None, database=None)
@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), max_size=30))
def test_numeric_aggregate_matches_the_values(values):
    n = NumericAggregate()
    for v in values:
        n.add(v)
    real = [v for v in values if v is not None]
    assert n.count == len(real)
    if real:
        assert (n.min, n.max) == (min(real), max(real))
        assert n.mean == pytest.approx(sum(real) / len(real))


# -- builder, writer, round trip ------------------------------------------------------------------


def _built(n: int = 4, shard_id: str = "pics-000000") -> ShardManifest:
    b = ManifestBuilder(Pic, shard_id, schema_version="2.1.0", source_job_id="job-7")
    for i in range(n):
        b.add_sample(key=f"k{i}", offset=512 + 1024 * i, size=100 + i, sample=pic(i))
    return b.build()


def test_builder_builds_header_rows_and_provenance():
    m = _built()
    assert (m.shard_id, m.schema_type, m.schema_version) == ("pics-000000", "Pic", "2.1.0")
    assert (m.num_samples, m.size_bytes) == (4, 100 + 101 + 102 + 103)
    assert m.provenance == {"source_job_id": "job-7"}
    assert m.aggregates["label"] == {
        "type": "categorical",
        "cardinality": 3,
        "value_counts": {"dog": 2, "cat": 1, "bird": 1},
    }
    assert m.aggregates["score"]["max"] == 0.3
    assert m.aggregates["tags"]["all_values"] == ["day", "in", "out"]
    assert list(m.samples.columns) == [
        "__key__",
        "__offset__",
        "__size__",
        "label",
        "score",
        "tags",
    ]
    assert list(m.samples["__offset__"]) == [512, 1536, 2560, 3584]
    empty = ManifestBuilder(Pic, "none").build()
    assert empty.num_samples == 0 and empty.samples.empty


def test_writer_round_trip(tmp_path):
    m = _built()
    jpath, ppath = ManifestWriter(tmp_path / "pics-000000").write(m)
    assert (jpath.name, ppath.name) == ("pics-000000.manifest.json", "pics-000000.manifest.parquet")
    assert sorted(os.listdir(tmp_path)) == [jpath.name, ppath.name]  # no temp file left
    header = json.loads(jpath.read_text())
    assert header["shard_id"] == "pics-000000" and header["provenance"] == {
        "source_job_id": "job-7"
    }
    back = ShardManifest.from_files(jpath, ppath)
    assert (back.num_samples, back.size_bytes, back.aggregates) == (4, 406, m.aggregates)
    assert back.created_at == m.created_at
    assert list(back.samples["__key__"]) == ["k0", "k1", "k2", "k3"]
    assert back.samples["tags"].tolist() == [["in"], ["out", "day"], [], ["in"]]
    # manifests without their shard (written for shards elsewhere) are still queryable
    r = QueryExecutor.from_directory(tmp_path).query(where=F.label == "dog")
    assert [(loc.shard, loc.key, loc.offset) for loc in r] == [
        ("pics-000000", "k0", 512),
        ("pics-000000", "k3", 3584),
    ]
    head = ShardManifest.from_json_only(jpath)
    assert head.samples.empty and head.aggregates == m.aggregates
    with pytest.raises(FileNotFoundError, match=r"nope\.manifest\.json does not exist"):
        ShardManifest.from_json_only(tmp_path / "nope.manifest.json")
    with pytest.raises(FileNotFoundError):
        ShardManifest.from_files(jpath, tmp_path / "nope.manifest.parquet")


# -- executor over manifests ----------------------------------------------------------------------


def _frame_manifest(shard_id: str, rows: list[tuple[str, str, float]]) -> ShardManifest:
    df = pd.DataFrame(
        {
            "__key__": [r[0] for r in rows],
            "__offset__": [512 * (i + 1) for i in range(len(rows))],
            "__size__": [10] * len(rows),
            "label": [r[1] for r in rows],
            "score": [r[2] for r in rows],
        }
    )
    aggs = {  # aggregates that match the rows
        "label": {"type": "categorical", "value_counts": dict(df["label"].value_counts())},
        "score": {
            "type": "numeric",
            "min": float(df["score"].min()),
            "max": float(df["score"].max()),
            "count": len(df),
        },
    }
    return ShardManifest(
        shard_id, "Pic", "1.0.0", len(df), 0, datetime.datetime.now(datetime.UTC), aggs, df
    )


def test_executor_over_manifests_in_memory():
    ms = [
        _frame_manifest("a", [("a0", "dog", 0.9), ("a1", "cat", 0.2)]),
        _frame_manifest("b", [("b0", "bird", 0.5), ("b1", "dog", 0.7)]),
    ]
    ex = QueryExecutor(ms)
    r = ex.query(where=lambda df: df["label"] == "dog")
    assert r == [SampleLocation("a", "a0", 512, 10), SampleLocation("b", "b1", 1024, 10)]
    assert [loc.key for loc in ex.query(where=F.score > 0.6)] == ["a0", "b1"]
    r = ex.query(where=F.label.isin(["bird"]))
    assert (r.list_keys(), r.stats.shards_pruned) == (["b0"], 1)  # shard a ruled out by counts
    assert ex.query(where=~(F.label == "dog")).list_keys() == ["a1", "b0"]
    assert QueryExecutor([]).query(where=F.score > 0) == []
    with pytest.raises(atdata.ConfigError, match="do not name their shards"):
        list(r.samples)


def test_from_directory_and_from_shard_urls(tmp_path):
    ds = atdata.write_samples(
        [pic(i) for i in range(7)], tmp_path / "p.tar", maxcount=3, key="index", manifest=True
    )
    shards = ds.list_shards()
    ex = QueryExecutor.from_directory(tmp_path)
    assert [m.shard_id for m in ex.list_manifests()] == ["p-000000", "p-000001", "p-000002"]
    r = ex.query(where=lambda df: df["tags"].apply(lambda t: "day" in t))
    assert [(loc.shard, loc.key) for loc in r] == [
        ("p-000000", "00000001"),
        ("p-000001", "00000004"),
    ]
    assert [
        s.score for s in QueryExecutor.from_directory(tmp_path, Pic).query(F.label == "cat").samples
    ] == [0.1, 0.4]
    os.unlink(shards[1][:-4] + ".manifest.parquet")
    ex = QueryExecutor.from_shard_urls([*shards, str(tmp_path / "none.tar")])
    assert [len(m.samples) for m in ex.list_manifests()] == [3, 0, 1]  # header only; none skipped
    assert ex.query(where=F.score >= 0).list_keys() == [
        "00000000",
        "00000001",
        "00000002",
        "00000006",
    ]
    with pytest.raises(FileNotFoundError, match="no directory"):
        QueryExecutor.from_directory(tmp_path / "missing")


def test_dataset_query_results_are_locations(tmp_path):
    ds = atdata.write_samples(
        [pic(i) for i in range(6)], tmp_path / "q.tar", maxcount=3, key="index", manifest=True
    )
    r = ds.query(where=(F.label == "dog") | (ds.fields.score > 0.45))
    assert isinstance(r, list) and all(isinstance(x, SampleLocation) for x in r)
    assert [m.key for m in r] == ["00000000", "00000003", "00000005"]
    assert r[0].shard == ds.list_shards()[0]  # a dataset's locations name the shard's path
    assert [s.score for s in r.samples] == [0.0, 0.3, 0.5]
    plain = atdata.write_samples([pic(0)], tmp_path / "plain.tar")
    with pytest.raises(FileNotFoundError, match="atdata manifest build"):
        plain.query(where=F.score > 0)


# -- proxies and predicates -----------------------------------------------------------------------


def test_predicate_repr_names_field_and_operator():
    # Upstream prints a comparison as Predicate('x' gt 5): the operator by name, the field quoted.
    assert repr(F.x > 5) == "Predicate('x' gt 5)"
    names = [repr(p).split()[1] for p in (F.x == 1, F.x != 1, F.x < 1, F.x <= 1, F.x >= 1)]
    assert names == ["eq", "ne", "lt", "le", "ge"]
    assert repr(F.label.isin(["dog", "cat"])) == "Predicate('label' isin ('dog', 'cat'))"
    assert repr(F.score.between(0, 1)) == "Predicate('score' between 0 and 1)"
    assert repr(~F.tags.contains("t0")) == "~Predicate('tags' contains 't0')"
    assert repr((F.x > 1) | (F.y < 2)) == "(Predicate('x' gt 1) | Predicate('y' lt 2))"


def test_predicates_evaluate_compose_and_flatten():
    df = pd.DataFrame({"x": [1, 5, 9], "s": ["a", "b", "a"]})
    p = (F.x > 2) & (F.s == "a") & (F.x < 100)
    assert isinstance(p, Predicate) and p._kind == "and" and len(p._children) == 3
    assert p(df).tolist() == [False, False, True] and p(df).dtype == bool
    q = (F.x == 1) | (F.x == 5) | (F.x == 7)
    assert q._kind == "or" and len(q._children) == 3
    assert q.compile() is q.compile() and q.compile()(df).tolist() == [True, True, False]
    assert (~(F.s == "a"))(df).tolist() == [False, True, False]
    assert F.x.between(2, 9)(df).tolist() == [False, True, True]
    assert repr(~(F.x >= 2) & (F.s != "b")) == "(~Predicate('x' ge 2) & Predicate('s' ne 'b'))"
    assert (F.x > 1).__and__(3) is NotImplemented and (F.x > 1).__or__(3) is NotImplemented
    with pytest.raises(TypeError):
        hash(F.x > 1)
    with pytest.raises(AttributeError):
        _ = F._hidden
    assert repr(F) == "F" and repr(FieldProxy("x")) == "FieldProxy('x')"


def test_query_fields_is_checked():
    Q = query_fields(Pic)
    assert Q.list_fields() == ["label", "score", "tags"]
    assert isinstance(Q.label, FieldProxy) and Q.label.name == "label"
    assert not hasattr(Q, "pixels") and not hasattr(Q, "secret")
    assert "Pic" in repr(Q)
    with pytest.raises(TypeError):
        query_fields(int)


def test_builder_manifest_beside_a_real_shard_gets_tar_offsets(tmp_path):
    # a manifest built by hand with running-sum offsets (as upstream's writer records them):
    # beside its shard, queries check it against the shard and use the real tar offsets
    from atdata._shards.tar import scan_tar_file

    ds = atdata.write_samples([pic(i) for i in range(5)], tmp_path / "h.tar", key="index")
    shard = ds.list_shards()[0]
    b = ManifestBuilder(Pic, "h")
    off = 0
    for s in ds:
        b.add_sample(key=s.__key__, offset=off, size=len(s.packed), sample=s)
        off += 512 + len(s.packed)
    ManifestWriter(tmp_path / "h").write(b.build())
    r = QueryExecutor.from_directory(tmp_path).query(where=lambda df: df["tags"].map(len) == 2)
    members = {n: o for n, o, _z in scan_tar_file(shard)}
    assert [(loc.key, loc.offset) for loc in r] == [
        (k, members[f"{k}.msgpack"]) for k in ("00000001", "00000004")
    ]
    assert [s.label for s in r.samples] == ["cat", "cat"]
