"""Schema operations of :class:`~atdata.Index`: publish with versioning, the documented dict
form of a schema record, decoding to a class, and the ``index.types`` namespace.

Examples:
    >>> rec = SchemaRecord("Row", "1.0.0", {"properties": {"text": {"type": "string"}},
    ...                                     "required": ["text"]})
    >>> d = schema_dict(rec)
    >>> d["$ref"], d["name"], [f["name"] for f in d["fields"]], d["fields"][0]["optional"]
    ('atdata://local/schema/Row@1.0.0', 'Row', ['text'], False)
    >>> d["fields"][0]["fieldType"]
    {'$type': 'local#primitive', 'primitive': 'str'}
"""

from __future__ import annotations

from typing import Any

from atdata._errors import ConfigError, NotFoundError, SchemaError, StorageError
from atdata._wire.local_fields import fields_of
from atdata._wire.schema_json import diff_schemas, schema_body, schema_fingerprint
from atdata.index._entry import (
    LEGACY_SCHEMA_PREFIXES,
    SCHEMA_REF_PREFIX,
    SchemaRecord,
    bump,
    check_name,
    parse_schema_ref,
)
from atdata.providers._base import IndexProvider

__all__ = [
    "SchemaNamespace",
    "publish_schema",
    "resolve_schema",
    "schema_dict",
    "schema_to_type",
]


def schema_dict(rec: SchemaRecord) -> dict[str, Any]:
    """The documented dict form of a stored schema.

    Keys: ``name``, ``version``, ``fields`` (``{"name", "fieldType", "optional"}`` per field),
    ``description``, ``createdAt``, ``$ref``, plus ``schema`` (the whole JSON Schema body, the
    ATProto record's ``schema``). A ``fieldType`` is upstream's local field type
    (``{"$type": "local#primitive", "primitive": "str"}``, ``local#ndarray``, ``local#array``)
    where one exists, else (nested samples, dicts) the field's JSON Schema.
    """
    return {
        "$ref": rec.ref,
        "name": rec.name,
        "version": rec.version,
        "fields": fields_of(rec.body),
        "description": rec.description,
        "createdAt": rec.created_at,
        "metadata": dict(rec.metadata),
        "schema": rec.body,
    }


def resolve_schema(provider: IndexProvider, ref: str) -> SchemaRecord:
    """The stored record of ``ref`` (``atdata://local/schema/N@v``, legacy ``local://schemas/m.N@v``,
    ``N@v`` or ``N`` for the latest version).

    Raises:
        NotFoundError: (a ``KeyError``) When the index has no such schema.
        ConfigError: (a ``ValueError``) When ``ref`` is not a schema reference.
    """
    if (
        not isinstance(ref, str)
        or not ref
        or ("://" in ref and not ref.startswith((SCHEMA_REF_PREFIX, *LEGACY_SCHEMA_PREFIXES)))
    ):
        raise ConfigError(
            f"Invalid schema reference {ref!r}: use 'atdata://local/schema/Name@1.0.0', "
            "'Name@1.0.0' or 'Name'"
        )
    name, version = parse_schema_ref(ref)
    rec = provider.get_schema(name, version)
    if rec is None:
        raise NotFoundError(
            f"schema {ref!r} is not in the index at {provider.url}; publish it with "
            "index.publish_schema(SampleType)"
        )
    return rec


#: ``publish_schema(version=AUTO)`` (or ``""``): an identical schema reuses its stored version; a
#: changed one gets the next minor (it only adds optional fields) or major version.
AUTO = "auto"


