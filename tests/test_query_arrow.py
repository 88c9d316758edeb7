"""The manifest query path stays in Arrow: no pandas unless a DataFrame is asked for.

pyarrow imports pandas (about 50 MB resident) the first time it converts a Python value, so the
query path builds its values from buffers (``manifest/_arrowvals``); these tests check that those
values are the ones pyarrow's own conversion gives, and, in a fresh interpreter, that typed
predicates, simple SQL, upstream manifests and the viewer's summary leave pandas unloaded while a
lambda predicate and ``to_pandas()`` still get their DataFrame.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata.manifest._arrowvals import (
    array_of,
    bools,
    empty_table,
    int32_fill,
    scalar,
    string_lists,
)

_INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
_FLOAT = st.floats(allow_nan=False)
_TEXT = st.text(max_size=8)


def same(got: pa.Array, want: pa.Array) -> None:
    got.validate(full=True)
    assert got.type == want.type
    assert got.null_count == want.null_count
    assert got.to_pylist() == want.to_pylist()


@settings(deadline=None)  # the first pa.array call imports pandas
@given(
    st.one_of(
        st.lists(st.one_of(st.none(), _INT64)),
        st.lists(st.one_of(st.none(), _INT64, _FLOAT), min_size=1),
        st.lists(st.one_of(st.none(), _TEXT)),
        st.lists(st.one_of(st.none(), st.booleans())),
    )
)
def test_array_of_matches_pyarrow(values):
    if not any(v is not None for v in values):
        return  # all-null lists go to pa.array itself
    try:
        want = pa.array(values)
    except pa.ArrowInvalid:  # e.g. an int a float64 cannot hold among floats: refused alike
        with pytest.raises(pa.ArrowInvalid):
            array_of(values)
        return
    same(array_of(values), want)


@settings(deadline=None)  # the first pa.array call imports pandas
@given(st.one_of(st.none(), st.booleans(), _INT64, _FLOAT, _TEXT))
def test_scalar_matches_pyarrow(v):
    got, want = scalar(v), pa.scalar(v)
    assert got.type == want.type and got.as_py() == want.as_py()


@settings(deadline=None)  # the first pa.array call imports pandas
@given(st.lists(st.one_of(st.none(), st.lists(_TEXT, max_size=4))))
def test_string_lists_match_pyarrow(rows):
    same(string_lists(rows), pa.array(rows, pa.list_(pa.string())))


@settings(deadline=None)  # the first pa.array call imports pandas
@given(st.lists(st.booleans()), st.integers(-(1 << 31), (1 << 31) - 1), st.integers(0, 300))
def test_bools_and_fill(flags, value, n):
    same(bools(flags), pa.array(flags, pa.bool_()))
    same(int32_fill(value, n), pa.array([value] * n, pa.int32()))


def test_edges():
    assert pc.equal(array_of([1, 2]), scalar(2)).to_pylist() == [False, True]
    assert empty_table([("k", "string"), ("n", pa.int64())]).schema == pa.schema(
        [("k", pa.string()), ("n", pa.int64())]
    )
    try:
        string_lists([["a", 1]])
    except TypeError as exc:
        assert "not a list of strings" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a list with an int must be refused")


@atdata.packable
class Row:
    label: str
    score: float
    idx: int
    tags: list[str]


_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import atdata
    from atdata.manifest import F

    ds = atdata.Dataset(sys.argv[1])
    Q = ds.fields
    out, steps = {}, []

    def step(name, value):
        out[name] = value
        if "pandas" in sys.modules and not steps:
            steps.append(name)

    step("typed", ds.query((Q.label == "dog") & (Q.score > 1.5)).list_keys())
    step("in_between", len(ds.query(Q.label.isin(["cat"]) & Q.idx.between(3, 11))))
    step("contains", len(ds.query(Q.tags.contains("t1"))))
    step("sql", ds.query("label = 'cat' AND idx >= 25").list_keys())
    step("all", len(ds.query()))
    step("none", len(ds.query(F.idx > 1000)))
    step("arrow_rows", ds.query(Q.idx < 3).to_arrow().num_rows)
    ex = atdata.QueryExecutor.from_directory(sys.argv[2])
    step("upstream", len(ex.query(F.label == "dog")))
    from atdata.viewer._stats import manifest_summary
    step("hist_total", sum(manifest_summary(ds)["histograms"]["score"]["counts"]))
    out["pandas_loaded_by"] = steps[0] if steps else None
    out["lambda"] = ds.query(lambda df: df["idx"] % 10 == 0).list_keys()
    out["pandas_after_lambda"] = "pandas" in sys.modules
    out["frame_rows"] = len(ds.query(Q.idx < 3).to_pandas())
    print(json.dumps(out))
    """
)


def test_plain_queries_leave_pandas_unloaded(tmp_path, interop_dir):
    rows = [
        Row(label=("dog", "cat")[i % 2], score=i / 10, idx=i, tags=[f"t{i % 3}"]) for i in range(30)
    ]
    ds = atdata.write_samples(rows, tmp_path / "r.tar", maxcount=10, key="index", manifest=True)
    expected = json.loads((interop_dir / "expected.json").read_text())["images"]["samples"]
    script = tmp_path / "probe.py"
    script.write_text(_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), ds.url, str(interop_dir / "images")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["pandas_loaded_by"] is None  # no step of the plain queries imported pandas
    assert out["typed"] == ["00000016", "00000018", "00000020", "00000022", "00000024",
                            "00000026", "00000028"]  # fmt: skip
    assert out["in_between"] == 5  # cats 3, 5, 7, 9, 11
    assert out["contains"] == 10
    assert out["sql"] == ["00000025", "00000027", "00000029"]
    assert (out["all"], out["none"], out["arrow_rows"]) == (30, 0, 3)
    assert out["upstream"] == sum(e["label"] == "dog" for e in expected) > 0
    assert out["hist_total"] == 30
    assert out["lambda"] == ["00000000", "00000010", "00000020"]
    assert out["pandas_after_lambda"] is True  # a DataFrame predicate still gets its DataFrame
    assert out["frame_rows"] == 3
