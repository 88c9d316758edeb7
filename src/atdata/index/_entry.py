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
import hashlib
import json
import re
from base64 import b32encode
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from atdata._errors import ConfigError, NotFoundError
from atdata._wire.schema_json import SCHEMA_RECORD_TYPE, schema_fingerprint

__all__ = [
    "SCHEMA_REF_PREFIX",
    "DatasetEntry",
    "IndexEntry",
    "LocalDatasetEntry",
    "SchemaRecord",
    "ShardRef",
    "bump",
    "entry_cid",
    "parse_schema_ref",
    "parse_version",
    "utcnow",
    "version_key",
]

SCHEMA_REF_PREFIX = "atdata://local/schema/"
LEGACY_SCHEMA_PREFIXES = ("local://schemas/", "atdata://local/sampleSchema/")
# used with fullmatch: "$" would also match before a trailing newline ("1.0.0\n")
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
)
# what a name may not hold: '@' (the version separator of "name@1.0.0"), '\\' (a path separator
# on Windows; store keys treat it as '/'), glob brackets and braces (shard URLs are expanded as
# patterns when read), and control characters
_NAME_BAD = re.compile(r"[@\\\[\]{}\x00-\x1f\x7f-\x9f\u2028\u2029]|::")
_NAME_MAX = 200  # UTF-8 bytes: the entry lexicon's maxLength, and a file name stays < 255


