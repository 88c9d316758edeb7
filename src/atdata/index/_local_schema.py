"""``LocalSchemaRecord``: a stored schema in upstream atdata's field-list form, what
``Index.get_schema_record`` returns.

Upstream's local index keeps a schema as a list of fields (``name``, ``fieldType``,
``optional``); ours keeps the JSON Schema body of the ATProto record (:class:`SchemaRecord`).
This class takes and gives the field-list form (constructor, ``from_dict``/``to_dict``); a
record read from an index also carries the stored body (:attr:`LocalSchemaRecord.schema`), so
its :attr:`~LocalSchemaRecord.body`, ``fingerprint``, ``sample_type()`` and ``to_record()`` are
exactly the stored schema's, and fields with no upstream form (nested samples, dicts) are
``SchemaFieldType`` kind ``"json"``. :meth:`LocalSchemaRecord.to_schema_record` gives the
:class:`SchemaRecord`.

Examples:
    >>> from atdata.index import SchemaField, SchemaFieldType
    >>> rec = LocalSchemaRecord(
    ...     name="Row",
    ...     version="1.0.0",
    ...     fields=[SchemaField("text", SchemaFieldType("primitive", primitive="str"))],
    ... )
    >>> rec.ref, [f.name for f in rec.fields]
    ('atdata://local/schema/Row@1.0.0', ['text'])
    >>> rec.body["properties"], rec.body["required"]
    ({'text': {'type': 'string'}}, ['text'])
    >>> LocalSchemaRecord.from_dict(rec.to_dict()) == rec
    True
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any

from atdata._errors import ConfigError
from atdata._wire.local_fields import SchemaField, body_of, fields_of
from atdata._wire.schema_json import schema_fingerprint
from atdata.index._entry import SCHEMA_REF_PREFIX, SchemaRecord

__all__ = ["LocalSchemaRecord"]


def _when(value: Any) -> _dt.datetime | None:
    """A ``createdAt`` value as a datetime (``None`` when absent or unreadable)."""
    if isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


@dataclasses.dataclass(eq=False)
class LocalSchemaRecord:
    """A schema as upstream's local index stores it: a name, a version and a list of fields.

    ``Index.get_schema_record(ref)``, ``Index.schemas`` and ``Index.list_schema_records()`` give
    these, with the stored JSON Schema body in :attr:`schema` and the stored metadata.

    Args:
        name: Schema name (usually the class name).
        version: Semantic version (``"1.0.0"``).
        fields: The fields, in order (:class:`~atdata.index.SchemaField`; plain
            ``{"name", "fieldType", "optional"}`` dicts are converted).
        ref: The schema reference; empty means ``atdata://local/schema/<name>@<version>``.
        description: Optional description.
        created_at: When it was published (an ISO string is parsed).
        metadata: The schema's metadata (ours).
        schema: The stored JSON Schema body (ours); ``None`` (a record built from fields):
            :attr:`body` is made from :attr:`fields`.

    Records are equal when their documented attributes, metadata and :attr:`body` are.
    """

    name: str
    version: str
    fields: list[SchemaField]
    ref: str = ""
    description: str | None = None
    created_at: _dt.datetime | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    schema: dict[str, Any] | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.fields = [
            f if isinstance(f, SchemaField) else SchemaField.from_dict(f) for f in self.fields
        ]
        if not self.ref:
            self.ref = f"{SCHEMA_REF_PREFIX}{self.name}@{self.version}"
        self.created_at = _when(self.created_at)

    def _key(self) -> tuple[Any, ...]:
        return (self.name, self.version, self.fields, self.ref, self.description,
                self.created_at, self.metadata, self.body)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LocalSchemaRecord):
            return NotImplemented
        return self._key() == other._key()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalSchemaRecord:
        """From the stored dict form (``name``, ``version``, ``fields``, ``$ref``,
        ``description``, ``createdAt``), as :meth:`to_dict` and ``Index.get_schema`` give it.

        When it has a ``schema`` (the JSON Schema body, as ``Index.get_schema`` gives), the
        fields are that body's and it is kept as :attr:`schema`; ``metadata`` is kept too.

        Raises:
            ConfigError: When ``name`` or ``version`` is missing.
        """
        missing = [k for k in ("name", "version") if k not in data]
        if missing:
            raise ConfigError(
                f"schema dict has no {' or '.join(missing)}: give both to build a LocalSchemaRecord"
            )
        body = data.get("schema")
        body = dict(body) if isinstance(body, dict) else None
        fields = fields_of(body) if body is not None else data.get("fields") or []
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            fields=[SchemaField.from_dict(f) for f in fields],
            ref=str(data.get("$ref") or ""),
            description=data.get("description"),
            created_at=_when(data.get("createdAt")),
            metadata=dict(data.get("metadata") or {}),
            schema=body,
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored dict form (``createdAt`` and ``description`` only when set; ``metadata``
        and ``schema`` only when the record has them)."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "fields": [f.to_dict() for f in self.fields],
            "$ref": self.ref,
        }
        if self.description:
            out["description"] = self.description
        if self.created_at is not None:
            out["createdAt"] = self.created_at.isoformat()
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        if self.schema is not None:
            out["schema"] = self.schema
        return out

    @property
    def body(self) -> dict[str, Any]:
        """The JSON Schema body (the ATProto record's ``schema``): the stored one
        (:attr:`schema`), else the one of :attr:`fields`."""
        if self.schema is not None:
            return self.schema
        return body_of([f.to_dict() for f in self.fields])

    @property
    def fingerprint(self) -> str:
        """sha256 of the canonical :attr:`body` (as :attr:`SchemaRecord.fingerprint`)."""
        return schema_fingerprint(self.body)

    def sample_type(self) -> type:
        """A ``@packable`` class rebuilt from :attr:`body`."""
        from atdata._wire.schema_json import type_from_schema

        return type_from_schema(self.name, self.body)

    def to_record(self) -> dict[str, Any]:
        """The ``science.alt.dataset.schema`` ATProto record (see :meth:`SchemaRecord.to_record`)."""
        return self.to_schema_record().to_record()

    def to_schema_record(self) -> SchemaRecord:
        """This schema as a :class:`~atdata.index.SchemaRecord` (what an Index stores)."""
        when = self.created_at.isoformat() if self.created_at is not None else None
        return SchemaRecord(
            self.name, self.version, self.body, self.description, when, dict(self.metadata)
        )

    @classmethod
    def from_schema_record(cls, rec: SchemaRecord) -> LocalSchemaRecord:
        """A stored :class:`~atdata.index.SchemaRecord` in the field-list form, carrying its
        body and metadata (a nested sample or dict field is a ``json`` field type)."""
        return cls(rec.name, rec.version, [SchemaField.from_dict(f) for f in fields_of(rec.body)],
                   rec.ref, rec.description, _when(rec.created_at), dict(rec.metadata),
                   rec.body)  # fmt: skip
