"""LocalSchemaRecord in upstream's documented form: name, version, fields (SchemaField list),
ref, description, created_at; from_dict/to_dict; conversion to and from our SchemaRecord."""

from __future__ import annotations

import datetime as dt

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


def test_a_field_without_a_field_type_is_refused():
    body = {"properties": {"d": {"type": "object"}}, "required": ["d"]}
    with pytest.raises(atdata.ConfigError, match=r"Nested@1\.0\.0.*get_schema_record"):
        LocalSchemaRecord.from_schema_record(SchemaRecord("Nested", "1.0.0", body))


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
