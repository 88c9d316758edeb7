"""JSON Schema bodies of sample types: upstream interop, round trips, fingerprints, diffs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata._wire.schema_json import (
    NDARRAY_REF,
    diff_schemas,
    schema_body,
    schema_fingerprint,
    schema_record,
    type_from_schema,
)
from tests._helpers import InteropImage, InteropVectors


@atdata.packable
class Inner:
    a: int
    b: str | None = None


@atdata.packable
class Outer:
    inner: Inner
    inners: list[Inner]
    meta: dict[str, float]
    loose: dict
    anything: list
    note: str | None = None


@pytest.mark.parametrize("cls", [InteropImage, InteropVectors])
def test_records_match_upstream(interop_dir, cls):
    expected = json.loads((interop_dir / "records.json").read_text())[f"schema.{cls.__name__}"]
    ours = schema_record(cls, "1.0.0", description=f"{cls.__name__} interop fixture")
    expected.pop("createdAt")
    assert ours.pop("createdAt").endswith("+00:00")
    assert ours == expected
    # key order matches too, so JSON dumps are byte-identical
    assert list(ours["schema"]) == list(expected["schema"])
    assert list(ours["schema"]["properties"]) == list(expected["schema"]["properties"])


def test_body_of_nested_and_dict_types():
    body = schema_body(Outer)
    assert body["properties"]["inner"] == {
        "type": "object",
        "title": "Inner",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
        "required": ["a"],
    }
    assert body["properties"]["inners"]["items"]["title"] == "Inner"
    assert body["properties"]["meta"] == {
        "type": "object",
        "additionalProperties": {"type": "number"},
    }
    assert body["properties"]["loose"] == {"type": "object"}
    assert body["properties"]["anything"] == {"type": "array"}
    assert body["required"] == ["inner", "inners", "meta", "loose", "anything"]
    assert "arrayFormatVersions" not in body


def test_required_omitted_when_empty():
    @atdata.packable
    class AllOptional:
        x: str | None = None

    assert "required" not in schema_body(AllOptional)


def test_not_packable_is_schema_error():
    with pytest.raises(atdata.SchemaError, match="not a @packable"):
        schema_body(int)


def test_type_from_upstream_record_decodes_upstream_shards(interop_dir):
    rec = json.loads((interop_dir / "records.json").read_text())["schema.InteropImage"]
    T = type_from_schema(rec["name"], rec["schema"])
    assert T.__name__ == "InteropImage"
    assert [(f.name, f.kind, f.optional) for f in T.atdata_fields()] == [
        ("image", "ndarray", False),
        ("mask", "ndarray", True),
        ("label", "str", False),
        ("score", "float", False),
        ("idx", "int", False),
        ("tags", "list", False),
        ("flag", "bool", False),
    ]
    expected = json.loads((interop_dir / "expected.json").read_text())["images"]["samples"]
    ds = atdata.Dataset(str(interop_dir / "images" / "images-{000000..000002}.tar"), sample_type=T)
    got = list(ds.ordered())
    assert len(got) == 25
    assert got[0].label == expected[0]["label"]
    assert got[0].image.tolist() == expected[0]["image"]["ndarray"]
    assert schema_body(T) == rec["schema"]


def test_nested_round_trip_encodes_identically():
    T = type_from_schema("Outer", schema_body(Outer))
    assert schema_body(T) == schema_body(Outer)
    o = Outer(
        inner=Inner(a=1),
        inners=[Inner(a=2, b="x")],
        meta={"m": 0.5},
        loose={"k": [1]},
        anything=[1, "a"],
    )
    t = T.from_bytes(o.packed)
    assert t.inner.a == 1 and t.inners[0].b == "x" and t.meta == {"m": 0.5} and t.note is None
    assert t.packed == o.packed


def test_whole_record_and_record_name_accepted():
    rec = schema_record(Inner, "2.1.0")
    T = type_from_schema("local.Inner@2.1.0", rec)
    assert T.__name__ == "Inner"
    assert T(a=5).b is None


def test_bad_bodies_raise_schema_error():
    with pytest.raises(atdata.SchemaError, match="properties"):
        type_from_schema("X", {"type": "object"})
    with pytest.raises(atdata.SchemaError, match="not a Python identifier"):
        type_from_schema("X", {"properties": {"a-b": {"type": "string"}}})
    with pytest.raises(atdata.SchemaError, match="unsupported type"):
        type_from_schema("X", {"properties": {"a": {"type": "null"}}})
    with pytest.raises(atdata.SchemaError, match="references"):
        type_from_schema("X", {"properties": {"a": {"$ref": "https://example.org/other"}}})


def test_nullable_type_list_is_optional():
    T = type_from_schema(
        "X", {"properties": {"a": {"type": ["integer", "null"]}}, "required": ["a"]}
    )
    (f,) = T.atdata_fields()
    assert (f.kind, f.optional) == ("int", True)


def test_fingerprint_and_diff():
    a, b = schema_body(InteropImage), schema_body(InteropVectors)
    assert schema_fingerprint(a) == schema_fingerprint(json.loads(json.dumps(a)))
    assert schema_fingerprint(a) != schema_fingerprint(b)
    assert len(schema_fingerprint(a)) == 64
    d = diff_schemas(a, b)
    assert d["added"] == ["vec32", "mat64", "ints", "name", "blob"]
    assert d["removed"] == ["image", "mask", "label", "score", "idx", "tags", "flag"]
    assert d["retyped"] == []
    assert diff_schemas(a, a) == {"added": [], "removed": [], "retyped": []}


_leaf = st.sampled_from(
    [
        {"type": "string"},
        {"type": "integer"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "string", "format": "byte", "contentEncoding": "base64"},
        {"$ref": NDARRAY_REF},
    ]
)
_prop = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda i: {"type": "array", "items": i}, inner),
        st.builds(lambda i: {"type": "object", "additionalProperties": i}, inner),
    ),
    max_leaves=4,
)
_names = st.lists(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=6, unique=True
)


@settings(max_examples=60, deadline=None)
@given(
    _names.flatmap(
        lambda ns: st.tuples(
            st.just(ns),
            st.lists(_prop, min_size=len(ns), max_size=len(ns)),
            st.lists(st.booleans(), min_size=len(ns), max_size=len(ns)),
        )
    )
)
def test_body_type_body_round_trip(case):
    names, props, req = case
    names = [
        n for n in names if n not in ("def", "if", "in", "is", "or", "and", "as", "for", "not")
    ]
    props, req = props[: len(names)], req[: len(names)]
    if not names:
        return
    body = {
        "$type": "science.alt.dataset.schema#jsonSchemaFormat",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": dict(zip(names, props, strict=True)),
    }
    required = [n for n, r in zip(names, req, strict=True) if r]
    if required:
        body["required"] = required
    if any(NDARRAY_REF in json.dumps(p) for p in props):
        body["arrayFormatVersions"] = {"ndarrayBytes": "1.0.0"}
    T = type_from_schema("Gen", body)
    assert schema_body(T) == body
    assert schema_fingerprint(schema_body(T)) == schema_fingerprint(body)


def test_rebuilt_type_reads_arrays():
    T = type_from_schema("V", schema_body(InteropVectors))
    v = InteropVectors(
        vec32=np.zeros(3, "f4"), mat64=np.eye(2), ints=np.arange(2), name="n", blob=b"\x00"
    )
    t = T.from_bytes(v.packed)
    assert (
        t.vec32.dtype == np.float32
        and t.mat64.tolist() == [[1.0, 0.0], [0.0, 1.0]]
        and t.blob == b"\x00"
    )
