"""Writing manifests: pandas-free, the same parquet bytes as pyarrow's own conversion, and
deterministic (a manifest depends on the shard and the caller's ``created_at``, not on the clock).

pyarrow imports pandas the first time it converts a Python value; the writer builds its columns
from buffers (``manifest/_arrowvals.typed_array``). These tests check those columns against
``pa.array`` (values, types, nulls, errors), the written parquet against one made with
``pa.array`` + ``pq.write_table`` byte for byte, that upstream atdata 0.7.0b1 reads what we write,
and, in a fresh interpreter, that writing a dataset or ingesting one leaves pandas unloaded.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._shards.writer import ShardWriter
from atdata.manifest._arrowvals import typed_array
from atdata.manifest._builder import ManifestObserver, write_manifest
from atdata.manifest._fields import manifest_fields
from atdata.manifest._paths import TOKEN_META

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPES = {"str": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}
_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 64), 1 << 64),
    st.floats(),
    st.text(max_size=6),
)
_NAN = object()


def _plain(values: list) -> list:
    return [_NAN if isinstance(v, float) and math.isnan(v) else v for v in values]


def _conversion(values: list, typ: pa.DataType, build) -> tuple[str, object]:
    try:
        arr = build(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError) as exc:
        return "error", type(exc)
    arr.validate(full=True)
    return "ok", (arr.type, arr.null_count, [str(v) for v in _plain(arr.to_pylist())])


@settings(deadline=None, max_examples=300)
@given(st.sampled_from(sorted(TYPES)), st.lists(_VALUE, max_size=12), st.data())
def test_typed_array_matches_pyarrow(kind, values, data):
    # mostly values of the column's own kind, with strays that pa.array converts or refuses
    own = {
        "str": st.text(max_size=6),
        "bool": st.booleans(),
        "int": st.integers(-(1 << 63), (1 << 63) - 1),
        "float": st.one_of(st.floats(), st.integers(-(1 << 53), 1 << 53)),
    }[kind]
    values = values[:2] + data.draw(st.lists(st.one_of(st.none(), own), max_size=12))
    typ = TYPES[kind]
    assert _conversion(values, typ, typed_array) == _conversion(values, typ, pa.array)


def test_typed_array_edges():
    big = [1 << 53, -(1 << 53), (1 << 53) + 1]
    assert typed_array(big[:2], pa.float64()).to_pylist() == [float(1 << 53), -float(1 << 53)]
    with pytest.raises(pa.ArrowInvalid):  # as pa.array: not exactly a float64
        typed_array(big, pa.float64())
    assert typed_array([], pa.string()).type == pa.string()
    assert typed_array([None, None], pa.int64()).null_count == 2
    nan = typed_array([float("nan"), None], pa.float64())  # NaN is a value, not a null
    assert (nan.null_count, math.isnan(nan[0].as_py())) == (1, True)
    assert math.copysign(1, typed_array([-0.0, None], pa.float64())[0].as_py()) == -1
    for odd in (["\ud800"], [1 << 63]):  # lone surrogate, int64 overflow: pa.array's errors
        typ = pa.string() if isinstance(odd[0], str) else pa.int64()
        assert _conversion(odd, typ, typed_array) == _conversion(odd, typ, pa.array)
        assert _conversion(odd, typ, typed_array)[0] == "error"
    with pytest.raises(pa.ArrowInvalid):
        typed_array([True, "x"], pa.bool_())


@atdata.packable
class Row:
    name: str
    n: int
    x: float
    ok: bool
    tags: list[str]
    opt: int | None = None


_ROW = st.builds(
    Row,
    name=st.text(max_size=5),
    n=st.integers(-(1 << 63), (1 << 63) - 1),
    x=st.floats(),
    ok=st.booleans(),
    tags=st.lists(st.text(max_size=3), max_size=3),
    opt=st.one_of(st.none(), st.integers(-5, 5)),
)


def _reference_parquet(keys, offsets, sizes, rows, token: str) -> bytes:
    """The parquet that pa.array + pq.write_table make of the same values (the old writer)."""
    cols = {
        "__key__": pa.array(keys, pa.string()),
        "__offset__": pa.array(offsets, pa.int64()),
        "__size__": pa.array(sizes, pa.int64()),
        "name": pa.array([r.name for r in rows], pa.string()),
        "n": pa.array([r.n for r in rows], pa.int64()),
        "x": pa.array([r.x for r in rows], pa.float64()),
        "ok": pa.array([r.ok for r in rows], pa.bool_()),
        "tags": pa.ExtensionArray.from_storage(
            pa.json_(),
            pa.array([json.dumps(r.tags, separators=(",", ":")) for r in rows], pa.string()),
        ),
        "opt": pa.array([r.opt for r in rows], pa.int64()),
    }
    table = pa.table(cols).replace_schema_metadata({TOKEN_META: token.encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


@settings(deadline=None, max_examples=40)
@given(st.lists(_ROW, max_size=20))
def test_written_parquet_is_byte_equal_to_pyarrows_conversion(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("m")
    shard = str(d / "s.tar")
    with open(shard, "wb") as f:
        f.write(b"\0" * 1024)
    keys = [f"k{i}" for i in range(len(rows))]
    offsets = [512 + 1024 * i for i in range(len(rows))]
    sizes = [30 + i for i in range(len(rows))]
    fields = ("name", "n", "x", "ok", "tags", "opt")
    columns = {f: [getattr(r, f) for r in rows] for f in fields}
    kinds = manifest_fields(Row)
    jpath, ppath = write_manifest(shard, keys, offsets, sizes, columns, kinds, sample_type=Row)
    token = json.loads(pathlib.Path(jpath).read_text())["manifest_token"]
    assert pathlib.Path(ppath).read_bytes() == _reference_parquet(keys, offsets, sizes, rows, token)


def _write(d: str, created_at=None, stamp=True) -> dict[str, bytes]:
    ob = ManifestObserver(Row, created_at=created_at, stamp=stamp)
    with ShardWriter(
        os.path.join(d, "s-%06d.tar"), maxcount=40, key="index", observers=[ob],
        progress=False, mtime=0, fsync=False,
    ) as w:  # fmt: skip
        for i in range(100):
            w.write(Row(name=f"r{i % 7}", n=i, x=i / 4, ok=i % 2 == 0, tags=["a"] * (i % 3)))
    return {n: pathlib.Path(d, n).read_bytes() for n in sorted(os.listdir(d))}


def test_same_shards_give_byte_identical_manifests(tmp_path):
    when = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    a = _write(str(tmp_path / "a"), when, stamp=False)
    b = _write(str(tmp_path / "b"), when, stamp=False)
    assert len(a) == 9 and a == b  # 3 shards, their headers and rows
    h = json.loads(a["s-000000.manifest.json"])
    assert (h["created_at"], h["shard_stat"]) == ("2026-01-02T00:00:00+00:00", None)
    assert h["manifest_token"] == json.loads(b["s-000000.manifest.json"])["manifest_token"]
    ds = atdata.Dataset[Row](str(tmp_path / "a" / "s-{000000..000002}.tar"))
    got = ds.query(ds.fields.n >= 95).list_locations()  # hashes once
    assert [loc.key for loc in got] == [f"{i:08d}" for i in range(95, 100)]
    # by default the header has the time and the file stamp, and the rows are the same
    c = _write(str(tmp_path / "c"))
    hc = json.loads(c["s-000001.manifest.json"])
    assert hc["shard_stat"]["inode"] == os.stat(tmp_path / "c" / "s-000001.tar").st_ino
    assert hc["manifest_token"] == json.loads(a["s-000001.manifest.json"])["manifest_token"]
    assert c["s-000001.manifest.parquet"] == a["s-000001.manifest.parquet"]


def test_token_changes_with_the_shard(tmp_path):
    a = _write(str(tmp_path / "a"))
    ob = ManifestObserver(Row)
    with ShardWriter(
        str(tmp_path / "b" / "s-%06d.tar"),
        maxcount=40,
        key="index",
        observers=[ob],
        progress=False,
        mtime=1,
        fsync=False,
    ) as w:  # fmt: skip  (another mtime: other shard bytes, same rows)
        for i in range(100):
            w.write(Row(name=f"r{i % 7}", n=i, x=i / 4, ok=i % 2 == 0, tags=["a"] * (i % 3)))
    tok = json.loads((tmp_path / "b" / "s-000000.manifest.json").read_text())["manifest_token"]
    assert tok != json.loads(a["s-000000.manifest.json"])["manifest_token"]


CHILD = r"""
import json, os, sys
import atdata

