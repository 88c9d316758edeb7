"""NaN, infinities, -0.0 and None in queries: every path (SQL through Arrow and through DuckDB,
typed predicates, lambdas; with and without shard pruning) gives the brute-force answer.

Semantics (documented in ``atdata.manifest._sqlnan``): NaN compares the IEEE way, as in pandas
and numpy (``<``, ``<=``, ``>``, ``>=``, ``=``, ``BETWEEN``, ``IN`` false; ``!=`` true). ``None``
is SQL ``NULL`` in SQL (three-valued logic); a typed predicate's comparison is false for it
(``~`` flips that); a lambda sees pandas' NaN.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import atdata
from atdata.manifest import _read
from atdata.manifest._expr import F

NAN = math.nan


@atdata.packable
class NanRow:
    score: float | None
    idx: int


_values = st.one_of(
    st.none(),
    st.sampled_from([NAN, math.inf, -math.inf, -0.0, 0.0, 1.0, 2.5, -1.5]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
_lits = st.sampled_from([-1.5, -0.0, 0, 1, 2.5])
_leaf = st.one_of(
    st.tuples(st.just("cmp"), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _lits),
    st.tuples(st.just("between"), _lits, _lits),
    st.tuples(st.just("in"), st.lists(_lits, min_size=1, max_size=3).map(tuple)),
)


def _exprs(with_not: bool) -> st.SearchStrategy:
    def extend(inner: st.SearchStrategy) -> st.SearchStrategy:
        combos = [st.tuples(st.sampled_from(["and", "or"]), inner, inner)]
        if with_not:
            combos.append(st.tuples(st.just("not"), inner))
        return st.one_of(*combos)

    return st.recursive(_leaf, extend, max_leaves=4)


def sql_of(e: tuple) -> str:
    k = e[0]
    if k == "cmp":
        return f"score {'=' if e[1] == '==' else e[1]} {e[2]!r}"
    if k == "between":
        return f"score BETWEEN {e[1]!r} AND {e[2]!r}"
    if k == "in":
        return f"score IN ({', '.join(map(repr, e[1]))})"
    if k == "not":
        return f"NOT ({sql_of(e[1])})"
    return f"({sql_of(e[1])}) {k.upper()} ({sql_of(e[2])})"


def typed_of(e: tuple) -> Any:
    k, s = e[0], F.score
    if k == "cmp":
        return {
            "<": s < e[2],
            "<=": s <= e[2],
            ">": s > e[2],
            ">=": s >= e[2],
            "==": s == e[2],
            "!=": s != e[2],
        }[e[1]]
    if k == "between":
        return s.between(e[1], e[2])
    if k == "in":
        return s.isin(e[1])
    if k == "not":
        return ~typed_of(e[1])
    a, b = typed_of(e[1]), typed_of(e[2])
    return (a & b) if k == "and" else (a | b)


def _leaf_value(e: tuple, v: float) -> bool:
    """IEEE (Python float) semantics."""
    if e[0] == "cmp":
        return {
            "<": v < e[2],
            "<=": v <= e[2],
            ">": v > e[2],
            ">=": v >= e[2],
            "==": v == e[2],
            "!=": v != e[2],
        }[e[1]]
    if e[0] == "between":
        return e[1] <= v <= e[2]
    return any(v == x for x in e[1])


def sql3(e: tuple, v: float | None) -> bool | None:
    """SQL three-valued logic, None is NULL."""
    k = e[0]
    if k in ("cmp", "between", "in"):
        return None if v is None else _leaf_value(e, v)
    if k == "not":
        r = sql3(e[1], v)
        return None if r is None else not r
    a, b = sql3(e[1], v), sql3(e[2], v)
    if k == "and":
        return False if a is False or b is False else (None if a is None or b is None else True)
    return True if a is True or b is True else (None if a is None or b is None else False)


def typed2(e: tuple, v: float | None, none_as_nan: bool) -> bool:
    """Two-valued logic: a typed predicate (None: every test false) or pandas (None is NaN)."""
    k = e[0]
    if k in ("cmp", "between", "in"):
        if v is None:
            return _leaf_value(e, NAN) if none_as_nan else False
        return _leaf_value(e, v)
    if k == "not":
        return not typed2(e[1], v, none_as_nan)
    a, b = typed2(e[1], v, none_as_nan), typed2(e[2], v, none_as_nan)
    return (a and b) if k == "and" else (a or b)


_DIRS: dict[tuple, Any] = {}
_ROOT: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    _ROOT[:] = [str(tmp_path_factory.mktemp("nan"))]  # the datasets live (and go) here
    yield
    _DIRS.clear()


def _dataset(values: list[float | None]) -> Any:
    key = tuple("n" if v is None else repr(v) for v in values)
    ds = _DIRS.get(key)
    if ds is None:
        d = tempfile.mkdtemp(prefix="ds-", dir=_ROOT[0] if _ROOT else None)
        rows = [NanRow(score=v, idx=i) for i, v in enumerate(values)]
        ds = _DIRS[key] = atdata.write_samples(
            rows, os.path.join(d, "n.tar"), maxcount=3, key="index", manifest=True
        )
    return ds


def _keys(values: list, pick: Any) -> list[str]:
    return [f"{i:08d}" for i, v in enumerate(values) if pick(v)]


def _no_pruning() -> Any:
    return mock.patch.object(_read.ShardManifest, "prunable", property(lambda self: False))


def _pandas_fallback(pred: Any) -> Any:
    """The executor's pandas path for ``pred``, as when Arrow cannot type a comparison."""
    import pyarrow as pa

    forced = pa.ArrowNotImplementedError("forced: the pandas fallback decides")
    return mock.patch.object(pred, "arrow_mask", side_effect=forced)


