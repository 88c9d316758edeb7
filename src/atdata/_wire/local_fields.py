"""Upstream atdata's "local" field types (``{"$type": "local#primitive", "primitive": "str"}``,
``local#ndarray``, ``local#array``), the form its local index stores schemas in, to and from
our JSON Schema properties.

A field with no upstream form (a nested sample, a dict, ``Any``) keeps its JSON Schema
property in place of a field type: :func:`fields_of` gives it, :class:`SchemaFieldType` reads
it as kind ``"json"`` (ours) and :func:`body_of` puts it back unchanged.

Examples:
    >>> field_type({"type": "array", "items": {"type": "integer"}})
    {'$type': 'local#array', 'items': {'$type': 'local#primitive', 'primitive': 'int'}}
    >>> body = body_of([{"name": "x", "fieldType": {"$type": "local#ndarray"}, "optional": True}])
    >>> body["properties"]["x"]["$ref"].endswith("#/$defs/ndarray"), "required" in body
    (True, False)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from atdata._wire.schema_json import BYTES_PROP, NDARRAY_REF, SCALAR_JSON_TYPES, make_body

__all__ = [
    "SchemaField",
    "SchemaFieldType",
    "body_of",
    "field_type",
    "fields_of",
    "local_fields",
    "prop_of",
]

_PRIMITIVE_TO_JSON = SCALAR_JSON_TYPES
_JSON_TO_PRIMITIVE = {v: k for k, v in _PRIMITIVE_TO_JSON.items()}


def _is_json_schema(ftype: dict[str, Any]) -> bool:
    """Whether a ``fieldType`` is a JSON Schema property (no ``$type``/``kind``; a ``type`` or
    ``$ref``, or ``{}``: any value), as :func:`fields_of` gives for a field with no upstream form."""
    if not ftype:
        return True
    return "$type" not in ftype and "kind" not in ftype and ("type" in ftype or "$ref" in ftype)


def _mentions_ndarray(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("$ref") == NDARRAY_REF or any(_mentions_ndarray(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_ndarray(v) for v in value)
    return False


def prop_of(ftype: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(JSON Schema property, whether it uses ndarray) of an upstream field type; kinds with no
    JSON Schema form here (``local#dataframe``, ``local#sparse`` ...) give ``{}`` (any value); a
    JSON Schema property (a field with no upstream form, see :func:`fields_of`) is itself."""
    if _is_json_schema(ftype):
        return dict(ftype), _mentions_ndarray(ftype)
    kind = ftype.get("$type", "")
    if kind == "local#primitive":
        p = ftype.get("primitive")
        if p == "bytes":
            return dict(BYTES_PROP), False
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
    return make_body(props, required, ndarray)


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


def fields_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field of a JSON Schema body in the ``fields`` form: upstream's field type where one
    exists (as :func:`local_fields`), else the field's JSON Schema property (never refuses).

    Examples:
        >>> body = {"properties": {"n": {"type": "integer"}, "d": {"type": "object"}},
        ...         "required": ["n"]}
        >>> [(f["fieldType"], f["optional"]) for f in fields_of(body)]
        [({'$type': 'local#primitive', 'primitive': 'int'}, False), ({'type': 'object'}, True)]
    """
    required = set(body.get("required") or ())
    return [
        {"name": n, "fieldType": field_type(p) or dict(p), "optional": n not in required}
        for n, p in (body.get("properties") or {}).items()
    ]


@dataclasses.dataclass
class SchemaFieldType:
    """One upstream local field type as an object (``atdata.index.SchemaFieldType``).

    Attributes:
        kind: ``primitive``, ``ndarray``, ``array``, ``ref``, ``structured``, ``dataframe`` ...
            (the part after ``local#``), or ``json`` (ours): a type with no upstream form (a
            nested sample, a dict), described by :attr:`schema`.
        primitive: ``str``/``int``/``float``/``bool``/``bytes`` for ``primitive``.
        dtype: numpy dtype name for ``ndarray``/``structured``.
        ref: The referenced schema for ``ref``.
        items: The element type for ``array``.
        shape: Expected ``ndarray`` shape (``None`` entries are free).
        dimension_names: ``ndarray`` dimension names.
        schema: The JSON Schema property of a ``json`` field (its stored form is this
            property itself, as ``Index.get_schema`` lists it).

    Examples:
        >>> t = SchemaFieldType.from_dict({"$type": "local#array",
        ...                                "items": {"$type": "local#primitive", "primitive": "int"}})
        >>> t.kind, t.items.primitive, t.to_dict()["items"]
        ('array', 'int', {'$type': 'local#primitive', 'primitive': 'int'})
        >>> j = SchemaFieldType.from_dict({"type": "object", "title": "Inner"})
        >>> j.kind, j.schema, j.to_dict()
        ('json', {'type': 'object', 'title': 'Inner'}, {'type': 'object', 'title': 'Inner'})
    """

    kind: str
    primitive: str | None = None
    dtype: str | None = None
    ref: str | None = None
    items: SchemaFieldType | None = None
    shape: list[int | None] | None = None
    dimension_names: list[str] | None = None
    schema: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchemaFieldType:
        """From the stored form (``{"$type": "local#<kind>", ...}``, or a JSON Schema property
        for kind ``json``)."""
        if _is_json_schema(data):
            return cls("json", schema=dict(data))
        t = str(data.get("$type", ""))
        kind = t.rsplit("#", 1)[-1] if "#" in t else str(data.get("kind", "primitive"))
        items = data.get("items")
        return cls(
            kind,
            primitive=data.get("primitive"),
            dtype=data.get("dtype"),
            ref=data.get("ref"),
            items=cls.from_dict(items) if isinstance(items, dict) and items else None,
            shape=data.get("shape"),
            dimension_names=data.get("dimensionNames"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored form: ``$type`` plus the attributes that apply to :attr:`kind` (for
        ``json``, the JSON Schema property)."""
        if self.kind == "json":
            return dict(self.schema or {})
        out: dict[str, Any] = {"$type": f"local#{self.kind}"}
        if self.kind == "primitive":
            out["primitive"] = self.primitive
        elif self.kind == "array":
            if self.items is not None:
                out["items"] = self.items.to_dict()
        elif self.kind == "ref":
            out["ref"] = self.ref
        elif self.kind in ("ndarray", "structured"):
            extra = {
                "dtype": self.dtype,
                "shape": self.shape,
                "dimensionNames": self.dimension_names,
            }
            out.update({k: v for k, v in extra.items() if v is not None})
        return out


@dataclasses.dataclass
class SchemaField:
    """One field of an upstream local schema (``atdata.index.SchemaField``).

    Examples:
        >>> f = SchemaField.from_dict({"name": "x", "fieldType": {"$type": "local#ndarray"}})
        >>> f.name, f.field_type.kind, f.optional, f.to_dict()["fieldType"]
        ('x', 'ndarray', False, {'$type': 'local#ndarray'})
    """

    name: str
    field_type: SchemaFieldType
    optional: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchemaField:
        """From ``{"name", "fieldType", "optional"}``."""
        return cls(
            str(data["name"]),
            SchemaFieldType.from_dict(data.get("fieldType") or {}),
            bool(data.get("optional", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "fieldType", "optional"}``."""
        return {
            "name": self.name,
            "fieldType": self.field_type.to_dict(),
            "optional": self.optional,
        }
