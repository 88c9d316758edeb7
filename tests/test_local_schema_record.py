"""LocalSchemaRecord in upstream's documented form: name, version, fields (SchemaField list),
ref, description, created_at; from_dict/to_dict; conversion to and from our SchemaRecord; what
Index.get_schema_record, Index.schemas and Index.list_schema_records give."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import atdata
import atdata.local
from atdata.index import LocalSchemaRecord, SchemaField, SchemaFieldType, SchemaRecord


def _fields() -> list[SchemaField]:
    return [
        SchemaField("text", SchemaFieldType("primitive", primitive="str")),
        SchemaField("image", SchemaFieldType("ndarray", dtype="float32")),
        SchemaField("score", SchemaFieldType("primitive", primitive="float"), optional=True),
    ]


def test_keyword_construction_in_the_documented_form():
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    rec = LocalSchemaRecord(
        name="Img",
        version="1.2.0",
        fields=_fields(),
        ref="atdata://local/schema/Img@1.2.0",
        description="images",
        created_at=when,
    )
    assert [f.name for f in rec.fields] == ["text", "image", "score"]
    assert rec.fields[1].field_type.kind == "ndarray" and rec.fields[2].optional is True
    assert rec.to_dict() == {
        "name": "Img",
        "version": "1.2.0",
        "fields": [
            {"name": "text", "fieldType": {"$type": "local#primitive", "primitive": "str"}, "optional": False},
            {"name": "image", "fieldType": {"$type": "local#ndarray", "dtype": "float32"}, "optional": False},
            {"name": "score", "fieldType": {"$type": "local#primitive", "primitive": "float"}, "optional": True},
        ],
        "$ref": "atdata://local/schema/Img@1.2.0",
        "description": "images",
        "createdAt": "2025-01-02T03:04:05+00:00",
    }  # fmt: skip
    assert LocalSchemaRecord.from_dict(rec.to_dict()) == rec
    assert atdata.local.LocalSchemaRecord is LocalSchemaRecord


def test_positional_order_and_defaults():
    rec = LocalSchemaRecord("Row", "1.0.0", [], "")
    assert (rec.ref, rec.description, rec.created_at) == (
        "atdata://local/schema/Row@1.0.0",
        None,
        None,
    )
    assert rec.to_dict() == {"name": "Row", "version": "1.0.0", "fields": [], "$ref": rec.ref}
    d = LocalSchemaRecord(
        "Row",
        "1.0.0",
        [{"name": "n", "fieldType": {"$type": "local#primitive", "primitive": "int"}}],
    )
    assert d.fields == [SchemaField("n", SchemaFieldType("primitive", primitive="int"))]
    assert (
        LocalSchemaRecord.from_dict(
            {"name": "R", "version": "1", "createdAt": "not a date"}
        ).created_at
        is None
    )
    with pytest.raises(atdata.ConfigError, match="no version"):
        LocalSchemaRecord.from_dict({"name": "R"})


def test_converts_to_and_from_what_the_index_stores(tmp_path):
    @atdata.packable
    class Img:
        text: str
        image: atdata.NDArray
        score: float | None = None

    idx = atdata.Index(path=str(tmp_path / "i.db"))
    ref = idx.publish_schema(Img, version="1.0.0")
    stored = idx.get_schema_record(ref)
    local = LocalSchemaRecord.from_schema_record(stored)
    assert (local.name, local.version, local.ref) == ("Img", "1.0.0", ref)
    assert [(f.name, f.field_type.kind, f.optional) for f in local.fields] == [
        ("text", "primitive", False), ("image", "ndarray", False), ("score", "primitive", True)
    ]  # fmt: skip
    assert local.body["required"] == stored.body["required"] == ["text", "image"]
    back = local.to_schema_record()
    assert isinstance(back, SchemaRecord) and back.fingerprint == stored.fingerprint
    T = back.sample_type()
    assert T(text="a", image=None).text == "a"


def test_a_field_without_a_field_type_keeps_its_json_schema():
    body = {"properties": {"d": {"type": "object"}}, "required": ["d"]}
    local = LocalSchemaRecord.from_schema_record(SchemaRecord("Nested", "1.0.0", body))
    (f,) = local.fields
    assert (f.name, f.field_type.kind, f.field_type.schema, f.optional) == (
        "d", "json", {"type": "object"}, False
    )  # fmt: skip
    assert f.to_dict() == {"name": "d", "fieldType": {"type": "object"}, "optional": False}
    assert local.body == body and local.to_schema_record().body == body


_PRIMS = st.sampled_from(["str", "int", "float", "bool", "bytes"])
_FT = st.one_of(
    _PRIMS.map(lambda p: SchemaFieldType("primitive", primitive=p)),
    st.just(SchemaFieldType("ndarray", dtype="float32")),
    _PRIMS.map(lambda p: SchemaFieldType("array", items=SchemaFieldType("primitive", primitive=p))),
)


@given(
    st.lists(
        st.tuples(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), _FT, st.booleans()),
        unique_by=lambda t: t[0],
        max_size=6,
    )
)
def test_round_trips_through_dict_and_schema_record(spec):
    rec = LocalSchemaRecord("P", "2.0.0", [SchemaField(n, ft, o) for n, ft, o in spec])
    assert LocalSchemaRecord.from_dict(rec.to_dict()) == rec
    assert LocalSchemaRecord.from_schema_record(rec.to_schema_record()) == rec


# -- what the Index gives ------------------------------------------------------------------------
@atdata.packable
class Inner:
    x: int
    v: atdata.NDArray


@atdata.packable
class Every:
    """Every kind of field."""

    text: str
    n: int
    score: float
    flag: bool
    raw: bytes
    image: atdata.NDArray
    tags: list[str]
    inner: Inner
    counts: dict[str, int]
    anything: dict
    inners: list[Inner]
    whatever: Any
    maybe: float | None = None


_OBJ = {"type": "object", "title": "Inner", "properties": {
    "x": {"type": "integer"},
    "v": {"$ref": "https://alt.science/schemas/atdata-ndarray-bytes/1.0.0#/$defs/ndarray"},
}, "required": ["x", "v"]}  # fmt: skip


def _prim(p: str) -> SchemaFieldType:
    return SchemaFieldType("primitive", primitive=p)


def test_get_schema_record_is_the_documented_local_schema_record(tmp_path):
    idx = atdata.Index(path=str(tmp_path / "i.db"), atmosphere=None)
    ref = idx.publish_schema(Every, version="1.0.0", description="all kinds")
    rec = idx.get_schema_record(ref)
    assert isinstance(rec, LocalSchemaRecord) and isinstance(rec, atdata.local.LocalSchemaRecord)
    assert (rec.name, rec.version, rec.ref, rec.description) == (
        "Every", "1.0.0", "atdata://local/schema/Every@1.0.0", "all kinds"
    )  # fmt: skip
    assert all(isinstance(f, SchemaField) for f in rec.fields)
    assert [(f.name, f.field_type, f.optional) for f in rec.fields] == [
        ("text", _prim("str"), False),
        ("n", _prim("int"), False),
        ("score", _prim("float"), False),
        ("flag", _prim("bool"), False),
        ("raw", _prim("bytes"), False),
        ("image", SchemaFieldType("ndarray", dtype="float32"), False),
        ("tags", SchemaFieldType("array", items=_prim("str")), False),
        ("inner", SchemaFieldType("json", schema=_OBJ), False),
        ("counts", SchemaFieldType("json", schema={
            "type": "object", "additionalProperties": {"type": "integer"}}), False),
        ("anything", SchemaFieldType("json", schema={"type": "object"}), False),
        ("inners", SchemaFieldType("json", schema={"type": "array", "items": _OBJ}), False),
        ("whatever", SchemaFieldType("json", schema={}), False),
        ("maybe", _prim("float"), True),
    ]  # fmt: skip
    assert isinstance(rec.created_at, dt.datetime) and rec.created_at.tzinfo is not None
    now = dt.datetime.now(dt.UTC)
    assert abs((now - rec.created_at).total_seconds()) < 3600 and rec.created_at.year >= 2025


def test_get_schema_record_keeps_everything_the_stored_record_has(tmp_path):
    idx = atdata.Index(path=str(tmp_path / "i.db"), atmosphere=None)
    ref = idx.publish_schema(Every, version="1.0.0")
    stored = idx.provider.get_schema("Every", "1.0.0")
    assert stored is not None
    rec = idx.get_schema_record(ref)
    assert rec.schema == rec.body == stored.body
    assert rec.fingerprint == stored.fingerprint and rec.metadata == stored.metadata == {}
    assert rec.to_schema_record() == stored  # created_at text too
    assert rec.to_record() == stored.to_record()
    T = rec.sample_type()
    assert [f.name for f in T.atdata_fields()] == [f.name for f in rec.fields]
    # the dict form: get_schema's dict reads back as the same record, both ways
    assert LocalSchemaRecord.from_dict(idx.get_schema(ref)) == rec
    assert LocalSchemaRecord.from_dict(rec.to_dict()) == rec
    assert idx.get_schema(ref)["fields"] == [f.to_dict() for f in rec.fields]
    # a record built from the fields alone has the same body (the json fields included)
    bare = LocalSchemaRecord(rec.name, rec.version, rec.fields, rec.ref, rec.description,
                             rec.created_at)  # fmt: skip
    assert bare.schema is None and bare.body == stored.body and bare == rec


def test_schemas_and_list_schema_records_give_local_schema_records(tmp_path):
    idx = atdata.Index(path=str(tmp_path / "i.db"), atmosphere=None)
    r1 = idx.publish_schema(Inner, version="1.0.0")
    r2 = idx.publish_schema(Every, version="2.0.0")
    recs = idx.list_schema_records()
    assert [(type(r), r.ref) for r in recs] == [(LocalSchemaRecord, r2), (LocalSchemaRecord, r1)]
    assert list(idx.schemas) == recs == [idx.get_schema_record(r2), idx.get_schema_record(r1)]
    assert [f.name for f in recs[1].fields] == ["x", "v"]  # the documented example's form
    assert [d["$ref"] for d in idx.list_schemas()] == [r2, r1]  # list_schemas stays dicts


def test_get_schema_record_errors_are_key_and_value_errors(tmp_path):
    idx = atdata.Index(path=str(tmp_path / "i.db"), atmosphere=None)
    with pytest.raises(KeyError, match=r"'atdata://local/schema/Nope@1\.0\.0' is not in the index"):
        idx.get_schema_record("atdata://local/schema/Nope@1.0.0")
    with pytest.raises(atdata.NotFoundError):
        idx.get_schema_record("Nope")
    with pytest.raises(ValueError, match="Invalid schema reference"):
        idx.get_schema_record("https://example.com/schema/X@1.0.0")


_JSON_PROPS = st.sampled_from([
    {},
    {"type": "object"},
    {"type": "object", "additionalProperties": {"type": "number"}},
    _OBJ,
    {"type": "array", "items": _OBJ},
])  # fmt: skip


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
            st.one_of(_FT, _JSON_PROPS.map(lambda p: SchemaFieldType("json", schema=p))),
            st.booleans(),
        ),
        unique_by=lambda t: t[0],
        max_size=6,
    )
)
def test_json_fields_round_trip_through_dict_body_and_schema_record(spec):
    rec = LocalSchemaRecord("P", "2.0.0", [SchemaField(n, ft, o) for n, ft, o in spec])
    back = LocalSchemaRecord.from_schema_record(rec.to_schema_record())
    assert back == rec and back.fields == rec.fields and back.schema == rec.body
    assert LocalSchemaRecord.from_dict(rec.to_dict()) == rec
    assert LocalSchemaRecord.from_dict(back.to_dict()) == back
