"""Sample types as JSON Schema: the body of the ATProto ``science.alt.dataset.schema`` record.

The same body is stored by every index provider and published to the atmosphere, so promoting a
local schema is a copy. :func:`type_from_schema` rebuilds a usable ``@packable`` class from a body,
which lets a dataset decode without its original Python class.

Mapping: ``NDArray`` -> a ``$ref`` to the ndarray-bytes shim; ``bytes`` -> base64 string;
``str``/``int``/``float``/``bool`` -> ``string``/``integer``/``number``/``boolean``;
``list[X]`` -> ``array`` with ``items``; ``dict[str, X]`` -> ``object`` with
``additionalProperties``; a nested ``@packable`` type -> an ``object`` with its own ``title``,
``properties`` and ``required`` (dicts and nesting are atdata extensions; upstream 0.7.0b1 has
neither). ``required`` lists the non-optional fields (every written sample carries them, defaults
or not, as upstream does); optional fields (``X | None``) are left out and ``required`` itself is
omitted when empty.

Examples:
    >>> import atdata
    >>> @atdata.packable
    ... class Tagged:
    ...     text: str
    ...     tags: list[str]
    ...     score: float | None = None
    ...     lang: str = "en"
    >>> body = schema_body(Tagged)
    >>> body["properties"]["tags"], body["required"]
    ({'type': 'array', 'items': {'type': 'string'}}, ['text', 'tags', 'lang'])
    >>> T = type_from_schema("Tagged", body)
    >>> [f.name for f in T.atdata_fields()], T(text="a", tags=[], lang="fr").score
    (['text', 'tags', 'score', 'lang'], None)
    >>> schema_fingerprint(schema_body(T)) == schema_fingerprint(body)
    True
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import keyword
import re
import types
from typing import Any

from atdata._errors import SchemaError
from atdata._wire.fields import FieldSpec, fields_of

__all__ = [
    "BYTES_PROP",
    "NDARRAY_REF",
    "SCALAR_JSON_TYPES",
    "SCHEMA_FORMAT_TYPE",
    "SCHEMA_RECORD_TYPE",
    "diff_schemas",
    "make_body",
    "schema_body",
    "schema_fingerprint",
    "schema_record",
    "type_from_schema",
]

NDARRAY_REF = "https://alt.science/schemas/atdata-ndarray-bytes/1.0.0#/$defs/ndarray"
SCHEMA_RECORD_TYPE = "science.alt.dataset.schema"
SCHEMA_FORMAT_TYPE = "science.alt.dataset.schema#jsonSchemaFormat"
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
#: The JSON Schema property of a ``bytes`` field.
BYTES_PROP = {"type": "string", "format": "byte", "contentEncoding": "base64"}
#: Python scalar type name -> JSON Schema type (upstream's ``local#primitive`` names too).
SCALAR_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_SCALAR_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # used with fullmatch: "$" would allow "a\n"


def _prop(spec: FieldSpec | None) -> dict[str, Any]:
    if spec is None or spec.kind == "any":
        return {}
    kind = spec.kind
    if kind in SCALAR_JSON_TYPES:
        return {"type": SCALAR_JSON_TYPES[kind]}
    if kind == "bytes":
        return dict(BYTES_PROP)
    if kind == "ndarray":
        return {"$ref": NDARRAY_REF}
    if kind == "list":
        return {"type": "array", "items": _prop(spec.item)} if spec.item else {"type": "array"}
    if kind == "dict":
        out: dict[str, Any] = {"type": "object"}
        if spec.item is not None:
            out["additionalProperties"] = _prop(spec.item)
        return out
    if kind == "sample":
        st = spec.sample_type
        props, required = _properties(fields_of(st))
        out = {"type": "object", "title": st.__name__, "properties": props}
        if required:
            out["required"] = required
        return out
    raise SchemaError(
        f"field {spec.name!r}: kind {kind!r} has no JSON Schema form"
    )  # pragma: no cover


def _properties(specs: tuple[FieldSpec, ...]) -> tuple[dict[str, Any], list[str]]:
    props = {s.name: _prop(s) for s in specs}
    required = [s.name for s in specs if not s.optional]
    return props, required


def _uses_ndarray(specs: tuple[FieldSpec, ...]) -> bool:
    for s in specs:
        sub: FieldSpec | None = s
        while sub is not None:
            if sub.kind == "ndarray":
                return True
            if sub.kind == "sample" and _uses_ndarray(fields_of(sub.sample_type)):
                return True
            sub = sub.item
    return False


def schema_body(sample_type: type) -> dict[str, Any]:
    """The JSON Schema body (``jsonSchemaFormat``) describing ``sample_type``.

    Raises:
        SchemaError: When ``sample_type`` is not a ``@packable`` type.
    """
    if not getattr(sample_type, "__atdata_sample__", False) or not dataclasses.is_dataclass(
        sample_type
    ):
        raise SchemaError(
            f"{sample_type!r} is not a @packable sample type; decorate it with @atdata.packable"
        )
    specs = fields_of(sample_type)
    props, required = _properties(specs)
    return make_body(props, required, _uses_ndarray(specs))


def make_body(props: dict[str, Any], required: list[str], ndarray: bool) -> dict[str, Any]:
    """The JSON Schema body around ``props`` (``required`` and the ndarray format version only
    when there are any), the one layout every schema body has.

    Examples:
        >>> make_body({"a": {"type": "integer"}}, ["a"], False)["required"]
        ['a']
    """
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


def schema_fingerprint(body: dict[str, Any]) -> str:
    """A stable sha256 hex digest of a schema body (key order and whitespace do not matter).

    Examples:
        >>> schema_fingerprint({"b": 1, "a": [1, 2]}) == schema_fingerprint({"a": [1, 2], "b": 1})
        True
    """
    try:
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SchemaError(f"a schema body must be plain JSON ({type(exc).__name__})") from None
    return hashlib.sha256(canon.encode("utf-8", "surrogatepass")).hexdigest()


def schema_record(
    sample_type: type,
    version: str,
    description: str | None = None,
    *,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """The full ``science.alt.dataset.schema`` record for ``sample_type``.

    Args:
        sample_type: A ``@packable`` type.
        version: Semantic version, e.g. ``"1.0.0"``.
        description: Optional human-readable description.
        name: Record name (default: the class name).
        metadata: Open ``schemaMetadata`` (e.g. ``{"license": "MIT", "tags": [...]}``).
        created_at: ISO-8601 timestamp (default: now, UTC).

    Examples:
        >>> import atdata
        >>> @atdata.packable
        ... class P:
        ...     x: int
        >>> r = schema_record(P, "1.0.0", created_at="2025-01-01T00:00:00+00:00")
        >>> r["$type"], r["name"], r["version"], r["schemaType"], r["schema"]["required"]
        ('science.alt.dataset.schema', 'P', '1.0.0', 'jsonSchema', ['x'])
    """
    rec: dict[str, Any] = {
        "$type": SCHEMA_RECORD_TYPE,
        "name": name or sample_type.__name__,
        "version": version,
        "schemaType": "jsonSchema",
        "schema": schema_body(sample_type),
        "createdAt": created_at or _dt.datetime.now(_dt.UTC).isoformat(),
        "atdataSchemaVersion": 1,
    }
    if description is not None:
        rec["description"] = description
    if metadata:
        rec["metadata"] = dict(metadata)
    return rec


# -- schema -> type -----------------------------------------------------------------------------


_MAX_DEPTH = 32  # nested arrays/objects/types in one schema
_MAX_FIELDS = 4096  # properties in one schema, nested types included
_TYPE_CACHE_SIZE = 256
_type_cache: collections.OrderedDict[tuple[str, str], type] = collections.OrderedDict()
_reserved: frozenset[str] | None = None


def _reserved_names() -> frozenset[str]:
    """Attribute names of a rebuilt class a field must not shadow (``from_bytes``, ``packed``...)."""
    global _reserved
    if _reserved is None:
        from atdata._wire.sample import packable

        probe: type = packable(type("_Probe", (), {"__annotations__": {"x": int}}))
        _reserved = frozenset(n for n in dir(probe) if n != "x")
    return _reserved


class _Budget:
    """Counts properties while a body is rebuilt (a schema may not be arbitrarily large)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fields = 0

    def field(self) -> None:
        self.fields += 1
        if self.fields > _MAX_FIELDS:
            raise SchemaError(f"schema {self.name!r} has more than {_MAX_FIELDS} properties")