def publish_schema(
    provider: IndexProvider,
    sample_type: type,
    version: str | None,
    name: str | None,
    description: str | None,
    *,
    patch_bump: bool = False,
) -> SchemaRecord:
    """Store ``sample_type``'s schema and return the stored record.

    ``version`` ``None``, ``""`` or ``"auto"``: an identical schema reuses its stored version; a
    changed one gets the next version: minor when it only adds optional fields, else major
    (``1.0.0`` first). With ``patch_bump`` (what ``Index.publish_schema(T)`` documents for
    ``version=None``) a ``None`` version is instead the latest version's patch + 1, always.

    Raises:
        SchemaError: When an explicit ``version`` exists with a different body, or
            ``sample_type`` is not a packable type.
    """
    if not getattr(sample_type, "__atdata_sample__", False):
        raise SchemaError(
            f"{getattr(sample_type, '__name__', sample_type)!r} is not a packable sample type; "
            "decorate it with @atdata.packable"
        )
    name = check_name(name or sample_type.__name__, "schema")
    body = schema_body(sample_type)
    if description is None:
        doc = (sample_type.__doc__ or "").strip()
        description = doc or None if not doc.startswith(f"{sample_type.__name__}(") else None
    if version and version != AUTO:
        return provider.put_schema(SchemaRecord(name, version, body, description))
    if version is None and patch_bump:
        for _ in range(20):  # retry when a concurrent publisher took the version
            versions = [r for r in provider.list_schemas() if r.name == name]
            v = bump(versions[-1].version, "patch") if versions else "1.0.0"
            try:
                return provider.put_schema(SchemaRecord(name, v, body, description))
            except SchemaError:
                continue
        raise StorageError(f"could not publish schema {name!r}: too many concurrent publishers")
    fp = schema_fingerprint(body)
    for _ in range(20):  # retry when a concurrent publisher took the version
        versions = [r for r in provider.list_schemas() if r.name == name]
        same = [r for r in versions if r.fingerprint == fp]
        if same:
            return same[-1]
        if not versions:
            v = "1.0.0"
        else:
            latest = versions[-1]
            d = diff_schemas(latest.body, body)
            req = set(body.get("required") or ())
            compatible = not d["removed"] and not d["retyped"] and not (set(d["added"]) & req)
            v = bump(latest.version, "minor" if compatible else "major")
        try:
            return provider.put_schema(SchemaRecord(name, v, body, description))
        except SchemaError:
            continue
    raise StorageError(f"could not publish schema {name!r}: too many concurrent publishers")


class SchemaNamespace:
    """``index.types``: the classes loaded with :meth:`Index.load_schema`, by class name.

    Examples:
        >>> ns = SchemaNamespace()
        >>> ns._register("Row", int)
        >>> ns.Row is int, "Row" in ns, list(ns)
        (True, True, ['Row'])
    """

    def __init__(self) -> None:
        self._types: dict[str, type] = {}

    def _register(self, name: str, cls: type) -> None:
        self._types[name] = cls

    def __getattr__(self, name: str) -> type:
        types = self.__dict__.get("_types", {})
        if name in types:
            return types[name]
        raise AttributeError(
            f"schema type {name!r} is not loaded; call index.load_schema(ref) or "
            "index.get_schema_type(ref) first "
            f"(loaded: {sorted(types)})"
        )

    def get(self, name: str, default: Any = None) -> Any:
        """The loaded type ``name``, or ``default``."""
        return self._types.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Any:
        return iter(sorted(self._types))

    def __len__(self) -> int:
        return len(self._types)

    def __dir__(self) -> list[str]:
        return sorted(self._types)

    def __repr__(self) -> str:
        names = ", ".join(sorted(self._types))
        return f"SchemaNamespace({names})" if names else "SchemaNamespace(empty)"


def schema_to_type(schema: dict[str, Any], *, use_cache: bool = True) -> type:
    """Deprecated (upstream's name; warns): the ``@packable`` class of a schema dict, as
    :meth:`~atdata.Index.get_schema` returns it (or upstream's ``fields`` form). Use
    ``index.get_schema_type(ref)``.

    Args:
        schema: ``{"name", "fields": [...]}`` and/or ``{"schema": <JSON Schema body>}``.
        use_cache: Accepted; the same schema always gives the same class.

    Raises:
        SchemaError: (a ``TypeError``) When it has no name or fields.

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     T = schema_to_type({"name": "Pt", "version": "1.0.0", "fields": [
        ...         {"name": "x", "fieldType": {"$type": "local#primitive", "primitive": "int"},
        ...          "optional": False}]})
        >>> T(x=3).x, T.__name__
        (3, 'Pt')
    """
    import warnings

    from atdata._wire.local_fields import body_of
    from atdata._wire.schema_json import type_from_schema

    warnings.warn(
        "schema_to_type is deprecated; use index.get_schema_type(ref)",
        DeprecationWarning,
        stacklevel=2,
    )
    name = schema.get("name") if isinstance(schema, dict) else None
    if not name:
        raise SchemaError(
            "schema_to_type needs a schema dict with a 'name' (index.get_schema(ref))"
        )
    body = schema.get("schema")
    if not isinstance(body, dict):
        fields = schema.get("fields")
        if not isinstance(fields, list):
            raise SchemaError(f"schema {name!r} has neither 'schema' nor 'fields'")
        body = body_of(fields)
    return type_from_schema(str(name), body)