def utcnow() -> str:
    """The current UTC time, ISO-8601."""
    return _dt.datetime.now(_dt.UTC).isoformat()


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)`` (a semver pre-release or build suffix is allowed and ignored).

    Raises:
        ConfigError: When ``version`` is not ``MAJOR.MINOR.PATCH``.
    """
    m = _SEMVER.fullmatch(version) if isinstance(version, str) else None
    if m is None:
        raise ConfigError(f"version {version!r} is not semantic MAJOR.MINOR.PATCH, e.g. '1.0.0'")
    return int(m[1]), int(m[2]), int(m[3])


def version_key(version: str) -> tuple[Any, ...]:
    """A sort key ordering versions by semver precedence, then by their text.

    A release outranks its pre-releases; pre-release identifiers compare numerically when
    both are digits, else in ASCII order (digits first), and more identifiers outrank fewer.
    Build metadata carries no precedence, so equal precedence falls back to the text (every
    provider then agrees on the latest). A version that is not semantic sorts first.

    Examples:
        >>> sorted(["1.0.0", "1.0.0-rc.10", "1.0.0-rc.2", "1.0.0-a", "0.9.0"], key=version_key)
        ['0.9.0', '1.0.0-a', '1.0.0-rc.2', '1.0.0-rc.10', '1.0.0']
    """
    m = _SEMVER.fullmatch(version) if isinstance(version, str) else None
    if m is None:
        return (-1, 0, 0, 0, (), str(version))
    pre = version.partition("+")[0].partition("-")[2]
    ids = tuple(
        (0, int(x), "") if x.isdigit() else (1, 0, x) for x in pre.split(".") if x
    )  # fmt: skip
    return (int(m[1]), int(m[2]), int(m[3]), 0 if pre else 1, ids, version)


def bump(version: str, part: str) -> str:
    """The next ``major``, ``minor`` or ``patch`` version after ``version``."""
    ma, mi, pa = parse_version(version)
    if part == "major":
        return f"{ma + 1}.0.0"
    if part == "minor":
        return f"{ma}.{mi + 1}.0"
    return f"{ma}.{mi}.{pa + 1}"


def check_name(name: str, what: str = "dataset") -> str:
    """Validate a dataset, schema, label or lens name.

    Any text is a name, in any script (``"données"``, ``"数据"``, ``"a b"``), except:
    ``@`` (it separates ``name@version``), ``\\``, ``[ ] { }`` and ``::`` (read back as shard
    patterns), control characters, an empty or ``.``/``..`` part between slashes (it could not
    name a store key), ``.staging`` as the first part (the store's), and more than 200 UTF-8
    bytes (the entry record's limit).

    Examples:
        >>> check_name("données/v1"), check_name("数据")
        ('données/v1', '数据')
    """
    if not isinstance(name, str):
        raise ConfigError(f"{what} name must be a string, got {type(name).__name__}")
    parts = name.split("/")
    why = (
        "it is empty" if not name
        else f"it has {len(name.encode('utf-8', 'replace'))} UTF-8 bytes, more than {_NAME_MAX}"
        if len(name.encode("utf-8", "replace")) > _NAME_MAX
        else f"it holds {m.group()!r}" if (m := _NAME_BAD.search(name))
        else "it has an empty, '.' or '..' part between slashes"
        if any(p in ("", ".", "..") for p in parts)
        else "'.staging' is the data store's own directory" if parts[0] == ".staging"
        else None
    )  # fmt: skip
    if why is not None:
        raise ConfigError(
            f"{what} name {name!r} is invalid: {why}. A name is any text of at most "
            f"{_NAME_MAX} UTF-8 bytes (letters of any script, digits, spaces, punctuation), "
            "without '@', '\\', '[', ']', '{', '}', '::' or control characters, and without "
            "an empty, '.' or '..' part between slashes"
        )
    return name


def parse_schema_ref(ref: str) -> tuple[str, str | None]:
    """``"atdata://local/schema/Img@1.0.0"``, ``"Img@1.0.0"`` or ``"Img"`` -> ``(name, version)``.

    Examples:
        >>> parse_schema_ref("atdata://local/schema/Img@1.0.0"), parse_schema_ref("Img")
        (('Img', '1.0.0'), ('Img', None))
    """
    s = ref
    for p in (SCHEMA_REF_PREFIX, *LEGACY_SCHEMA_PREFIXES):
        if ref.startswith(p):
            s = ref[len(p) :]
            break
    name, _, version = s.partition("@")
    if ref.startswith("local://schemas/"):
        name = name.rsplit(".", 1)[-1]  # legacy refs name the class as module.Class
    return name, (version or None)


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError("value too large for CBOR")


def _dag_cbor(obj: Any) -> bytes:
    """DAG-CBOR of ``None``, ``str``, lists and str-keyed dicts (the entry identity's types)."""
    if obj is None:
        return b"\xf6"
    if isinstance(obj, str):
        b = obj.encode("utf-8")
        return _cbor_head(3, len(b)) + b
    if isinstance(obj, (list, tuple)):
        return _cbor_head(4, len(obj)) + b"".join(_dag_cbor(x) for x in obj)
    if isinstance(obj, dict):
        keys = sorted(obj, key=lambda k: (len(k.encode()), k.encode()))
        return _cbor_head(5, len(obj)) + b"".join(_dag_cbor(k) + _dag_cbor(obj[k]) for k in keys)
    raise TypeError(f"no DAG-CBOR form here for {type(obj).__name__}")


def entry_cid(schema_ref: str | None, data_urls: Sequence[str]) -> str:
    """The content identifier of a dataset entry: CIDv1 (dag-cbor, sha256) of its identity.

    The identity is ``{"schema_ref": ..., "data_urls": [...]}``, so the same schema and shards
    give the same CID here and in the atmosphere (:func:`atdata.generate_cid` of that dict).

    Examples:
        >>> entry_cid("atdata://local/schema/Row@1.0.0", ["/d/a.tar"])[:4]
        'bafy'
    """
    body = _dag_cbor({"schema_ref": schema_ref, "data_urls": list(data_urls)})
    raw = bytes([0x01, 0x71, 0x12, 0x20]) + hashlib.sha256(body).digest()
    return "b" + b32encode(raw).decode("ascii").lower().rstrip("=")


@runtime_checkable
class IndexEntry(Protocol):
    """What every index entry offers, local or atmosphere: name, schema, shard URLs, metadata."""

    @property
    def name(self) -> str: ...

    @property
    def schema_ref(self) -> str | None: ...

    @property
    def data_urls(self) -> list[str]: ...

    @property
    def metadata(self) -> dict[str, Any] | None: ...


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


@dataclasses.dataclass(init=False)
class DatasetEntry:
    """A dataset version in an index (also spelled ``LocalDatasetEntry``, the documented name).

    Construct it the documented way, ``DatasetEntry(name, schema_ref, data_urls, metadata)``,
    or ours, with ``shards=[ShardRef(...)]`` carrying each shard's sha256, size and count.

    Attributes:
        name: Dataset name (``@local/<name>``).
        shards: The shards, in order.
        version: Semantic version; assigned by the provider when ``None``.
        schema_ref: ``atdata://local/schema/<Name>@<version>`` (``None`` for schema-free data).
        created_at: ISO-8601 UTC commit time.
        description, license, tags, metadata: Free description, SPDX license id, tags, any JSON.
        entry_id: Idempotency key: committing the same id twice returns the first entry.
        data_store: Description of the store holding the shards.

    Examples:
        >>> e = DatasetEntry("mnist", "atdata://local/schema/Img@1.0.0", ["/d/a.tar"])
        >>> e.data_urls, e.shards[0].url, e.cid == entry_cid(e.schema_ref, e.data_urls)
        (['/d/a.tar'], '/d/a.tar', True)
    """

    name: str
    shards: list[ShardRef]
    version: str | None
    schema_ref: str | None
    created_at: str | None
    description: str | None
    license: str | None
    tags: list[str]
    metadata: dict[str, Any]
    entry_id: str | None
    data_store: str | None

    def __init__(
        self,
        name: str,
        schema_ref: str | None = None,
        data_urls: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        shards: Sequence[ShardRef] | None = None,
        version: str | None = None,
        created_at: str | None = None,
        description: str | None = None,
        license: str | None = None,
        tags: Sequence[str] = (),
        entry_id: str | None = None,
        data_store: str | None = None,
    ) -> None:
        if shards is not None and data_urls is not None:
            raise ConfigError("give either data_urls= or shards=, not both")
        if isinstance(data_urls, str):
            data_urls = [data_urls]
        self.name = name
        self.shards = list(shards) if shards is not None else [ShardRef(u) for u in data_urls or ()]
        self.version = version
        self.schema_ref = schema_ref
        self.created_at = created_at
        self.description = description
        self.license = license
        self.tags = list(tags or ())
        self.metadata = dict(metadata or {})
        self.entry_id = entry_id
        self.data_store = data_store

    @property
    def data_urls(self) -> list[str]:
        """Shard URLs in order (the documented name of :attr:`urls`)."""
        return [s.url for s in self.shards]

    @property
    def cid(self) -> str:
        """Content identifier of the entry (:func:`entry_cid` of its schema and shard URLs)."""
        return entry_cid(self.schema_ref, self.data_urls)

    @property
    def wds_url(self) -> str | None:
        """The first shard URL (legacy spelling)."""
        return self.shards[0].url if self.shards else None

    @property
    def sample_kind(self) -> str | None:
        """The schema reference (legacy spelling of :attr:`schema_ref`)."""
        return self.schema_ref

    def write_to(self, redis: Any, *, prefix: str = "atdata:") -> DatasetEntry:
        """Commit this entry to the Redis index on ``redis`` (as ``Index(redis=redis)`` sees it).

        Returns:
            The stored entry (with its version and commit time).
        """
        from atdata.providers._redis import RedisProvider

        stored = RedisProvider(redis, prefix=prefix).add_entry(self)
        self.version, self.created_at, self.entry_id = (
            stored.version, stored.created_at, stored.entry_id,
        )  # fmt: skip
        return stored

    @classmethod
    def from_redis(cls, redis: Any, cid: str, *, prefix: str = "atdata:") -> DatasetEntry:
        """The entry whose :attr:`cid` is ``cid`` in the Redis index on ``redis``.

        Raises:
            NotFoundError: (a ``KeyError``) When there is none.
        """
        from atdata.providers._redis import RedisProvider

        for e in RedisProvider(redis, prefix=prefix).list_entries():
            if e.cid == cid:
                return e
        raise NotFoundError(f"no dataset entry with CID {cid!r} in Redis (prefix {prefix!r})")

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


LocalDatasetEntry = DatasetEntry
BasicIndexEntry = DatasetEntry


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
