"""Queries: lambda, field expressions and SQL agree; pruning; ranged fetches (local and HTTP)."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import atdata
from atdata import ConfigError, IntegrityError, SampleLocation, SchemaError, ShardError
from atdata._shards.tar import scan_tar_file
from atdata.manifest._where import where_to_expr
from tests._helpers import serve_directory


@atdata.packable
class Shot:
    image: atdata.NDArray
    label: str
    confidence: float
    idx: int
    tags: list[str]


def make(i: int) -> Shot:
    label = "rare" if i == 137 else ("dog", "cat", "bird")[i % 3]
    return Shot(
        image=np.full((4,), i % 256, dtype="u1"),
        label=label,
        confidence=(i * 37 % 100) / 100,
        idx=i,
        tags=["even"] + (["t7"] if i % 7 == 0 else []) if i % 2 == 0 else [],
    )


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    d = tmp_path_factory.mktemp("shots")
    return atdata.write_samples(
        [make(i) for i in range(200)], d / "shots.tar", maxcount=40, key="index", manifest=True
    )


def brute(ds, pred) -> list[str]:
    return [s.__key__ for s in ds.ordered() if pred(s)]


def test_three_forms_give_the_same_keys(ds):
    Q = ds.fields
    want = brute(ds, lambda s: s.label in ("dog", "cat") and s.confidence > 0.9)
    assert want == [
        "00000016",
        "00000027",
        "00000043",
        "00000054",
        "00000081",
        "00000108",
        "00000127",
        "00000135",
        "00000154",
        "00000162",
        "00000181",
        "00000189",
    ]
    by_sql = ds.query("label IN ('dog','cat') AND confidence > 0.9").list_keys()
    by_expr = ds.query(Q.label.isin(["dog", "cat"]) & (Q.confidence > 0.9)).list_keys()
    by_lambda = ds.query(
        lambda df: df["label"].isin(["dog", "cat"]) & (df["confidence"] > 0.9)
    ).list_keys()
    assert by_sql == by_expr == by_lambda == want


def test_set_membership_in_all_forms(ds):
    Q = ds.fields
    want = brute(ds, lambda s: "t7" in s.tags)
    assert want == [f"{i:08d}" for i in range(0, 200, 14)]
    assert ds.query(Q.tags.contains("t7")).list_keys() == want
    assert ds.query("list_contains(tags, 't7')").list_keys() == want
    assert ds.query(lambda df: df["tags"].map(lambda t: "t7" in t)).list_keys() == want


def test_or_not_between(ds):
    Q = ds.fields
    e = (Q.idx.between(10, 12) | (Q.label == "rare")) & ~(Q.idx == 11)
    assert ds.query(e).list_keys() == ["00000010", "00000012", "00000137"]
    sql = "(idx BETWEEN 10 AND 12 OR label = 'rare') AND NOT idx = 11"
    assert ds.query(sql).list_keys() == ["00000010", "00000012", "00000137"]


def test_pruning_counts(ds):
    Q = ds.fields
    r = ds.query(Q.idx < 40)
    assert (r.stats.shards_total, r.stats.shards_pruned, r.stats.shards_scanned) == (5, 4, 1)
    assert (r.stats.rows_scanned, r.stats.rows_matched) == (40, 40)
    r = ds.query(Q.label == "rare")
    assert (r.stats.shards_pruned, r.list_keys()) == (4, ["00000137"])
    r = ds.query("label = 'rare' AND confidence >= 0")
    assert (r.stats.shards_pruned, r.list_keys()) == (4, ["00000137"])
    r = ds.query("idx >= 150 AND idx < 165")
    assert (r.stats.shards_pruned, len(r)) == (3, 15)
    r = ds.query(~(Q.idx >= 40))
    assert (r.stats.shards_pruned, len(r)) == (4, 40)
    r = ds.query("idx < 40 OR label = 'x'")  # an OR prunes when every side is known
    assert (r.stats.shards_pruned, len(r)) == (4, 40)
    r = ds.query("idx < 40 OR upper(label) = 'X'")  # one side unknown: nothing pruned
    assert (r.stats.shards_pruned, len(r)) == (0, 40)
    r = ds.query(lambda df: df["idx"] < 40)  # opaque predicate: nothing pruned
    assert (r.stats.shards_pruned, r.stats.shards_scanned) == (0, 5)
    r = ds.query(Q.tags.contains("nope"))
    assert (r.stats.shards_pruned, len(r)) == (5, 0)


def test_locations_are_tar_offsets_and_fetch_by_ranged_read(ds):
    r = ds.query(ds.fields.idx.isin([3, 41]))
    locs = r.list_locations()
    s0, s1 = ds.list_shards()[:2]
    members0 = {n: (o, z) for n, o, z in scan_tar_file(s0)}
    assert locs[0] == SampleLocation(s0, "00000003", *members0["00000003.msgpack"])
    assert locs[1].shard == s1
    got = [s.idx for s in r.samples]
    assert [loc.key for loc in r] == ["00000003", "00000041"]  # a list of SampleLocation
    assert got == [3, 41]
    assert ds.get_sample(locs[1]).image.tolist() == [41] * 4
    assert ds.get_sample(locs[1]).__key__ == "00000041"
    df = r.to_pandas()
    assert list(df["__key__"]) == ["00000003", "00000041"] and list(df["__shard__"]) == [s0, s1]


def test_limit_and_all(ds):
    assert len(ds.query()) == 200
    assert ds.query(limit=3).list_keys() == ["00000000", "00000001", "00000002"]


def test_query_fields_function_and_errors(ds):
    Q = atdata.query_fields(Shot)
    assert Q.list_fields() == ["label", "confidence", "idx", "tags"]
    with pytest.raises(SchemaError, match="'image' is not a queryable field of Shot"):
        _ = Q.image
    with pytest.raises(SchemaError, match="contains\\(\\) needs a list\\[str\\] field"):
        Q.label.contains("x")
    with pytest.raises(ConfigError, match=re.escape("combine query predicates with & | ~")):
        _ = (Q.idx > 1) and (Q.idx < 3)
    with pytest.raises(ConfigError, match=r"SQL query .* failed"):
        ds.query("nosuchcol = 1")
    with pytest.raises(ConfigError, match="boolean"):
        ds.query(lambda df: df["idx"])


def test_dataset_without_manifests_says_how_to_build(tmp_path):
    plain = atdata.write_samples([make(i) for i in range(3)], tmp_path / "p.tar", key="index")
    with pytest.raises(FileNotFoundError, match=r"atdata manifest build"):
        plain.query("idx > 1")


def test_query_executor_from_directory(ds):
    d = os.path.dirname(ds.list_shards()[0])
    ex = atdata.QueryExecutor.from_directory(d, sample_type=Shot)
    assert ex.count() == 200
    r = ex.query("confidence = 0.37")
    assert r.list_keys() == ["00000001", "00000101"]
    assert [s.idx for s in r.samples] == [1, 101]
    assert [loc.shard for loc in r] == ["shots-000000", "shots-000002"]  # the shard_id


def test_from_directory_refuses_shards_without_a_manifest(tmp_path):
    full = atdata.write_samples(
        [make(i) for i in range(50)], tmp_path / "s.tar", maxcount=10, key="index", manifest=True
    )
    gone = full.list_shards()[3]
    os.unlink(gone[: -len(".tar")] + ".manifest.json")
    os.unlink(gone[: -len(".tar")] + ".manifest.parquet")
    with pytest.raises(
        atdata.DataNotFoundError,
        match=r"1 shard\(s\) in .* have no manifest \(e\.g\. s-000003\.tar\)",
    ):
        atdata.QueryExecutor.from_directory(tmp_path, sample_type=Shot)
    with pytest.raises(atdata.DataNotFoundError, match="atdata manifest build"):
        atdata.Dataset(str(tmp_path / "s-*.tar"), Shot).query(lambda df: df["idx"] >= 0)
    with pytest.raises(FileNotFoundError):
        atdata.QueryExecutor.from_directory(tmp_path / "nowhere")
    atdata.write_samples([make(i) for i in range(10, 20)], gone, key="index", manifest=True)
    ex = atdata.QueryExecutor.from_directory(tmp_path, sample_type=Shot)
    assert len(ex.query(lambda df: df["idx"] >= 0)) == 50


def test_sql_query_pruning_every_shard_is_empty_not_an_error(ds):
    r = ds.query("idx > 1000")
    assert (r.list_keys(), r.stats.shards_pruned, r.stats.shards_total) == ([], 5, 5)
    assert ds.query("label = 'nope' AND idx < 3").list_keys() == []


def test_where_to_expr_only_uses_safe_conjuncts():
    assert (
        repr(where_to_expr("a = 1 OR b = 2", complete=True))
        == "(Predicate('a' eq 1) | Predicate('b' eq 2))"
    )
    assert where_to_expr("a = 1 OR upper(s) = 'A'") is None  # one side unknown: no constraint
    assert (
        repr(where_to_expr("(a = 1 AND upper(s) = 'A') OR b = 2"))
        == "(Predicate('a' eq 1) | Predicate('b' eq 2))"
    )
    assert where_to_expr("(a = 1 AND upper(s) = 'A') OR b = 2", complete=True) is None
    assert where_to_expr("(a = 1") is None and where_to_expr("(score) > 3") is None
    assert repr(where_to_expr("label = 'x AND y' AND 3 < n")) == (
        "(Predicate('label' eq 'x AND y') & Predicate('n' gt 3))"
    )
    assert (
        repr(where_to_expr("n BETWEEN 1 AND 2 AND upper(s) = 'A'"))
        == "Predicate('n' between 1 and 2)"
    )
    assert repr(where_to_expr("\"my col\" IN ('a', 'it''s')")) == (
        "Predicate('my col' isin ('a', \"it's\"))"
    )
    assert where_to_expr("NOT n = 1") is None
    assert where_to_expr("n > 1 AND upper(s) = 'A'", complete=True) is None
    assert repr(where_to_expr("n > 1 AND s = 'A'", complete=True)) == (
        "(Predicate('n' gt 1) & Predicate('s' eq 'A'))"
    )


def test_sql_beyond_simple_terms_runs_in_duckdb(ds):
    want = brute(ds, lambda s: s.idx % 67 == 0 and s.label != "dog")
    assert want == ["00000067", "00000134"]
    assert ds.query("idx % 67 = 0 AND label <> 'dog'").list_keys() == want
    assert ds.query("IDX % 67 = 0 AND LABEL <> 'dog'").list_keys() == want
    assert ds.query("Label = 'rare' AND Idx > 100").list_keys() == ["00000137"]
    r = ds.query("len(tags) = 2 AND idx < 30")
    assert (r.list_keys(), r.stats.shards_pruned) == (["00000000", "00000014", "00000028"], 4)


# -- upstream manifests -----------------------------------------------------------------------


def test_query_upstream_directory(interop_dir):
    expected = json.loads((interop_dir / "expected.json").read_text())["images"]["samples"]
    ex = atdata.QueryExecutor.from_directory(interop_dir / "images")
    r = ex.query(lambda df: df["label"] == "dog")
    assert [s["idx"] for s in r.samples] == [e["idx"] for e in expected if e["label"] == "dog"]
    assert r.stats.rows_scanned == 25  # the 5 samples upstream's last manifest lost are found
    r = ex.query("list_contains(tags, 't1') AND score > 0.8")
    want = [e["idx"] for e in expected if "t1" in e["tags"] and e["score"] > 0.8]
    assert [s["idx"] for s in r.list_samples()] == want and want


# -- property: pruning never loses a match ------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    op=st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "between", "in", "label", "contains"]),
    a=st.integers(-5, 205),
    b=st.integers(-5, 205),
    neg=st.booleans(),
)
def test_pruning_is_sound(ds, op, a, b, neg):
    Q = ds.fields
    if op == "between":
        e, fn = Q.idx.between(a, b), lambda s: a <= s.idx <= b
    elif op == "in":
        e, fn = Q.idx.isin([a, b]), lambda s: s.idx in (a, b)
    elif op == "label":
        lab = ("dog", "rare", "zzz")[a % 3]
        e, fn = Q.label == lab, lambda s: s.label == lab
    elif op == "contains":
        e, fn = Q.tags.contains("t7"), lambda s: "t7" in s.tags
    else:
        import operator

        f = {
            "==": operator.eq,
            "!=": operator.ne,
            "<": operator.lt,
            "<=": operator.le,
            ">": operator.gt,
            ">=": operator.ge,
        }[op]
        e, fn = Leaf_(Q.idx, op, a), (lambda s: f(s.idx, a))
    if neg:
        e, fn0 = ~e, fn
        fn = lambda s: not fn0(s)  # noqa: E731
    want = [k for k, s in ALL.items() if fn(s)]
    assert ds.query(e).list_keys() == want


ALL = {f"{i:08d}": make(i) for i in range(200)}


def _sql_tree(draw, depth: int) -> tuple[str, Any]:
    """A random WHERE clause over ``Shot`` and the same condition in Python."""
    kind = draw(st.sampled_from(["leaf"] * 3 + (["and", "or", "not"] if depth < 3 else [])))
    if kind in ("and", "or"):
        (a, fa), (b, fb) = _sql_tree(draw, depth + 1), _sql_tree(draw, depth + 1)
        if kind == "and":
            return f"({a} AND {b})", lambda s: fa(s) and fb(s)
        return f"({a} OR {b})", lambda s: fa(s) or fb(s)
    if kind == "not":
        a, fa = _sql_tree(draw, depth + 1)
        return f"NOT ({a})", lambda s: not fa(s)
    n, m = draw(st.integers(-5, 205)), draw(st.integers(-5, 205))
    leaf = draw(st.sampled_from(["cmp", "label", "between", "in", "contains", "mod", "conf"]))
    if leaf == "cmp":
        op = draw(st.sampled_from(["=", "<>", "<", "<=", ">", ">="]))
        import operator

        f = {"=": operator.eq, "<>": operator.ne, "<": operator.lt, "<=": operator.le,
             ">": operator.gt, ">=": operator.ge}[op]  # fmt: skip
        return f"idx {op} {n}", lambda s: f(s.idx, n)
    if leaf == "label":
        lab = ("dog", "rare", "zzz")[n % 3]
        return f"label = '{lab}'", lambda s: s.label == lab
    if leaf == "between":
        return f"idx BETWEEN {n} AND {m}", lambda s: n <= s.idx <= m
    if leaf == "in":
        return f"idx IN ({n}, {m})", lambda s: s.idx in (n, m)
    if leaf == "contains":
        return "list_contains(tags, 't7')", lambda s: "t7" in s.tags
    if leaf == "conf":
        return f"{m / 200} < confidence", lambda s: m / 200 < s.confidence
    return f"idx % 7 = {n % 7}", lambda s: s.idx % 7 == n % 7  # DuckDB only


@st.composite
def sql_trees(draw: Any) -> tuple[str, Any]:
    return _sql_tree(draw, 0)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=sql_trees())
def test_sql_trees_match_brute_force(ds, tree):
    sql, fn = tree
    want = [k for k, s in ALL.items() if fn(s)]
    assert ds.query(sql).list_keys() == want, sql


def Leaf_(ref, op, v):
    return {
        "==": ref == v,
        "!=": ref != v,
        "<": ref < v,
        "<=": ref <= v,
        ">": ref > v,
        ">=": ref >= v,
    }[op]


# -- HTTP ranged fetch ------------------------------------------------------------------------


@pytest.fixture()
def http_root(ds):
    root = os.path.dirname(ds.list_shards()[0])
    with serve_directory(root, ranges=True) as srv:
        yield srv.url, srv.gets


def test_http_query_reads_only_ranges(http_root):
    base, log = http_root
    remote = atdata.Dataset(f"{base}/shots-{{000000..000004}}.tar", Shot)
    r = remote.query(remote.fields.label == "rare")
    assert r.stats.shards_pruned == 4
    assert [(s.idx, s.label) for s in r.samples] == [(137, "rare")]
    tar_gets = [(p, rng) for p, rng in log if p.endswith(".tar")]
    assert tar_gets == [
        (
            "/shots-000003.tar",
            f"bytes={r.list_locations()[0].offset - 512}-"
            f"{r.list_locations()[0].offset + r.list_locations()[0].size - 1}",
        )
    ]
    assert sum(p.endswith(".manifest.parquet") for p, _ in log) == 1  # pruned shards' rows not read
    assert sum(p.endswith(".manifest.json") for p, _ in log) == 5


def test_http_server_ignoring_range_is_an_error(ds, tmp_path):
    root = os.path.dirname(ds.list_shards()[0])
    with serve_directory(root) as srv:
        src = atdata.URLSource(f"{srv.url}/shots-000000.tar")
        with pytest.raises(ShardError, match="ignored the Range request"):
            src.read_range(src.list_shards()[0], 1024, 10)


# -- CLI --------------------------------------------------------------------------------------


def test_cli_query_and_count(ds, capsys):
    from atdata.cli import main

    d = os.path.dirname(ds.list_shards()[0])
    assert main(["query", d, "label = 'rare'", "--count"]) == 0
    assert capsys.readouterr().out.strip() == "1"
    assert main(["query", os.path.join(d, "shots-*.tar"), "idx IN (5, 150)"]) == 0
    out = capsys.readouterr().out
    assert "00000005" in out and "00000150" in out and "2 match(es)" in out
    assert "3 pruned of 5" in out


def test_stale_offsets_never_return_wrong_samples(ds):
    a, b = ds.query(ds.fields.idx.isin([5, 6])).list_locations()
    wrong = SampleLocation(a.shard, a.key, b.offset, a.size)  # key 5, but the bytes of sample 6
    with pytest.raises(IntegrityError, match=r"holds '00000006\.msgpack'"):
        ds.get_sample(wrong)


# -- S3 (moto server on loopback) -------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_client(s3_endpoint):
    from atdata.stores._s3 import make_client

    client = make_client(
        endpoint_url=s3_endpoint, aws_access_key_id="testing",
        aws_secret_access_key="testing-secret", region_name="us-east-1",
    )  # fmt: skip
    client.create_bucket(Bucket="atdata-query")
    return client


def test_s3_query_prunes_and_fetches_by_range(ds, s3_client):
    d = os.path.dirname(ds.list_shards()[0])
    for n in sorted(os.listdir(d)):
        if n.startswith("shots-") and not n.endswith(".idx"):
            s3_client.upload_file(os.path.join(d, n), "atdata-query", f"data/{n}")
    src = atdata.S3Source("s3://atdata-query/data/shots-{000000..000004}.tar", client=s3_client)
    remote = atdata.Dataset(src, Shot)
    r = remote.query("idx IN (3, 150) AND label <> 'x'")
    assert (r.stats.shards_pruned, r.stats.shards_scanned) == (3, 2)
    assert [(s.idx, s.__key__) for s in r.samples] == [(3, "00000003"), (150, "00000150")]
    assert r.list_locations()[1].shard == "s3://atdata-query/data/shots-000003.tar"


def test_query_refuses_to_ignore_filter_map_and_select(tmp_path):
    import atdata as _atdata

    ds = _atdata.write_samples(
        [_atdata.DictSample(label="a", n=i) for i in range(4)],
        tmp_path / "q.tar",
        manifest=True,
        key="index",
    )
    assert [loc.key for loc in ds.query("n >= 2").list_locations()] == ["00000002", "00000003"]
    for derived, named in [
        (ds.filter(lambda s: s["n"] > 0), "filter"),
        (ds.map(lambda s: s), "map"),
        (ds.subset([0, 1]), "selection"),
    ]:
        with pytest.raises(_atdata.ConfigError, match=named):
            derived.query("n >= 2")