@atdata.packable
class Pet:
    name: str
    age: int
    weight: float
    tags: list[str]

d = sys.argv[1]
steps = []
atdata.write_samples(
    [Pet(name=f"p{i}", age=i, weight=i / 2, tags=["x"] * (i % 2)) for i in range(50)],
    os.path.join(d, "pets-%06d.tar"), maxcount=20, manifest=True,
)
steps.append(("write_samples typed", "pandas" in sys.modules))
atdata.write_samples([{"a": i, "s": f"v{i}", "f": i * 0.5} for i in range(30)],
                     os.path.join(d, "loose.tar"), manifest=True)
steps.append(("write_samples DictSample", "pandas" in sys.modules))
with open(os.path.join(d, "rows.jsonl"), "w") as f:
    for i in range(300):
        f.write(json.dumps({"id": i, "text": f"t{i % 250}", "score": i / 7}) + "\n")
r = atdata.ingest(os.path.join(d, "rows.jsonl"), os.path.join(d, "out"), dedup_on="text",
                  maxcount=100, progress=False, min_rows=1)
steps.append(("ingest", "pandas" in sys.modules))
from atdata.manifest._builder import build_manifest
build_manifest(os.path.join(d, "pets-000000.tar"), Pet)
steps.append(("build_manifest", "pandas" in sys.modules))
print(json.dumps({"steps": steps, "written": r.rows_written,
                  "files": sorted(os.listdir(os.path.join(d, "out")))}))