_rows = st.lists(_values, min_size=1, max_size=10).map(lambda vs: [0.5, *vs])
_settings = settings(
    max_examples=int(os.environ.get("NAN_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_settings
@given(_rows, _exprs(with_not=True))
def test_sql_paths_agree_with_brute_force(values: list, e: tuple) -> None:
    ds = _dataset(values)
    sql = sql_of(e)
    want = _keys(values, lambda v: sql3(e, v) is True)
    duck = f"({sql}) AND idx % 1 = 0"  # not translatable: DuckDB filters
    assert ds.query(sql).list_keys() == want, sql
    assert ds.query(duck).list_keys() == want, duck
    with _no_pruning():
        assert ds.query(sql).list_keys() == want, sql
        assert ds.query(duck).list_keys() == want, duck


@_settings
@given(_rows, _exprs(with_not=True))
@example([0.5, None, NAN], ("cmp", "!=", 1))  # None fails !=, NaN passes it: on every path
@example([0.5, NAN, -0.0], ("not", ("in", (0, 2.5))))
def test_typed_and_lambda_paths_agree_with_brute_force(values: list, e: tuple) -> None:
    ds = _dataset(values)
    pred = typed_of(e)
    want = _keys(values, lambda v: typed2(e, v, none_as_nan=False))
    assert ds.query(pred).list_keys() == want, pred
    with _no_pruning():
        assert ds.query(pred).list_keys() == want, pred
    with _pandas_fallback(pred):
        assert ds.query(pred).list_keys() == want, pred
        with _no_pruning():
            assert ds.query(pred).list_keys() == want, pred
    lam = _keys(values, lambda v: typed2(e, v, none_as_nan=True))
    assert ds.query(lambda df: pred.mask(df)).list_keys() == lam, pred


def test_reported_case_nan_row_is_not_greater() -> None:
    ds = _dataset([0.5, NAN, 2.0, None, -0.0])
    assert ds.query("score > 1").list_keys() == ["00000002"]
    assert ds.query("score > 1").stats.shards_pruned == 1  # [None, -0.0] cannot match
    assert ds.query("score != 0 AND idx % 1 = 0").stats.shards_pruned == 0  # None: kept
    assert ds.query("score > 1 AND idx % 1 = 0").list_keys() == ["00000002"]
    assert ds.query("NOT (score > 1) AND idx % 1 = 0").list_keys() == [
        "00000000",
        "00000001",
        "00000004",
    ]
    assert ds.query("score != 0.5 AND idx % 1 = 0").list_keys() == [
        "00000001",
        "00000002",
        "00000004",
    ]
    assert ds.query("score = 0 AND idx % 1 = 0").list_keys() == ["00000004"]
    assert ds.query(F.score != 0.5).list_keys() == ["00000001", "00000002", "00000004"]
    pred = F.score != 0.5
    with _pandas_fallback(pred) as forced:  # None (row 3) fails != here too
        assert ds.query(pred).list_keys() == ["00000001", "00000002", "00000004"]
    assert forced.call_count == 1
    pred = F.score.isin([NAN, 0.5])  # a NaN literal matches nothing (IEEE), on both paths
    assert ds.query(pred).list_keys() == ["00000000"]
    with _pandas_fallback(pred):
        assert ds.query(pred).list_keys() == ["00000000"]


def test_rewrite_guards_float_operands_only() -> None:
    import duckdb
    import pyarrow as pa

    from atdata.manifest._sqlnan import ieee_where

    con = duckdb.connect()
    con.register(
        "t", pa.table({"score": [NAN, 2.0, None], "label": ["nan", "b", None], "idx": [1, 2, 3]})
    )

    def run(sql: str) -> list[int]:
        where = ieee_where(con, sql, {"score"})
        return [
            r[0] for r in con.execute(f"SELECT idx FROM t WHERE {where} ORDER BY idx").fetchall()
        ]

    assert run("score::VARCHAR = 'nan'") == [1]  # text stays text
    assert run("label = 'nan' AND score != 2") == [1]
    assert run("score + 1 > 2") == [2]
    assert run("NOT (score > 1)") == [1]
    assert run("score > 1 -- a comment") == [2]
    assert ieee_where(con, "idx > 1 AND label = 'x'", {"score"}) == "idx > 1 AND label = 'x'"
