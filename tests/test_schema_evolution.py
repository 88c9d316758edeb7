"""Every rule of docs/wire-format.md "Schema evolution" and the member/key rules, checked."""

from __future__ import annotations

import dataclasses
import io

import msgpack
import numpy as np
import pytest

import atdata
from atdata import DecodeError, DictSample, NDArray, SchemaError
from atdata._shards.tar import TarWriter


@atdata.packable
class V1:
    name: str
    score: float
    pixels: NDArray


@atdata.packable
class V2:
    name: str
    score: float
    pixels: NDArray[np.float32]
    note: str | None
    lang: str | None = "en"
    count: int = 3
    tags: list[str] = dataclasses.field(default_factory=list)


def _payload(**fields) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


PIX = atdata.encode_array(np.arange(4, dtype="<f8").reshape(2, 2))


def _shard(tmp_path, members: list[tuple[str, bytes]], name="s.tar") -> str:
    buf = io.BytesIO()
    w = TarWriter(buf, mtime=0)
    for n, data in members:
        w.add(n, data)
    w.close()
    p = tmp_path / name
    p.write_bytes(buf.getvalue())
    return str(p)


def test_rule1_unknown_fields_ignored_by_typed_kept_by_dictsample():
    data = _payload(name="a", score=1.0, pixels=PIX, added_later=[1, 2], extra={"k": "v"})
    v = V1.from_bytes(data)
    assert (v.name, v.score) == ("a", 1.0) and not hasattr(v, "added_later")
    d = DictSample.from_bytes(data)
    assert d.added_later == [1, 2] and d["extra"] == {"k": "v"}
    assert msgpack.unpackb(d.packed) == msgpack.unpackb(data)


def test_rule2_missing_optional_and_defaulted_fields():
    v = V2.from_bytes(V1(name="old", score=2.0, pixels=np.zeros(2, "<f4")).packed)
    assert (v.note, v.lang, v.count, v.tags) == (None, "en", 3, [])
    w = V2.from_bytes(V1(name="old", score=2.0, pixels=np.zeros(2, "<f4")).packed)
    assert w.tags is not v.tags  # default_factory runs per sample


def test_rule3_missing_required_field(tmp_path):
    with pytest.raises(
        SchemaError, match=r"missing required field V1.'pixels'.*`pixels: NDArray \| None`"
    ):
        V1.from_bytes(_payload(name="a", score=1.0))
    p = _shard(tmp_path, [("k9.msgpack", _payload(name="a", score=1.0))])
    with pytest.raises(SchemaError) as ei:
        list(atdata.Dataset[V1](p))
    assert "'pixels'" in str(ei.value) and "s.tar" in str(ei.value) and "'k9'" in str(ei.value)
    for field, payload in [
        ("pixels", _payload(name="a", score=1.0)),
        ("name", _payload(score=1.0, pixels=atdata.encode_array(np.zeros(2, "<f4")))),
    ]:
        p = _shard(tmp_path, [("k9.msgpack", payload)])
        with pytest.raises(SchemaError) as ei:
            next(atdata.Dataset[V1](p).ordered(batch_size=4))
        hint = f"`{field}: {'NDArray' if field == 'pixels' else 'str'} | None`"
        assert f"missing required field V1.'{field}'" in str(ei.value) and hint in str(ei.value)
        assert "s.tar" in str(ei.value) and "'k9'" in str(ei.value)


def test_rule4_dtype_and_shape_are_not_cast():
    v = V2.from_bytes(_payload(name="a", score=1.0, pixels=PIX, note=None))
    assert v.pixels.dtype.str == "<f8"  # annotated float32, stored float64: no cast
    assert v.pixels.shape == (2, 2)
    other = atdata.encode_array(np.arange(3, dtype=">i2"))
    assert V1.from_bytes(_payload(name="a", score=1.0, pixels=other)).pixels.dtype.str == ">i2"


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("score", 3, 3.0),  # int widens to float
        ("score", True, None),
        ("score", "1.5", None),
        ("name", b"bytes", None),
        ("name", 1, None),
        ("pixels", "not bytes", None),
    ],
)
def test_rule5_scalars_checked_not_converted(field, value, ok):
    base = {"name": "a", "score": 1.0, "pixels": PIX}
    data = _payload(**{**base, field: value})
    if ok is None:
        with pytest.raises(SchemaError, match=rf"field V1.'{field}'"):
            V1.from_bytes(data)
    else:
        got = getattr(V1.from_bytes(data), field)
        assert got == ok and type(got) is type(ok)


@atdata.packable
class Flags:
    on: bool
    n: int
    blob: bytes


@pytest.mark.parametrize(
    "payload",
    [
        {"on": 1, "n": 1, "blob": b""},
        {"on": True, "n": 1.0, "blob": b""},
        {"on": True, "n": True, "blob": b""},
        {"on": True, "n": 1, "blob": "str"},
    ],
)
def test_rule5_more_type_checks(payload):
    with pytest.raises(SchemaError):
        Flags.from_bytes(_payload(**payload))