"""


def test_writing_manifests_leaves_pandas_unloaded(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "src")])}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["steps"] == [
        ["write_samples typed", False],
        ["write_samples DictSample", False],
        ["ingest", False],
        ["build_manifest", False],
    ]
    assert out["written"] == 250
    assert [n for n in out["files"] if n.endswith(".manifest.parquet")] == [
        f"data-{i:06d}.manifest.parquet" for i in range(3)
    ]


UPSTREAM_READ = r"""
import json, sys
from atdata.manifest import ShardManifest
m = ShardManifest.from_files(sys.argv[1], sys.argv[2])
df = m.samples
print(json.dumps({"n": m.num_samples, "created_at": m.created_at.isoformat(),
                  "columns": list(df.columns), "rows": json.loads(df.to_json(orient="records")),
                  "aggregates": m.aggregates}))
"""


def test_upstream_reads_our_manifests(tmp_path):
    from tests._upstream import upstream_python

    py = upstream_python()
    when = datetime.datetime(2026, 3, 4, 5, 6, tzinfo=datetime.UTC)
    _write(str(tmp_path), when, stamp=False)
    script = tmp_path / "read.py"
    script.write_text(UPSTREAM_READ)
    j, p = (str(tmp_path / f"s-000002.manifest.{e}") for e in ("json", "parquet"))
    proc = subprocess.run([py, str(script), j, p], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert (got["n"], got["created_at"]) == (20, "2026-03-04T05:06:00+00:00")
    assert got["columns"] == ["__key__", "__offset__", "__size__", "name", "n", "x", "ok", "tags", "opt"]  # fmt: skip
    mine = pq.read_table(p).to_pylist()
    assert [r["__key__"] for r in got["rows"]] == [f"{i:08d}" for i in range(80, 100)]
    for theirs, ours in zip(got["rows"], mine, strict=True):
        assert theirs["__offset__"] == ours["__offset__"] and theirs["n"] == ours["n"]
        assert (theirs["name"], theirs["x"], theirs["ok"]) == (ours["name"], ours["x"], ours["ok"])
        assert theirs["tags"] == json.loads(ours["tags"])
    assert got["aggregates"] == json.loads(pathlib.Path(j).read_text())["aggregates"]


@atdata.packable
class One:
    v: int


def test_observer_reads_typed_values_at_once_and_falls_back_per_field():
    ob = ManifestObserver(One)
    ob.begin_shard("x.tar")
    for i in range(3):
        ob.add(f"k{i}", 512 + 1024 * i, 10, One(v=i))
    odd = One(v=9)
    del odd.v  # a missing attribute: that value is None, the others are kept
    ob.add("k3", 512 + 3 * 1024, 10, odd)
    ob.add("k4", 512 + 4 * 1024, 10, {"v": 7})  # another type: read by name
    assert ob.columns == {"v": [0, 1, 2, None, 7]}
    assert ob.keys == ["k0", "k1", "k2", "k3", "k4"]
    row = ManifestObserver(Row)
    row.begin_shard("y.tar")
    row.add("a", 512, 10, Row(name="n", n=1, x=0.5, ok=True, tags=["t"]))
    assert row.columns == {
        "name": ["n"], "n": [1], "x": [0.5], "ok": [True], "tags": [["t"]], "opt": [None],
    }  # fmt: skip
