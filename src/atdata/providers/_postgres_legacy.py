"""Upstream atdata's PostgreSQL index tables, read and written beside ours.

Upstream (0.7.0b1) keeps its index in the connection's default schema (``public``) in the tables
``dataset_entries``, ``schemas``, ``labels`` and ``lenses`` (the layout of its SQLite index,
with ``BYTEA`` and ``TIMESTAMPTZ``). :class:`~atdata.providers.PostgresProvider` with
``legacy_schema`` creates them when missing (upstream's definitions), reads their rows as part of
the index and writes what it commits into them in the same transaction. Conversions are those of
:mod:`atdata.providers._redis_legacy`.

Examples:
    >>> print(ddl("public").splitlines()[0])
    CREATE TABLE IF NOT EXISTS "public".dataset_entries (
"""

from __future__ import annotations

from typing import Any

import msgpack

from atdata.index._entry import DatasetEntry, SchemaRecord
from atdata.providers._redis_legacy import (
    decoded,
    entry_rows,
    labeled_or_first,
    legacy_schema_json,
    pick_schema,
    schema_from_legacy,
)

__all__ = [
    "ddl",
    "find_entry",
    "find_schema",
    "mirror_entry",
    "mirror_label",
    "mirror_schema",
    "read_entries",
    "read_labels",
    "read_schemas",
]


def ddl(s: str) -> str:
    """Upstream's table definitions in schema ``s`` (``IF NOT EXISTS``)."""
    return f"""CREATE TABLE IF NOT EXISTS "{s}".dataset_entries (
    cid TEXT PRIMARY KEY, name TEXT NOT NULL, schema_ref TEXT NOT NULL,
    data_urls BYTEA NOT NULL, metadata BYTEA, legacy_uuid TEXT,
    created_at TIMESTAMPTZ DEFAULT now());
CREATE INDEX IF NOT EXISTS idx_entries_name ON "{s}".dataset_entries(name);
CREATE TABLE IF NOT EXISTS "{s}".schemas (
    name TEXT NOT NULL, version TEXT NOT NULL, schema_json TEXT NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now(), PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS "{s}".lenses (
    name TEXT NOT NULL, version TEXT NOT NULL, lens_json TEXT NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now(), PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS "{s}".labels (
    name TEXT NOT NULL, cid TEXT NOT NULL, version TEXT NOT NULL DEFAULT '',
    description TEXT, created_at TIMESTAMPTZ DEFAULT now(), PRIMARY KEY (name, version));
CREATE INDEX IF NOT EXISTS idx_labels_cid ON "{s}".labels(cid);"""


_ENTRY_COLS = "cid, name, schema_ref, data_urls, metadata"


def read_entries(conn: Any, s: str) -> list[DatasetEntry]:
    """Every row of upstream's ``dataset_entries`` (malformed rows logged and left out)."""
    return entry_rows(
        conn.execute(f'SELECT {_ENTRY_COLS} FROM "{s}".dataset_entries ORDER BY created_at, cid')
    )


def find_entry(conn: Any, s: str, name: str) -> DatasetEntry | None:
    """Upstream's entry ``name``: the one its ``(name, '')`` label points to, else the newest."""
    found = entry_rows(
        conn.execute(
            f'SELECT {_ENTRY_COLS} FROM "{s}".dataset_entries WHERE name=%s '
            "ORDER BY created_at DESC, cid",
            (name,),
        )
    )
    label = conn.execute(
        f"SELECT cid FROM \"{s}\".labels WHERE name=%s AND version=''", (name,)
    ).fetchone()
    return labeled_or_first(found, label and label[0])


def read_schemas(conn: Any, s: str) -> list[SchemaRecord]:
    """Every row of upstream's ``schemas`` (malformed rows logged and left out)."""
    rows = conn.execute(f'SELECT name, version, schema_json FROM "{s}".schemas').fetchall()
    return decoded(schema_from_legacy, ((t, f"schemas row {n}@{v}") for n, v, t in rows))


def find_schema(conn: Any, s: str, name: str, version: str | None) -> SchemaRecord | None:
    """Upstream's schema ``name`` at ``version`` (the highest when ``None``), or ``None``."""
    return pick_schema(read_schemas(conn, s), name, version)


def read_labels(conn: Any, s: str) -> list[tuple[str, dict[str, Any]]]:
    """Upstream's labels as ``(name@version, label record)``, without the ``(name, '')`` labels
    that an insert sets on its own entry."""
    auto = {
        tuple(r) for r in conn.execute(f'SELECT name, cid FROM "{s}".dataset_entries').fetchall()
    }
    out = []
    for name, cid, version, desc, created in conn.execute(
        f'SELECT name, cid, version, description, created_at FROM "{s}".labels ORDER BY name'
    ).fetchall():
        if not version and (name, cid) in auto:
            continue
        when = created.isoformat() if hasattr(created, "isoformat") else None
        rec = {"name": name, "cid": cid, "version": version or None, "description": desc,
               "createdAt": when}  # fmt: skip
        out.append((f"{name}@{version or ''}", rec))
    return out


def mirror_schema(conn: Any, s: str, record: SchemaRecord) -> None:
    """Write ``record`` as upstream's schema row (never over an existing one; skipped when
    upstream cannot express a field)."""
    text = legacy_schema_json(record)
    if text is not None:
        conn.execute(
            f'INSERT INTO "{s}".schemas (name, version, schema_json) VALUES (%s, %s, %s) '
            "ON CONFLICT DO NOTHING",
            (record.name, record.version, text),
        )


def mirror_entry(conn: Any, s: str, entry: DatasetEntry) -> None:
    """Write ``entry`` as upstream's entry row and point its ``(name, '')`` label at it."""
    meta = msgpack.packb(entry.metadata) if entry.metadata else None
    conn.execute(
        f'INSERT INTO "{s}".dataset_entries ({_ENTRY_COLS}) VALUES (%s, %s, %s, %s, %s) '
        "ON CONFLICT (cid) DO UPDATE SET name = EXCLUDED.name, metadata = EXCLUDED.metadata",
        (entry.cid, entry.name, entry.schema_ref or "", msgpack.packb(entry.data_urls), meta),
    )
    mirror_label(conn, s, {"name": entry.name, "cid": entry.cid, "version": ""})


def mirror_label(conn: Any, s: str, record: dict[str, Any]) -> None:
    """Write a label record as upstream's label row."""
    conn.execute(
        f'INSERT INTO "{s}".labels (name, cid, version, description) VALUES (%s, %s, %s, %s) '
        "ON CONFLICT (name, version) DO UPDATE SET cid = EXCLUDED.cid, "
        "description = EXCLUDED.description, created_at = now()",
        (record["name"], record["cid"], record.get("version") or "", record.get("description")),
    )
