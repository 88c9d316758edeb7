"""Upstream atdata's Redis index layout, read and written beside ours (so both share one index).

Upstream (0.7.0b1) keeps its index unprefixed in the Redis database: a hash
``LocalDatasetEntry:<cid>`` per entry (``name``, ``schema_ref``, ``cid``, msgpack ``data_urls``
and ``metadata``), a JSON string ``LocalSchema:<Name>@<version>`` per schema (a list of
``fields`` with ``local#primitive`` / ``local#ndarray`` / ``local#array`` field types) and a hash
``Label:<name>@<version>`` per label (``name``, ``cid``, ``version``; upstream sets the label
``<name>@`` on every insert). :class:`~atdata.providers.RedisProvider` reads these as entries,
schema records and labels of its own, and mirrors what it commits into them, so an upstream
installation sees datasets written here and the reverse.

Examples:
    >>> rec = schema_from_legacy(
    ...     '{"name": "Img", "version": "1.0.0", "fields": ['
    ...     '{"name": "label", "fieldType": {"$type": "local#primitive", "primitive": "str"},'
    ...     ' "optional": false}]}'
    ... )
    >>> rec.ref, rec.body["properties"], rec.body["required"]
    ('atdata://local/schema/Img@1.0.0', {'label': {'type': 'string'}}, ['label'])
    >>> legacy_fields(rec.body)
    [{'name': 'label', 'fieldType': {'$type': 'local#primitive', 'primitive': 'str'}, 'optional': False}]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgpack

from atdata._errors import DecodeError
from atdata._wire.local_fields import body_of, local_fields
from atdata.index._entry import DatasetEntry, SchemaRecord, parse_version, version_key

if TYPE_CHECKING:
    from atdata.providers._redis import RedisProvider

__all__ = [
    "ENTRY",
    "REDIS_KEY_DATASET_ENTRY",
    "REDIS_KEY_SCHEMA",
    "LABEL",
    "SCHEMA",
    "decoded",
    "entry_from_legacy",
    "entry_rows",
    "find_entry",
    "find_schema",
    "legacy_entry_hash",
    "legacy_fields",
    "labeled_or_first",
    "legacy_schema_json",
    "mirror_entry",
    "mirror_label",
    "mirror_schema",
    "pick_schema",
    "read_entries",
    "read_labels",
    "read_schemas",
    "schema_from_legacy",
]

log = logging.getLogger("atdata")

ENTRY, SCHEMA, LABEL = "LocalDatasetEntry", "LocalSchema", "Label"
#: Upstream's documented names of the entry and schema key prefixes.
REDIS_KEY_DATASET_ENTRY, REDIS_KEY_SCHEMA = ENTRY, SCHEMA
#: A field of mirror-written label hashes: such labels are ours, not read back as upstream's.
MIRROR_MARK = "atdata_mirror"


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


# -- schemas ------------------------------------------------------------------------------------
def schema_from_legacy(raw: str | bytes, key: str = "") -> SchemaRecord:
    """The :class:`~atdata.index.SchemaRecord` of an upstream ``LocalSchema`` JSON value.

    Raises:
        DecodeError: (a ``ValueError``) When it is not upstream's schema JSON.
    """
    try:
        d = json.loads(raw)
        name, version, fields = str(d["name"]), str(d["version"]), list(d.get("fields") or [])
        parse_version(version)
    except (ValueError, KeyError, TypeError):
        raise DecodeError(
            f"Redis key {key or SCHEMA!r} is not an upstream atdata schema (JSON with name, "
            "version and fields)"
        ) from None
    body = body_of(fields)
    return SchemaRecord(
        name.rsplit(".", 1)[-1], version, body, d.get("description"), d.get("createdAt")
    )


def legacy_fields(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Upstream's ``fields`` list of a JSON Schema body (see :func:`local_fields`)."""
    return local_fields(body)


def legacy_schema_json(record: SchemaRecord) -> str | None:
    """Upstream's ``LocalSchema`` JSON of ``record`` (``None`` when upstream cannot express it)."""
    fields = legacy_fields(record.body)
    if fields is None:
        return None
    d: dict[str, Any] = {"name": record.name, "version": record.version, "fields": fields}
    d["description"] = record.description
    d["createdAt"] = record.created_at
    return json.dumps(d)


# -- entries ------------------------------------------------------------------------------------
def entry_from_legacy(raw: dict[Any, Any], key: str = "") -> DatasetEntry:
    """The :class:`~atdata.index.DatasetEntry` of an upstream ``LocalDatasetEntry`` hash (no
    version: upstream entries have none).

    Raises:
        DecodeError: (a ``ValueError``) When the hash is not upstream's entry layout.
    """
    h = {_text(k): v for k, v in raw.items()}
    try:
        urls = msgpack.unpackb(h["data_urls"], raw=False)
        meta = msgpack.unpackb(h["metadata"], raw=False) if "metadata" in h else None
        if not isinstance(urls, list) or not (meta is None or isinstance(meta, dict)):
            raise TypeError
        name = _text(h["name"])
    except Exception:  # msgpack raises several unrelated types
        raise DecodeError(
            f"Redis key {key or ENTRY!r} is not an upstream atdata entry (a hash with name, "
            "schema_ref and msgpack data_urls)"
        ) from None
    ref = _text(h["schema_ref"]) if h.get("schema_ref") else None
    return DatasetEntry(name, ref, [str(u) for u in urls], meta)


def legacy_entry_hash(entry: DatasetEntry) -> dict[str, bytes | str]:
    """Upstream's ``LocalDatasetEntry`` hash of ``entry``."""
    data: dict[str, bytes | str] = {
        "name": entry.name,
        "schema_ref": entry.schema_ref or "",
        "data_urls": msgpack.packb(entry.data_urls),
        "cid": entry.cid,
    }
    if entry.metadata:
        data["metadata"] = msgpack.packb(entry.metadata)
    return data