def _annotation(prop: Any, where: str, nested: dict[str, type], depth: int, budget: _Budget) -> Any:
    from atdata._types import NDArray

    if not isinstance(prop, dict):
        raise SchemaError(f"schema property {where} is not an object: {str(prop)[:80]}")
    if depth > _MAX_DEPTH:
        raise SchemaError(f"schema property {where[:120]}... is nested deeper than {_MAX_DEPTH}")
    if not prop:
        return Any
    if "$ref" in prop:
        ref = prop["$ref"]
        if isinstance(ref, str) and "atdata-ndarray-bytes" in ref:
            return NDArray
        raise SchemaError(
            f"schema property {where} references {str(ref)[:120]!r}, which atdata cannot decode"
        )
    tp = prop.get("type")
    if isinstance(tp, list):  # ["string", "null"] style optionals
        non_null = [t for t in tp if t != "null"]
        if len(non_null) != 1 or not isinstance(non_null[0], str):
            raise SchemaError(
                f"schema property {where} has an unsupported type union {str(tp)[:120]}"
            )
        return _annotation({**prop, "type": non_null[0]}, where, nested, depth, budget) | None
    if not isinstance(tp, str):
        raise SchemaError(f"schema property {where} has unsupported type {str(tp)[:80]!r}")
    if tp == "string" and (prop.get("format") == "byte" or prop.get("contentEncoding") == "base64"):
        return bytes
    if tp in _SCALAR_TYPES:
        return _SCALAR_TYPES[tp]
    if tp == "array":
        items = prop.get("items")
        if items is None:
            return list
        return types.GenericAlias(
            list, (_annotation(items, f"{where}[]", nested, depth + 1, budget),)
        )
    if tp == "object":
        if "properties" in prop:
            title = prop.get("title")
            if not isinstance(title, str) or not title:
                title = where.rsplit(".", 1)[-1].title()
            return _build(title, prop, nested, depth + 1, budget)
        add = prop.get("additionalProperties")
        if isinstance(add, dict):
            return types.GenericAlias(
                dict, (str, _annotation(add, f"{where}{{}}", nested, depth + 1, budget))
            )
        return dict
    raise SchemaError(f"schema property {where} has unsupported type {tp[:80]!r}")


