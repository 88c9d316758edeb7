"""``LocalSchemaRecord``: a stored schema in upstream atdata's field-list form.

Upstream's local index keeps a schema as a list of fields (``name``, ``fieldType``,
``optional``); ours keeps the JSON Schema body of the ATProto record (:class:`SchemaRecord`).
This class takes and gives the field-list form (constructor, ``from_dict``/``to_dict``) and
converts to and from :class:`SchemaRecord`.

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
from atdata._wire.local_fields import SchemaField, body_of, local_fields
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


@dataclasses.dataclass
class LocalSchemaRecord:
    """A schema as upstream's local index stores it: a name, a version and a list of fields.

    Args:
        name: Schema name (usually the class name).
        version: Semantic version (``"1.0.0"``).
        fields: The fields, in order (:class:`~atdata.index.SchemaField`; plain
            ``{"name", "fieldType", "optional"}`` dicts are converted).
        ref: The schema reference; empty means ``atdata://local/schema/<name>@<version>``.
        description: Optional description.
        created_at: When it was published (an ISO string is parsed).
    """

    name: str
    version: str
    fields: list[SchemaField]
    ref: str = ""
    description: str | None = None
    created_at: _dt.datetime | None = None

    def __post_init__(self) -> None:
        self.fields = [
            f if isinstance(f, SchemaField) else SchemaField.from_dict(f) for f in self.fields
        ]
        if not self.ref:
            self.ref = f"{SCHEMA_REF_PREFIX}{self.name}@{self.version}"
        self.created_at = _when(self.created_at)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalSchemaRecord:
        """From the stored dict form (``name``, ``version``, ``fields``, ``$ref``,
        ``description``, ``createdAt``), as :meth:`to_dict` and ``Index.get_schema`` give it.

        Raises:
            ConfigError: When ``name`` or ``version`` is missing.
        """
        missing = [k for k in ("name", "version") if k not in data]
        if missing:
            raise ConfigError(
                f"schema dict has no {' or '.join(missing)}: give both to build a LocalSchemaRecord"
            )
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            fields=[SchemaField.from_dict(f) for f in data.get("fields") or []],
            ref=str(data.get("$ref") or ""),
            description=data.get("description"),
            created_at=_when(data.get("createdAt")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored dict form (``createdAt`` and ``description`` only when set)."""
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
        return out

    @property
    def body(self) -> dict[str, Any]:
        """The JSON Schema body of these fields (the ATProto record's ``schema``)."""
        return body_of([f.to_dict() for f in self.fields])

    def to_schema_record(self) -> SchemaRecord:
        """This schema as a :class:`~atdata.index.SchemaRecord` (what an Index stores)."""
        when = self.created_at.isoformat() if self.created_at is not None else None
        return SchemaRecord(self.name, self.version, self.body, self.description, when)

    @classmethod
    def from_schema_record(cls, rec: SchemaRecord) -> LocalSchemaRecord:
        """A stored :class:`~atdata.index.SchemaRecord` in the field-list form.

        Raises:
            ConfigError: When a field has no field-list form (a nested sample, a dict).
        """
        fields = local_fields(rec.body)
        if fields is None:
            raise ConfigError(
                f"schema {rec.ref}: a field has no upstream field type (nested sample or dict); "
                "use the SchemaRecord (index.get_schema_record) for it"
            )
        return cls(rec.name, rec.version, [SchemaField.from_dict(f) for f in fields],
                   rec.ref, rec.description, _when(rec.created_at))  # fmt: skip