def test_rule6_nil_in_required_field():
    with pytest.raises(
        SchemaError, match=r"field V1.'score' should hold float but the payload has NoneType"
    ):
        V1.from_bytes(_payload(name="a", score=None, pixels=PIX))
    with pytest.raises(SchemaError, match=r"'pixels'"):
        V1.from_bytes(_payload(name="a", score=1.0, pixels=None))


def test_rule7_rename_is_missing_plus_unknown():
    @atdata.packable
    class Renamed:
        title: str | None
        score: float

    r = Renamed.from_bytes(_payload(name="a", score=1.0, pixels=PIX))
    assert r.title is None and r.score == 1.0


@atdata.packable
class Inner:
    x: int
    label: str | None = None


@atdata.packable
class Outer:
    inner: Inner
    items: list[Inner]
    table: dict[str, int]


def test_rule8_nested_follow_the_same_rules():
    ok = Outer.from_bytes(_payload(inner={"x": 1, "future": 2}, items=[{"x": 2}], table={"a": 1}))
    assert ok == Outer(inner=Inner(x=1), items=[Inner(x=2)], table={"a": 1})
    with pytest.raises(SchemaError, match=r"missing required field Inner.'x'"):
        Outer.from_bytes(_payload(inner={"label": "no x"}, items=[], table={}))
    with pytest.raises(SchemaError, match=r"Inner.'x'"):
        Outer.from_bytes(_payload(inner={"x": 1}, items=[{"x": "two"}], table={}))
    with pytest.raises(SchemaError, match=r"'table"):
        Outer.from_bytes(_payload(inner={"x": 1}, items=[], table={"a": "one"}))


@atdata.packable
class Opt:
    arr: NDArray | None
    name: str


def test_rule9_batches(tmp_path):
    same = [Opt(arr=np.zeros(2, "<f4"), name=str(i)) for i in range(3)]
    b = next(atdata.write_samples(same, tmp_path / "a.tar", key="index").ordered(batch_size=3))
    assert b.arr.shape == (3, 2) and b.name == ["0", "1", "2"]
    mixed = [*same[:2], Opt(arr=None, name="none")]
    b = next(atdata.write_samples(mixed, tmp_path / "b.tar", key="index").ordered(batch_size=3))
    assert isinstance(b.arr, list) and b.arr[2] is None and b.arr[0].tolist() == [0.0, 0.0]
    ragged = [*same[:2], Opt(arr=np.zeros(2, "<f8"), name="f8")]
    ds = atdata.write_samples(ragged, tmp_path / "c.tar", key="index")
    with pytest.raises(DecodeError, match=r"ragged field 'arr'.*'00000000'.*'00000002'"):
        next(ds.ordered(batch_size=3))


def test_skip_records_per_sample_errors(tmp_path):
    p = _shard(
        tmp_path,
        [
            ("a.msgpack", _payload(name="a", score=1.0, pixels=PIX)),
            ("b.msgpack", _payload(name="b", score=None, pixels=PIX)),
        ],
    )
    ds = atdata.Dataset[V1](p, on_error="skip")
    assert [s.name for s in ds] == ["a"]
    (entry,) = ds.list_skipped()
    assert entry["shard"] == p and entry["key"] == "b" and "'score'" in entry["error"]


def test_members_and_keys(tmp_path):
    p = _shard(
        tmp_path,
        [
            ("k1.msgpack", _payload(name="one", score=1.0, pixels=PIX)),
            ("k1.json", b"{}"),  # other extensions are ignored
            ("README", b"no extension"),
            ("sub.dir/k2.msgpack", _payload(name="two", score=2.0, pixels=PIX)),
            ("k3.seg.msgpack", _payload(name="three", score=3.0, pixels=PIX)),  # ext 'seg.msgpack'
        ],
    )
    got = list(atdata.Dataset[V1](p))
    assert [(s.__key__, s.name) for s in got] == [("k1", "one"), ("sub.dir/k2", "two")]
    assert atdata.Dataset[V1](p).get("sub.dir/k2").name == "two"


def test_field_order_is_irrelevant():
    a = _payload(name="a", score=1.0, pixels=PIX)
    b = _payload(pixels=PIX, score=1.0, name="a")
    assert a != b and V1.from_bytes(a) == V1.from_bytes(b)


@atdata.packable
class WithArrayDefault:
    name: str
    pixels: NDArray = dataclasses.field(default_factory=lambda: np.zeros(2, "<f4"))


def test_array_field_added_with_a_default_batches_as_it_decodes(tmp_path):
    p = _shard(tmp_path, [(f"k{i}.msgpack", _payload(name=f"n{i}")) for i in range(3)])
    ds = atdata.Dataset[WithArrayDefault](p)
    assert [s.pixels.tolist() for s in ds] == [[0.0, 0.0]] * 3
    (b,) = ds.ordered(batch_size=3)
    assert b.pixels.dtype.str == "<f4" and b.pixels.tolist() == [[0.0, 0.0]] * 3
    assert b.name == ["n0", "n1", "n2"]
