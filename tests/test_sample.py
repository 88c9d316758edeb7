"""Sample types: @packable, explicit PackableSample dataclasses, DictSample."""

from __future__ import annotations

import dataclasses
import uuid

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata import DictSample, NDArray, PackableSample, SchemaError


@atdata.packable
class Meta:
    source: str
    year: int = 2020


@atdata.packable
class Everything:
    s: str
    i: int
    f: float
    b: bool
    raw: bytes
    arr: NDArray
    opt_arr: NDArray | None
    opt_s: str | None
    tags: list[str]
    d: dict[str, float]
    meta: Meta
    metas: list[Meta]
    maybe_meta: Meta | None = None
    n: int = 3


@dataclasses.dataclass
class Explicit(PackableSample):
    name: str
    values: NDArray
    weight: float = 1.0


def _everything(**over):
    kw = dict(
        s="s",
        i=1,
        f=0.5,
        b=True,
        raw=b"\x00\x01",
        arr=np.arange(6, dtype="<i4").reshape(2, 3),
        opt_arr=None,
        opt_s="o",
        tags=["a", "b"],
        d={"x": 1.0},
        meta=Meta(source="cam"),
        metas=[Meta(source="a", year=1), Meta(source="b", year=2)],
    )
    kw.update(over)
    return Everything(**kw)


def test_packable_is_dataclass_and_packable_sample():
    assert dataclasses.is_dataclass(Everything)
    assert issubclass(Everything, PackableSample)
    assert Everything.__name__ == "Everything"
    assert [f.name for f in Everything.atdata_fields()][:3] == ["s", "i", "f"]


def test_roundtrip_every_field_type():
    e = _everything()
    got = Everything.from_bytes(e.packed)
    assert got == e
    assert got.arr.dtype.str == "<i4" and got.arr.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert got.meta == Meta(source="cam", year=2020)
    assert got.metas[1].year == 2
    assert got.maybe_meta is None and got.n == 3 and got.opt_arr is None


def test_payload_is_a_flat_msgpack_map_with_nested_maps():
    raw = msgpack.unpackb(_everything(maybe_meta=Meta(source="m", year=5)).packed, raw=False)
    assert list(raw) == [
        "s",
        "i",
        "f",
        "b",
        "raw",
        "arr",
        "opt_arr",
        "opt_s",
        "tags",
        "d",
        "meta",
        "metas",
        "maybe_meta",
        "n",
    ]
    assert raw["meta"] == {"source": "cam", "year": 2020}
    assert raw["maybe_meta"] == {"source": "m", "year": 5}
    assert raw["opt_arr"] is None
    assert raw["arr"][:5] == b"\x03<i4\x02"


def test_explicit_dataclass_subclass():
    x = Explicit(name="e", values=np.ones(2, dtype="<f2"))
    got = Explicit.from_bytes(x.packed)
    assert got == x and got.weight == 1.0 and got.values.dtype.str == "<f2"
    assert msgpack.unpackb(x.packed) == {
        "name": "e",
        "values": atdata.encode_array(x.values),
        "weight": 1.0,
    }


def test_post_init_converts_array_inputs():
    assert Explicit(name="l", values=[1, 2]).values.tolist() == [1, 2]
    b = atdata.encode_array(np.array([3.0]))
    assert Explicit(name="b", values=b).values.tolist() == [3.0]
    with pytest.raises(SchemaError, match=r"cannot make a numeric array"):
        Explicit(name="o", values=[{}, "x"])


def test_custom_post_init_runs_on_decode():
    @atdata.packable
    class Norm:
        text: str

        def __post_init__(self):
            self.text = self.text.strip()

    assert Norm.from_bytes(msgpack.packb({"text": "  hi "})).text == "hi"


def test_as_wds():
    e = Explicit(name="k", values=np.zeros(1))
    wds = e.as_wds
    assert set(wds) == {"__key__", "msgpack"} and wds["msgpack"] == e.packed
    assert uuid.UUID(wds["__key__"]).version == 1
    e.__key__ = "mine"
    assert e.as_wds["__key__"] == "mine"