# -- shared by the Redis, SQLite and PostgreSQL readers --------------------------------------
def decoded(decode: Callable[[Any, str], Any], items: Iterable[tuple[Any, str]]) -> list[Any]:
    """``decode(raw, where)`` of each item; one that is not upstream's layout is logged and left
    out (a stray key or row never hides the rest of the index)."""
    out = []
    for raw, where in items:
        try:
            out.append(decode(raw, where))
        except DecodeError as exc:
            log.warning("skipped %s", exc)
    return out


def entry_rows(rows: Iterable[tuple[Any, ...]]) -> list[DatasetEntry]:
    """Entries of upstream's ``dataset_entries`` rows ``(cid, name, schema_ref, data_urls,
    metadata)`` (binary columns as ``bytes`` or ``memoryview``)."""

    def raw(row: tuple[Any, ...]) -> tuple[dict[str, Any], str]:
        cid, name, ref, urls, meta = row
        d = {"name": name, "schema_ref": ref, "data_urls": bytes(urls)}
        if meta is not None:
            d["metadata"] = bytes(meta)
        return d, f"dataset_entries row {cid}"

    return decoded(entry_from_legacy, map(raw, rows))


def labeled_or_first(entries: list[DatasetEntry], label_cid: Any) -> DatasetEntry | None:
    """The entry upstream's ``(name, '')`` label points to (``label_cid``), else the first."""
    cid = None if label_cid is None else _text(label_cid)
    return next((e for e in entries if e.cid == cid), entries[0] if entries else None)


def pick_schema(
    records: Iterable[SchemaRecord], name: str, version: str | None
) -> SchemaRecord | None:
    """Schema ``name`` at ``version`` among ``records`` (the highest when ``None``), or ``None``."""
    found = [r for r in records if r.name == name and version in (None, r.version)]
    return max(found, key=lambda r: version_key(r.version)) if found else None


# -- reading and mirroring through a RedisProvider -------------------------------------------
def _keys(p: RedisProvider, pattern: str) -> list[str]:
    return sorted(_text(k) for k in p._call(lambda: list(p._client.scan_iter(match=pattern))))


def read_entries(p: RedisProvider) -> list[DatasetEntry]:
    """Every upstream entry in ``p``'s database (a malformed one is logged and left out)."""
    hashes = ((p._call(p._client.hgetall, key), key) for key in _keys(p, f"{ENTRY}:*"))
    return decoded(entry_from_legacy, ((h, key) for h, key in hashes if h))


def find_entry(p: RedisProvider, name: str) -> DatasetEntry | None:
    """The upstream entry called ``name``: the one its label ``<name>@`` (set by upstream on
    every insert) points to, else the first by CID; ``None`` when there is none."""
    found = [e for e in read_entries(p) if e.name == name]
    if not found:
        return None
    return labeled_or_first(found, p._call(p._client.hget, f"{LABEL}:{name}@", "cid"))


def read_schemas(p: RedisProvider) -> list[SchemaRecord]:
    """Every upstream schema in ``p``'s database (a malformed one is logged and left out)."""
    values = ((p._call(p._client.get, key), key) for key in _keys(p, f"{SCHEMA}:*"))
    return decoded(schema_from_legacy, ((v, key) for v, key in values if v is not None))


def find_schema(p: RedisProvider, name: str, version: str | None) -> SchemaRecord | None:
    """Upstream's schema ``name`` at ``version`` (the highest when ``None``), or ``None``."""
    return pick_schema(read_schemas(p), name, version)


def read_labels(p: RedisProvider) -> list[tuple[str, dict[str, Any]]]:
    """Upstream's labels as ``(name@version, label record)`` (mirrored ones of ours left out)."""
    out = []
    for key in _keys(p, f"{LABEL}:*"):
        h = {_text(k): _text(v) for k, v in p._call(p._client.hgetall, key).items()}
        if MIRROR_MARK in h or "cid" not in h or "name" not in h:
            continue
        version = h.get("version") or None
        rec = {"name": h["name"], "cid": h["cid"], "version": version, "description": None,
               "createdAt": None}  # fmt: skip
        out.append((f"{h['name']}@{version or ''}", rec))
    return out


def mirror_schema(p: RedisProvider, record: SchemaRecord) -> None:
    """Write ``record`` as upstream's ``LocalSchema`` (never over an existing one; skipped when
    upstream cannot express a field)."""
    text = legacy_schema_json(record)
    if text is not None:
        p._call(p._client.set, f"{SCHEMA}:{record.name}@{record.version}", text, nx=True)


def mirror_entry(p: RedisProvider, entry: DatasetEntry) -> None:
    """Write ``entry`` as upstream's ``LocalDatasetEntry`` and point upstream's ``<name>@`` label
    (its "latest insert") at it."""
    p._call(p._client.hset, f"{ENTRY}:{entry.cid}", mapping=legacy_entry_hash(entry))
    label = {"cid": entry.cid, "name": entry.name, "version": "", MIRROR_MARK: "1"}
    p._call(p._client.hset, f"{LABEL}:{entry.name}@", mapping=label)


def mirror_label(p: RedisProvider, record: dict[str, Any]) -> None:
    """Write one of our label records as upstream's ``Label`` hash."""
    version = record.get("version") or ""
    label = {"cid": record["cid"], "name": record["name"], "version": version, MIRROR_MARK: "1"}
    p._call(p._client.hset, f"{LABEL}:{record['name']}@{version}", mapping=label)
