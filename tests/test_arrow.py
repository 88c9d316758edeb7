"""Arrow conversion both ways: ``Dataset.to_arrow_reader``/``__arrow_c_stream__``/``to_arrow``/
``to_parquet``/``to_polars``, and ``atdata.from_arrow``/``schema_from_arrow``."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import atdata
from atdata._wire.sample import _values_equal

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

DTYPES = ["u1", "f2", "f4", "i8", "?", ">i4"]


# -- strategies: a @packable type and samples of it ------------------------------------------------


@st.composite
def _array(draw: Any, dtype: str, shape: tuple[int, ...] | int) -> np.ndarray:
    if isinstance(shape, int):  # ragged: a shape per sample, of this ndim
        shape = tuple(draw(st.lists(st.integers(0, 3), min_size=shape, max_size=shape)))
    n = int(np.prod(shape)) if shape else 1
    if dtype == "?":
        vals = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:
        vals = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    return np.array(vals, dtype=dtype).reshape(shape)


_SCALARS = {
    "str": (str, st.text(max_size=5)),
    "int": (int, st.integers(-(2**63), 2**63 - 1)),
    "float": (float, st.floats(allow_nan=False, width=64)),
    "bool": (bool, st.booleans()),
    "bytes": (bytes, st.binary(max_size=6)),
    "list": (list[int], st.lists(st.integers(-5, 5), max_size=3)),
    "dict": (dict[str, float], st.dictionaries(st.text(max_size=3), st.floats(-1, 1), max_size=2)),
}


@st.composite
def _field(draw: Any, depth: int = 0) -> tuple[Any, Any]:
    """``(annotation, value strategy)`` of one field."""
    kinds = [*_SCALARS, "array", "array", "nested"] if depth == 0 else [*_SCALARS, "array"]
    kind = draw(st.sampled_from(kinds))
    optional = draw(st.booleans())
    if kind == "array":
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(
            st.one_of(
                st.integers(1, 2),  # ragged, of this ndim
                st.just(()),  # 0-d
                st.just((0,)),  # empty
                st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
            )
        )
        ann: Any = atdata.NDArray
        values: Any = _array(dtype, shape)
    elif kind == "nested":
        inner = draw(st.lists(_field(depth + 1), min_size=1, max_size=3))
        cls = _make_type(f"Inner{draw(st.integers(0, 10**6))}", [a for a, _ in inner])
        ann = cls
        values = st.tuples(*[v for _, v in inner]).map(
            lambda vs, cls=cls: cls(**{f"f{i}": v for i, v in enumerate(vs)})
        )
    else:
        ann, values = _SCALARS[kind]
    if optional:
        return ann | None, st.one_of(st.none(), values)
    return ann, values


def _make_type(name: str, anns: list[Any]) -> type:
    return atdata.packable(
        type(name, (), {"__annotations__": {f"f{i}": a for i, a in enumerate(anns)}})
    )


@st.composite
def typed_samples(draw: Any) -> tuple[type, list[Any]]:
    fields = draw(st.lists(_field(), min_size=1, max_size=5))
    cls = _make_type("Drawn", [a for a, _ in fields])
    rows = draw(st.lists(st.tuples(*[v for _, v in fields]), min_size=1, max_size=7))
    return cls, [cls(**{f"f{i}": v for i, v in enumerate(r)}) for r in rows]


def _same(a: Any, b: Any) -> bool:
    return _values_equal(a.to_dict(), b.to_dict())


# -- round trips -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_samples(), st.integers(1, 4))
def test_from_arrow_to_arrow_round_trip(drawn, batch_size):
    cls, samples = drawn
    with tempfile.TemporaryDirectory() as d:
        ds = atdata.write_samples(samples, os.path.join(d, "in.tar"), key="index")
        table = ds.to_arrow(batch_size=batch_size, arrays="auto", with_keys=True)
        assert table.num_rows == len(samples)
        back = atdata.from_arrow(table, os.path.join(d, "typed"), sample_type=cls)
        got = list(back)
        assert got == list(ds)
        assert [s.__key__ for s in got] == [s.__key__ for s in ds]
        derived = atdata.from_arrow(table, os.path.join(d, "derived"))
        assert derived.sample_type.__name__ == "Drawn"
        assert all(_same(a, b) for a, b in zip(derived, ds, strict=True))
        (path,) = ds.to_parquet(os.path.join(d, "x.parquet"), batch_size=batch_size)
        from_pq = atdata.from_arrow(pq.read_table(path), os.path.join(d, "pq"), sample_type=cls)
        assert list(from_pq) == list(ds)  # parquet keeps dtype and shape too


@pytest.fixture
def img_ds(tmp_path):
    @atdata.packable
    class Img:
        pixels: atdata.NDArray
        label: str
        mask: atdata.NDArray | None = None

    samples = [
        Img(
            pixels=np.full((8, 8), i, "u1"),
            label=f"l{i % 3}",
            mask=None if i % 2 else np.ones((i, 2), "?"),
        )
        for i in range(10)
    ]
    return atdata.write_samples(samples, tmp_path / "img-%02d.tar", maxcount=4, key="index")


def test_tensor_columns_keep_dtype_and_shape(img_ds):
    t = pa.table(img_ds)  # the PyCapsule stream protocol
    f = t.schema.field("pixels")
    assert f.type.extension_name == "arrow.fixed_shape_tensor"
    assert f.type.shape == [8, 8] and f.type.value_type == pa.uint8()
    assert f.metadata[b"atdata.dtype"] == b"|u1" and not f.nullable
    m = t.schema.field("mask")  # ragged (n, 2) bool arrays: nested lists
    assert m.metadata[b"atdata.layout"] == b"list" and m.nullable
    assert m.type == pa.list_(pa.list_(pa.bool_()))
    assert t.column("mask").to_pylist()[2] == [[True, True], [True, True]]
    assert t.column("mask").to_pylist()[1] is None
    assert t.schema.metadata[b"atdata.sample_type"] == b"Img"
    arr = t.column("pixels").chunk(0).to_numpy_ndarray()
    assert arr.shape == (len(t.column("pixels").chunk(0)), 8, 8) and arr[3, 0, 0] == 3


def test_reader_batches_columns_and_contiguous_buffer(img_ds):
    reader = img_ds.to_arrow_reader(batch_size=3, columns=["label", "pixels"])
    assert reader.schema.names == ["label", "pixels"]
    batches = list(reader)
    assert [b.num_rows for b in batches] == [3, 3, 3, 1]
    storage = batches[0].column(1).storage
    values = storage.values
    assert values.buffers()[1].size >= 3 * 64  # one buffer holds the batch's three 8x8 images
    assert values.offset == 0 and len(values) == 3 * 64
    keyed = img_ds.to_arrow(columns=["__key__", "label"])
    assert keyed.column("__key__").to_pylist()[:2] == ["00000000", "00000001"]
    with pytest.raises(atdata.ConfigError, match="not fields"):
        img_ds.to_arrow_reader(columns=["nope"])


def test_streaming_reader_holds_one_batch(tmp_path):
    """The reader's batches never grow with the dataset: each holds batch_size rows of
    the same byte size, and the rows are produced as they are read (not up front)."""
    samples = [{"x": np.full(256, i % 7, "f4")} for i in range(400)]
    ds = atdata.write_samples(samples, tmp_path / "big-%02d.tar", maxcount=50)
    produced = []
    orig = ds._raws

    def counting(*a: Any, **k: Any) -> Any:
        for r in orig(*a, **k):
            produced.append(1)
            yield r

    ds._raws = counting  # type: ignore[method-assign]
    reader = ds.to_arrow_reader(batch_size=32)
    assert len(produced) == 32  # the schema is decided from the first batch only
    sizes = []
    for i, b in enumerate(reader):
        sizes.append(b.nbytes)
        assert len(produced) <= (i + 2) * 32  # at most the next batch was read ahead
    assert len(sizes) == 13 and len(set(sizes[:-1])) == 1
    assert sizes[0] <= 32 * 256 * 4 + 1024


def test_ragged_later_batch_names_the_fix(tmp_path):
    samples = [{"a": np.zeros(2 if i < 4 else 3, "f4")} for i in range(6)]
    ds = atdata.write_samples(samples, tmp_path / "r.tar", key="index")
    with pytest.raises(atdata.ArrayLayoutError, match=r"arrays=\{'a': 'list' or 'bytes'\}"):
        ds.to_arrow_reader(batch_size=4).read_all()  # a stream cannot change its schema
    with pytest.raises(atdata.ArrayLayoutError, match="sample '00000004'"):
        ds.to_arrow(batch_size=4, arrays="tensor")  # asked for: not widened
    t = ds.to_arrow(batch_size=4)  # read again with the wider layout
    assert t.schema.field("a").metadata[b"atdata.layout"] == b"list"
    assert [len(v) for v in t.column("a").to_pylist()] == [2, 2, 2, 2, 3, 3]
    t2 = ds.to_arrow(batch_size=4, arrays="bytes")
    back = atdata.from_arrow(t2, tmp_path / "b")
    assert [s.a.shape for s in back] == [(2,)] * 4 + [(3,)] * 2


def test_parquet_round_trip_keeps_dtype_and_shape(img_ds, tmp_path):
    (path,) = img_ds.to_parquet(tmp_path / "img.parquet", row_group_size=4)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 10 and [meta.row_group(i).num_rows for i in range(3)] == [4, 4, 2]
    t = pq.read_table(path)
    assert t.schema.field("pixels").type.shape == [8, 8]
    back = atdata.from_arrow(t, tmp_path / "back", sample_type=img_ds.sample_type)
    with pytest.raises(atdata.ConfigError, match=r"back already holds shards \(data-000000.tar"):
        atdata.from_arrow(t, tmp_path / "back")  # would overwrite the first shard only
    assert list(back) == list(img_ds)
    derived = list(atdata.from_arrow(t, tmp_path / "derived"))
    assert derived[5].pixels.dtype == np.uint8 and derived[5].pixels.shape == (8, 8)
    assert derived[4].mask.dtype == np.bool_ and derived[4].mask.shape == (4, 2)
    parts = img_ds.to_parquet(tmp_path / "p.parquet", maxcount=4)
    assert [pq.read_metadata(p).num_rows for p in parts] == [4, 4, 2]
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_pandas_polars_duckdb_read_directly(img_ds, tmp_path):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    df = pl.DataFrame(img_ds)
    assert df.height == 10 and df["label"].to_list()[:3] == ["l0", "l1", "l2"]
    frame = img_ds.to_polars()
    assert frame.schema["pixels"] == pl.Array(pl.UInt8, (8, 8))
    assert frame["pixels"].to_numpy()[2].shape == (8, 8)
    back = atdata.from_arrow(frame, tmp_path / "pl")
    assert [s.pixels for s in back][2].tolist() == np.full((8, 8), 2, "u1").tolist()
    assert next(iter(back)).pixels.dtype == np.uint8
    rel = duckdb.sql("SELECT label, count(*) AS n FROM img_ds GROUP BY label ORDER BY label")
    assert rel.fetchall() == [("l0", 4), ("l1", 3), ("l2", 3)]
    pdf = img_ds.to_pandas()
    assert list(pdf.columns) == ["pixels", "label", "mask"]
    assert pdf["pixels"][3].shape == (8, 8) and pdf["pixels"][3].dtype == np.uint8
    from_pd = list(atdata.from_arrow(pdf, tmp_path / "pd"))
    assert from_pd[3].pixels.dtype == np.uint8 and from_pd[3].pixels.shape == (8, 8)
    assert from_pd[4].mask.shape == (4, 2) and from_pd[3].mask is None


def test_from_duckdb_and_dict_rows(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    rel = duckdb.sql("SELECT range AS i, 'r' || range AS name FROM range(5)")
    ds = atdata.from_arrow(rel, tmp_path / "duck", type_name="Row")
    assert ds.sample_type.__name__ == "Row" and [s.i for s in ds] == [0, 1, 2, 3, 4]
    rows = [{"img": np.eye(2, dtype="f4") * i, "tag": ["a", "b"][i % 2]} for i in range(3)]
    ds2 = atdata.from_arrow(rows, tmp_path / "rows" / "r-%03d.tar", maxcount=2)
    assert len(ds2.list_shards()) == 2
    assert [s.img[1, 1] for s in ds2] == [0.0, 1.0, 2.0]
    assert {s.name: s.type_name for s in ds2.sample_type.atdata_fields()} == {
        "img": "NDArray[float32]",  # inferred from the first batch: no None seen
        "tag": "str",
    }
    with pytest.raises(atdata.ConfigError, match="row 1 of the input"):
        atdata.from_arrow([{"a": 1}, 5], tmp_path / "bad")


def test_from_arrow_into_an_index(tmp_path):
    index = atdata.Index(path=str(tmp_path / "index.db"))
    t = pa.table({"x": pa.array([1, 2, 3], pa.int64()), "s": ["a", "b", "c"]})
    ds = atdata.from_arrow(t, index, name="nums", type_name="Num")
    assert [s.x for s in ds] == [1, 2, 3]
    again = index.open_dataset("nums")
    assert [s.s for s in again] == ["a", "b", "c"]
    with pytest.raises(atdata.ConfigError, match="name="):
        atdata.from_arrow(t, index)


def test_schema_from_arrow_types():
    schema = pa.schema(
        [
            pa.field("img", pa.fixed_shape_tensor(pa.float32(), [2, 3]), nullable=False),
            pa.field("arr", pa.list_(pa.int16(), 4)),
            pa.field("tags", pa.list_(pa.string())),
            pa.field("meta", pa.struct([pa.field("w", pa.int32(), nullable=False)])),
            pa.field("props", pa.map_(pa.string(), pa.float64())),
            pa.field("when", pa.timestamp("s")),
            pa.field("cat", pa.dictionary(pa.int8(), pa.string())),
        ]
    )
    T = atdata.schema_from_arrow(schema, name="Rec")
    assert {s.name: s.type_name for s in T.atdata_fields()} == {
        "img": "NDArray[float32]",
        "arr": "NDArray[int16] | None",
        "tags": "list[str | None] | None",
        "meta": "Meta | None",
        "props": "dict[str, float | None] | None",
        "when": "str | None",
        "cat": "str | None",
    }
    with pytest.raises(atdata.SchemaError, match="not a Python identifier"):
        atdata.schema_from_arrow(pa.schema([pa.field("a b", pa.int8())]))
    with pytest.raises(atdata.SchemaError, match="cast it"):
        atdata.schema_from_arrow(pa.schema([pa.field("u", pa.union([], "sparse"))]))


def test_errors_name_field_and_fix(tmp_path):
    ds = atdata.write_samples([{"n": 2**64 - 1}], tmp_path / "u.tar")
    with pytest.raises(atdata.SchemaError, match="field 'n'"):
        ds.to_arrow()

    @atdata.packable
    class Want:
        n: int

    t = pa.table({"n": ["not a number"]})
    with pytest.raises(atdata.SchemaError, match="row 0"):
        atdata.from_arrow(t, tmp_path / "x", sample_type=Want)
    with pytest.raises(atdata.ConfigError, match="cannot read a int"):
        atdata.from_arrow(5, tmp_path / "y")


def test_dict_samples_and_filtered_datasets(tmp_path):
    ds = atdata.write_samples(
        [{"v": np.arange(3, dtype="i2") + i, "k": i} for i in range(6)], tmp_path / "d.tar"
    )
    t = ds.filter(lambda s: s["k"] % 2 == 0).to_arrow()
    assert t.column("k").to_pylist() == [0, 2, 4]
    assert t.schema.field("v").type.value_type == pa.int16()


def test_from_an_atdata_dataset_slices_and_lazy_polars(img_ds, tmp_path):
    pl = pytest.importorskip("polars")
    part = img_ds[2:5]
    copied = atdata.from_arrow(part, tmp_path / "copy", sample_type=img_ds.sample_type)
    assert list(copied) == list(part) and len(copied) == 3
    lazy = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}).lazy()
    assert [(s.a, s.b) for s in atdata.from_arrow(lazy, tmp_path / "lazy")] == [(1, "x"), (2, "y")]


def test_null_struct_with_tensor_child_through_parquet(tmp_path):
    @atdata.packable
    class Box:
        xy: atdata.NDArray
        name: str

    @atdata.packable
    class Item:
        box: Box | None

    samples = [Item(box=None), Item(box=Box(xy=np.array([1, 2], "i2"), name="b"))]
    ds = atdata.write_samples(samples, tmp_path / "n.tar", key="index")
    (path,) = ds.to_parquet(tmp_path / "n.parquet")
    t = pq.read_table(path)  # pyarrow rejects a non-nullable fixed-size list under a null struct
    assert t.column("box").to_pylist()[0] is None
    back = atdata.from_arrow(t, tmp_path / "back")
    inner = back.sample_type.atdata_fields()[0].sample_type
    assert {s.name: s.type_name for s in inner.atdata_fields()} == {
        "xy": "NDArray[int16]",  # required again (atdata.required metadata)
        "name": "str",
    }
    assert [None if s.box is None else s.box.xy.tolist() for s in back] == [None, [1, 2]]