def test_equality_and_hash():
    a = Explicit(name="a", values=np.array([1.0, np.nan]))
    b = Explicit(name="a", values=np.array([1.0, np.nan]))
    c = Explicit(name="a", values=np.array([1.0, np.nan], dtype="<f4"))
    assert a == b and a != c
    assert Explicit(name="a", values=np.zeros(2)) != Explicit(name="a", values=np.zeros(3))
    with pytest.raises(TypeError):
        hash(a)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(),
    st.lists(st.floats(), max_size=4),
    st.dictionaries(st.text(max_size=3), st.floats(), max_size=3),
)
def test_nan_floats_compare_equal_like_nan_arrays(f, fs, fd):
    e = _everything(f=f, tags=["t"], d=fd, arr=np.array(fs))
    assert e == e and Everything.from_bytes(e.packed) == e
    assert _everything(f=float("nan")) == _everything(f=float("nan"))
    assert _everything(d={"x": float("nan")}) != _everything(d={"x": 1.0})
    assert _everything(f=0.0) == _everything(f=-0.0)


def test_from_dict_and_to_dict():
    e = _everything()
    d = e.to_dict()
    assert d["meta"] == {"source": "cam", "year": 2020}
    assert isinstance(d["arr"], np.ndarray)
    x = Explicit.from_dict({"name": "n", "values": atdata.encode_array(np.array([1, 2]))})
    assert x.values.tolist() == [1, 2] and x.weight == 1.0
    assert Explicit.from_dict({"name": "n", "values": np.array([5])}).values.tolist() == [5]
    with pytest.raises(SchemaError, match=r"missing required field\(s\) \['values'\]"):
        Explicit.from_dict({"name": "n"})


def test_packable_rejects_bad_field_type_at_decoration():
    with pytest.raises(SchemaError, match=r"'bad' has type"):

        @atdata.packable
        class Bad:
            bad: set[int]


def test_encoding_wrong_value_type_names_field():
    with pytest.raises(SchemaError, match=r"field Meta.'year' expects int, got str"):
        Meta(source="x", year="2020").packed  # noqa: B018


# -- DictSample --------------------------------------------------------------------------------


def test_dictsample_api():
    payload = _everything().packed
    s = DictSample.from_bytes(payload)
    assert s["s"] == "s" and s.i == 1 and s.f == 0.5 and s.b is True
    assert list(s.keys())[:3] == ["s", "i", "f"] and len(s) == 14
    assert "tags" in s and "nope" not in s
    assert s.get("nope") is None and s.get("nope", 5) == 5
    assert dict(s.items())["tags"] == ["a", "b"]
    assert next(iter(s.values())) == "s"
    assert list(iter(s))[-1] == "n"
    assert s.meta == {"source": "cam", "year": 2020}  # nested samples stay maps
    assert type(s.arr) is bytes  # arrays stay raw bytes
    assert s.array("arr").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert atdata.decode_array(s["arr"]).dtype.str == "<i4"
    d = s.to_dict()
    d["s"] = "changed"
    assert s.s == "s"  # a copy
    with pytest.raises(KeyError):
        s["nope"]
    with pytest.raises(AttributeError, match=r"no field 'nope'"):
        s.nope  # noqa: B018


def test_dictsample_as_type():
    e = _everything()
    s = DictSample.from_bytes(e.packed)
    s.__key__ = "k7"
    t = s.as_type(Everything)
    assert t == e and t.__key__ == "k7"
    with pytest.raises(SchemaError, match=r"not a @packable"):
        s.as_type(dict)


def test_dictsample_construct_pack_and_repr():
    s = DictSample({"a": 1}, img=np.zeros((2, 2), "|u1"), blob=b"xyz")
    raw = msgpack.unpackb(s.packed)
    assert raw["a"] == 1 and raw["blob"] == b"xyz"
    assert atdata.decode_array(raw["img"]).shape == (2, 2)
    s.extra = "e"
    assert s["extra"] == "e"
    assert repr(DictSample(blob=b"xyz", n=1)) == "DictSample(blob=<3 bytes>, n=1)"
    assert DictSample(a=1) == DictSample({"a": 1})
    assert DictSample(a=np.zeros(2)) == DictSample(a=np.zeros(2))
    assert s.as_wds["msgpack"] == s.packed


def test_dictsample_keeps_unknown_fields():
    payload = msgpack.packb({"source": "a", "year": 1, "new_field": [1, 2]})
    assert DictSample.from_bytes(payload).new_field == [1, 2]
    assert Meta.from_bytes(payload) == Meta(source="a", year=1)