def _class_name(name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", name.split("@", 1)[0].rsplit(".", 1)[-1]) or "Sample"
    if base[0].isdigit():
        base = "_" + base
    return base[:100]


def _required(body: dict[str, Any], name: str) -> set[str]:
    req = body.get("required")
    if req is None:
        return set()
    if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
        raise SchemaError(
            f"schema {name!r}: 'required' must be a list of field names, not {str(req)[:80]}"
        )
    return set(req)


def _build(
    name: str, body: Any, nested: dict[str, type], depth: int = 0, budget: _Budget | None = None
) -> type:
    from atdata._wire.sample import packable

    cls_name = _class_name(name)
    budget = budget or _Budget(cls_name)
    if not isinstance(body, dict):
        raise SchemaError(f"schema {cls_name!r} is not a JSON object: {str(body)[:80]}")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise SchemaError(f"schema {cls_name!r} has no 'properties' object")
    required = _required(body, cls_name)
    reserved = _reserved_names()
    annotations: dict[str, Any] = {}
    ns: dict[str, Any] = {}
    for fname, prop in props.items():
        budget.field()
        if not _IDENT.fullmatch(fname) or keyword.iskeyword(fname):
            raise SchemaError(
                f"schema {cls_name!r}: field name {fname[:80]!r} is not a Python identifier"
            )
        if fname in reserved or fname.startswith("__"):
            raise SchemaError(
                f"schema {cls_name!r}: field name {fname!r} would hide the sample type's own "
                f"attribute of that name; rename the field"
            )
        ann = _annotation(prop, f"{cls_name}.{fname}", nested, depth, budget)
        if fname in required:
            annotations[fname] = ann
        else:
            annotations[fname] = ann | None if ann is not Any else Any
            ns[fname] = dataclasses.field(default=None, kw_only=True)
    ns["__annotations__"] = annotations
    ns["__module__"] = "atdata.dynamic"
    ns["__doc__"] = f"{cls_name}: a sample type rebuilt from its stored schema."
    cls: type = packable(type(cls_name, (), ns))
    nested[cls_name] = cls
    return cls


def type_from_schema(name: str, body: dict[str, Any]) -> type:
    """Rebuild a ``@packable`` class from a schema body (fields in order; optional ones default None).

    The same ``name`` and body give the same class (the last 256 are kept), so reloading a
    schema neither grows memory nor makes a new type each time.

    Args:
        name: Class name (a record name like ``"pkg.Image@1.0.0"`` is reduced to ``Image``).
        body: A body from :func:`schema_body` (or an upstream/atmosphere schema record's ``schema``).

    Raises:
        SchemaError: For a body atdata cannot turn into a type (not an object, a bad
            ``required``, a field name that is not an identifier or would hide an attribute,
            nesting deeper than 32, more than 4096 properties).
    """
    if isinstance(body, dict) and "schema" in body and "properties" not in body:
        body = body["schema"]  # a whole record was passed
    if not isinstance(body, dict):
        raise SchemaError(f"schema {str(name)[:80]!r} is not a JSON object: {str(body)[:80]}")
    key = (str(name), schema_fingerprint(body))
    cached = _type_cache.get(key)
    if cached is not None:
        with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
            _type_cache.move_to_end(key)
        return cached
    try:
        cls: Any = _build(str(name), body, {})
    except RecursionError:  # pragma: no cover - the depth limit comes first
        raise SchemaError(f"schema {str(name)[:80]!r} is nested too deeply") from None
    cls.__atdata_schema_body__ = body
    _type_cache[key] = cls
    if len(_type_cache) > _TYPE_CACHE_SIZE:
        with contextlib.suppress(KeyError):
            _type_cache.popitem(last=False)
    return cls


def diff_schemas(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[str]]:
    """Fields added, removed and retyped going from body ``a`` to body ``b``.

    Examples:
        >>> a = {"properties": {"x": {"type": "integer"}, "y": {"type": "string"}}, "required": ["x"]}
        >>> b = {"properties": {"x": {"type": "number"}, "z": {"type": "string"}}, "required": ["x"]}
        >>> diff_schemas(a, b)
        {'added': ['z'], 'removed': ['y'], 'retyped': ['x']}
    """
    for body in (a, b):
        if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
            raise SchemaError(f"not a schema body with a 'properties' object: {str(body)[:80]}")
    pa, pb = a.get("properties", {}), b.get("properties", {})
    ra, rb = _required(a, "a"), _required(b, "b")
    retyped = [k for k in pa if k in pb and (pa[k] != pb[k] or ((k in ra) != (k in rb)))]
    return {
        "added": [k for k in pb if k not in pa],
        "removed": [k for k in pa if k not in pb],
        "retyped": retyped,
    }
