"""Upstream atdata's "local" field types (``{"$type": "local#primitive", "primitive": "str"}``,
``local#ndarray``, ``local#array``), the form its local index stores schemas in, to and from
our JSON Schema properties.

Examples:
    >>> field_type({"type": "array", "items": {"type": "integer"}})
    {'$type': 'local#array', 'items': {'$type': 'local#primitive', 'primitive': 'int'}}
    >>> body = body_of([{"name": "x", "fieldType": {"$type": "local#ndarray"}, "optional": True}])
    >>> body["properties"]["x"]["$ref"].endswith("#/$defs/ndarray"), "required" in body
    (True, False)
"""

from __future__ import annotations

from typing import Any

from atdata._wire.schema_json import DRAFT_07, NDARRAY_REF, SCHEMA_FORMAT_TYPE

__all__ = ["body_of", "field_type", "local_fields", "prop_of"]

_PRIMITIVE_TO_JSON = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_JSON_TO_PRIMITIVE = {v: k for k, v in _PRIMITIVE_TO_JSON.items()}
_BYTES = {"type": "string", "format": "byte", "contentEncoding": "base64"}


def prop_of(ftype: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(JSON Schema property, whether it uses ndarray) of an upstream field type; kinds with no
    JSON Schema form here (``local#dataframe``, ``local#sparse`` ...) give ``{}`` (any value)."""
    kind = ftype.get("$type", "")
    if kind == "local#primitive":
        p = ftype.get("primitive")
        if p == "bytes":
            return dict(_BYTES), False
        if p in _PRIMITIVE_TO_JSON:
            return {"type": _PRIMITIVE_TO_JSON[p]}, False
    elif kind == "local#ndarray":
        return {"$ref": NDARRAY_REF}, True
    elif kind == "local#array":
        items = ftype.get("items")
        if isinstance(items, dict):
            prop, nd = prop_of(items)
            return {"type": "array", "items": prop}, nd
        return {"type": "array"}, False
    return {}, False


def body_of(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Our JSON Schema body of upstream's ``fields`` list (``name``, ``fieldType``, ``optional``)."""
    props: dict[str, Any] = {}
    required: list[str] = []
    ndarray = False
    for f in fields:
        fname = str(f.get("name", ""))
        prop, nd = prop_of(f.get("fieldType") or {})
        props[fname], ndarray = prop, ndarray or nd
        if not f.get("optional", False):
            required.append(fname)
    body: dict[str, Any] = {
        "$type": SCHEMA_FORMAT_TYPE,
        "$schema": DRAFT_07,
        "type": "object",
        "properties": props,
    }
    if required:
        body["required"] = required
    if ndarray:
        body["arrayFormatVersions"] = {"ndarrayBytes": "1.0.0"}
    return body


def field_type(prop: dict[str, Any]) -> dict[str, Any] | None:
    """Upstream's field type of a JSON Schema property (``None``: upstream has no form for it,
    e.g. a nested sample or a dict)."""
    if prop.get("$ref") == NDARRAY_REF:
        return {"$type": "local#ndarray", "dtype": "float32"}  # upstream's default dtype
    t = prop.get("type")
    if t == "string" and prop.get("format") == "byte":
        return {"$type": "local#primitive", "primitive": "bytes"}
    if t in _JSON_TO_PRIMITIVE:
        return {"$type": "local#primitive", "primitive": _JSON_TO_PRIMITIVE[t]}
    if t == "array":
        items = prop.get("items")
        inner = field_type(items) if isinstance(items, dict) else None
        return {"$type": "local#array", "items": inner} if inner is not None else None
    return None


def local_fields(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Upstream's ``fields`` list of a JSON Schema body; ``None`` when a field has no upstream
    form."""
    required = set(body.get("required", []))
    out = []
    for fname, prop in (body.get("properties") or {}).items():
        ft = field_type(prop)
        if ft is None:
            return None
        out.append({"name": fname, "fieldType": ft, "optional": fname not in required})
    return out
