"""Index records: :class:`DatasetEntry`, :class:`ShardRef`, :class:`SchemaRecord`, semver helpers.

Records are plain dataclasses that serialise to JSON dicts; every provider stores exactly that
JSON, so an entry reads back identically from SQLite, Redis or PostgreSQL.

Examples:
    >>> e = DatasetEntry(name="mnist", shards=[ShardRef("/d/a.tar", "ab" * 32, 10240, 5)])
    >>> e.num_samples, DatasetEntry.from_json(e.to_json()) == e
    (5, True)
    >>> parse_version("1.2.3"), bump("1.2.3", "minor"), bump("1.2.3", "major")
    ((1, 2, 3), '1.3.0', '2.0.0')
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from typing import Any

from atdata._errors import ConfigError
from atdata._wire.schema_json import SCHEMA_RECORD_TYPE, schema_fingerprint

__all__ = [
    "SCHEMA_REF_PREFIX",
    "DatasetEntry",
    "SchemaRecord",
    "ShardRef",
    "bump",
    "parse_schema_ref",
    "parse_version",
    "utcnow",
]

SCHEMA_REF_PREFIX = "atdata://local/schema/"
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,199}$")


def utcnow() -> str:
    """The current UTC time, ISO-8601."""
    return _dt.datetime.now(_dt.UTC).isoformat()


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)``.

    Raises:
        ConfigError: When ``version`` is not ``MAJOR.MINOR.PATCH``.
    """
    m = _SEMVER.match(version) if isinstance(version, str) else None
    if m is None:
        raise ConfigError(f"version {version!r} is not semantic MAJOR.MINOR.PATCH, e.g. '1.0.0'")
    return int(m[1]), int(m[2]), int(m[3])


def bump(version: str, part: str) -> str:
    """The next ``major``, ``minor`` or ``patch`` version after ``version``."""
    ma, mi, pa = parse_version(version)
    if part == "major":
        return f"{ma + 1}.0.0"
    if part == "minor":
        return f"{ma}.{mi + 1}.0"
    return f"{ma}.{mi}.{pa + 1}"


def check_name(name: str, what: str = "dataset") -> str:
    """Validate a dataset or schema name (letters, digits, ``_ . - /``; no ``@``)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ConfigError(
            f"{what} name {name!r} is invalid: use letters, digits and _ . - / (no '@', no '..'), "
            "at most 200 characters"
        )
    return name


def parse_schema_ref(ref: str) -> tuple[str, str | None]:
    """``"atdata://local/schema/Img@1.0.0"``, ``"Img@1.0.0"`` or ``"Img"`` -> ``(name, version)``.

    Examples:
        >>> parse_schema_ref("atdata://local/schema/Img@1.0.0"), parse_schema_ref("Img")
        (('Img', '1.0.0'), ('Img', None))
    """
    s = ref[len(SCHEMA_REF_PREFIX) :] if ref.startswith(SCHEMA_REF_PREFIX) else ref
    name, _, version = s.partition("@")
    return name, (version or None)


@dataclasses.dataclass
class ShardRef:
    """One stored shard: its URL, sha256, size in bytes and sample count."""

    url: str
    sha256: str | None = None
    size: int | None = None
    num_samples: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShardRef:
        return cls(d["url"], d.get("sha256"), d.get("size"), d.get("num_samples"))


@dataclasses.dataclass
class DatasetEntry:
    """A dataset version in an index.

    Attributes:
        name: Dataset name (``@local/<name>``).
        shards: The shards, in order.
        version: Semantic version; assigned by the provider when ``None``.
        schema_ref: ``atdata://local/schema/<Name>@<version>`` (``None`` for schema-free data).
        created_at: ISO-8601 UTC commit time.
        description, license, tags, metadata: Free description, SPDX license id, tags, any JSON.
        entry_id: Idempotency key: committing the same id twice returns the first entry.
        data_store: Description of the store holding the shards.
    """

    name: str
    shards: list[ShardRef] = dataclasses.field(default_factory=list)
    version: str | None = None
    schema_ref: str | None = None
    created_at: str | None = None
    description: str | None = None
    license: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    entry_id: str | None = None
    data_store: str | None = None

    @property
    def num_samples(self) -> int | None:
        """Total samples (``None`` when a shard's count is unknown)."""
        counts = [s.num_samples for s in self.shards]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)

    @property
    def size(self) -> int | None:
        """Total bytes (``None`` when a shard's size is unknown)."""
        sizes = [s.size for s in self.shards]
        return None if any(c is None for c in sizes) else sum(c or 0 for c in sizes)

    @property
    def urls(self) -> list[str]:
        """Shard URLs in order."""
        return [s.url for s in self.shards]

    @property
    def ref(self) -> str:
        """``@local/<name>@<version>``."""
        return f"@local/{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["num_samples"] = self.num_samples
        return d

    @classmethod
    def from_json(cls, raw: dict[str, Any] | str) -> DatasetEntry:
        d: dict[str, Any] = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        kw: dict[str, Any] = {f.name: d.get(f.name) for f in dataclasses.fields(cls) if f.name in d}
        kw["shards"] = [ShardRef.from_json(s) for s in d.get("shards") or ()]
        kw["tags"] = list(d.get("tags") or ())
        kw["metadata"] = dict(d.get("metadata") or {})
        return cls(**kw)

    def dumps(self) -> str:
        """Compact JSON text."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)


@dataclasses.dataclass
class SchemaRecord:
    """A stored, versioned sample schema (the body is the ATProto JSON Schema body)."""

    name: str
    version: str
    body: dict[str, Any]
    description: str | None = None
    created_at: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """sha256 of the canonical body."""
        return schema_fingerprint(self.body)

    @property
    def ref(self) -> str:
        """``atdata://local/schema/<name>@<version>``."""
        return f"{SCHEMA_REF_PREFIX}{self.name}@{self.version}"

    @property
    def fields(self) -> list[str]:
        """Field names in order."""
        return list(self.body.get("properties", {}))

    def to_record(self) -> dict[str, Any]:
        """The ``science.alt.dataset.schema`` ATProto record (promotion is a copy)."""
        rec: dict[str, Any] = {
            "$type": SCHEMA_RECORD_TYPE,
            "name": self.name,
            "version": self.version,
            "schemaType": "jsonSchema",
            "schema": self.body,
            "createdAt": self.created_at or utcnow(),
            "atdataSchemaVersion": 1,
        }
        if self.description is not None:
            rec["description"] = self.description
        if self.metadata:
            rec["metadata"] = self.metadata
        return rec

    def sample_type(self) -> type:
        """A ``@packable`` class rebuilt from the body."""
        from atdata._wire.schema_json import type_from_schema

        return type_from_schema(self.name, self.body)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | str) -> SchemaRecord:
        d: dict[str, Any] = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        return cls(
            d["name"], d["version"], d["body"], d.get("description"), d.get("created_at"),
            dict(d.get("metadata") or {}),
        )  # fmt: skip

    def dumps(self) -> str:
        """Compact JSON text."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)
