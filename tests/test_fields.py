"""Field specs: annotation -> kind, optionality, encoders and decoders."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata import SchemaError
from atdata._wire.fields import fields_of, spec_for_annotation


@atdata.packable
class Inner:
    v: int


@pytest.mark.parametrize(
    ("tp", "kind", "optional", "type_name"),
    [
        (str, "str", False, "str"),
        (int, "int", False, "int"),
        (float, "float", False, "float"),
        (bool, "bool", False, "bool"),
        (bytes, "bytes", False, "bytes"),
        (int | None, "int", True, "int | None"),
        (NDArray, "ndarray", False, "NDArray"),
        (NDArray[np.float32], "ndarray", False, "NDArray[float32]"),
        (NDArray | None, "ndarray", True, "NDArray | None"),
        (list[str], "list", False, "list[str]"),
        (list, "list", False, "list"),
        (dict[str, int], "dict", False, "dict[str, int]"),
        (dict, "dict", False, "dict"),
        (Inner, "sample", False, "Inner"),
        (Inner | None, "sample", True, "Inner | None"),
        (list[Inner], "list", False, "list[Inner]"),
        (Any, "any", False, "any"),
        (Annotated[int, "meta"], "int", False, "int"),
    ],
)
def test_spec_kinds(tp, kind, optional, type_name):
    s = spec_for_annotation("f", tp)
    assert (s.kind, s.optional, s.type_name) == (kind, optional, type_name)


def test_annotated_metadata_kept():
    s = spec_for_annotation("f", Annotated[str, "a", 3] | None)
    assert s.metadata == ("a", 3) and s.optional and s.kind == "str"


def test_ndarray_dtype_hint():
    assert spec_for_annotation("f", NDArray[np.uint8]).dtype == np.dtype("u1")
    assert spec_for_annotation("f", NDArray).dtype is None


@pytest.mark.parametrize(
    ("tp", "match"),
    [
        (int | str, "unions other than"),
        (dict[int, str], "dict keys must be str"),
        (set[int], "cannot store"),
        (complex, "cannot store"),
        (object, "cannot store"),
    ],
)
def test_unsupported_annotations(tp, match):
    with pytest.raises(SchemaError, match=match) as ei:
        spec_for_annotation("bad", tp, owner="T.")
    assert "'bad'" in str(ei.value)


@pytest.mark.parametrize(
    ("tp", "good", "wire", "bad"),
    [
        (str, "x", "x", [1, b"x", None]),
        (int, 3, 3, [True, 1.0, "1", None]),
        (int, np.int64(4), 4, [np.float64(1.0), 2**64, -(2**63) - 1]),
        (int, 2**64 - 1, 2**64 - 1, [2**70]),
        (float, 2, 2.0, [True, "1.0", None]),
        (float, np.float32(0.5), 0.5, [np.array([1.0])]),
        (bool, True, True, [1, 0, "true", None]),
        (bool, np.bool_(False), False, [np.array([True])]),
        (bytes, bytearray(b"ab"), b"ab", ["ab", [1]]),
        (bytes, memoryview(b"cd"), b"cd", [None]),
        (list[int], (1, 2), [1, 2], ["12", b"12", {"a": 1}, 5, [1.5]]),
        (list[float], np.array([1.0, 2.0]), [1.0, 2.0], [["a"]]),
        (dict[str, int], {"a": 1}, {"a": 1}, [[("a", 1)], {1: 1}, {"a": "x"}]),
        (int | None, None, None, ["x"]),
    ],
)
def test_encoders(tp, good, wire, bad):
    s = spec_for_annotation("f", tp, owner="T.")
    out = s.encode(good)
    assert out == wire and type(out) is type(wire)
    for b in bad:
        with pytest.raises(SchemaError, match=r"field T.'f"):
            s.encode(b)


def test_sample_encoder_checks_type():
    s = spec_for_annotation("inner", Inner)
    assert s.encode(Inner(v=1)) == {"v": 1}
    with pytest.raises(SchemaError, match=r"expects Inner"):
        s.encode({"v": 1})


def test_ndarray_encoder_refuses_objects():
    s = spec_for_annotation("a", NDArray, owner="T.")
    with pytest.raises(SchemaError, match=r"T.'a'.*object-dtype"):
        s.encode(np.array([None, 1], dtype=object))


@pytest.mark.parametrize(
    ("tp", "wire", "value", "bad"),
    [
        (str, "x", "x", [b"x", 1]),
        (int, 3, 3, [3.0, "3"]),
        (float, 2, 2.0, ["2.0", None]),
        (bool, False, False, [0, None]),
        (bytes, b"a", b"a", ["a"]),
        (list[int], [1], [1], [(1,), {"a": 1}]),
        (dict[str, list[int]], {"a": [1]}, {"a": [1]}, [[1], {"a": ["x"]}]),
        (Inner, {"v": 2}, Inner(v=2), [[2], {"v": "2"}]),
        (float | None, None, None, ["x"]),
    ],
)
def test_decoders(tp, wire, value, bad):
    s = spec_for_annotation("f", tp, owner="T.")
    assert s.decode(wire, "") == value
    for b in bad:
        with pytest.raises(SchemaError, match=r"' should hold .* (in shard x)?"):
            s.decode(b, " in shard x")


def test_decoder_names_field_and_location():
    s = spec_for_annotation("score", float, owner="Row.")
    with pytest.raises(SchemaError) as ei:
        s.decode("high", " in shard a.tar, sample 'k1'")
    assert str(ei.value) == (
        "field Row.'score' should hold float but the payload has str in shard a.tar, sample 'k1'"
    )


def test_fields_of_defaults_and_order():
    @atdata.packable
    class D:
        a: int
        b: str | None
        c: float = 1.5
        d: list[int] = atdata._wire.fields.dataclasses.field(default_factory=lambda: [1])

    specs = fields_of(D)
    assert [s.name for s in specs] == ["a", "b", "c", "d"]
    assert [s.has_default for s in specs] == [False, False, True, True]
    assert specs[1].default_value() is None
    assert specs[2].default_value() == 1.5
    assert (
        specs[3].default_value() == [1] and specs[3].default_value() is not specs[3].default_value()
    )
    assert fields_of(D) is specs  # cached


def test_string_annotations_from_local_scope():
    Alias = list[int]

    @atdata.packable
    class L:
        xs: Alias  # resolved in this function's scope (annotations are strings here)

    assert fields_of(L)[0].type_name == "list[int]"
