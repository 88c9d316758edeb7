"""Upstream atdata's SQLite index tables, read and written beside ours in the same file.

Upstream (0.7.0b1) keeps its default index in ``~/.atdata/index.db`` too, in the tables
``dataset_entries`` (``cid``, ``name``, ``schema_ref``, msgpack ``data_urls`` and ``metadata``),
``schemas`` (``name``, ``version``, its ``fields``-list ``schema_json``), ``labels`` and
``lenses``. :class:`~atdata.providers.SQLiteProvider` creates them when missing (the same
definitions, so either library can open the file first), reads their rows as entries, schema
records and labels of its own, and writes what it commits into them in the same transaction,
so both libraries see one index. Entry and schema conversions are those of the Redis layout
(:mod:`atdata.providers._redis_legacy`).

Examples:
    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.executescript(DDL)
    >>> read_entries(conn), read_schemas(conn), read_labels(conn)
    ([], [], [])
"""

from __future__ import annotations

import sqlite3
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
    "DDL",
    "find_entry",
    "find_schema",
    "mirror_entry",
    "mirror_label",
    "mirror_schema",
    "read_entries",
    "read_labels",
    "read_schemas",
]


#: Upstream's table definitions (``IF NOT EXISTS``: the same ones upstream runs on open).
DDL = """
CREATE TABLE IF NOT EXISTS dataset_entries (
    cid         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    schema_ref  TEXT NOT NULL,
    data_urls   BLOB NOT NULL,
    metadata    BLOB,
    legacy_uuid TEXT,
    created_at  TEXT DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_entries_name ON dataset_entries(name);
CREATE TABLE IF NOT EXISTS schemas (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    schema_json TEXT NOT NULL,
    created_at  TEXT DEFAULT (datetime('now')),
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS lenses (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    lens_json   TEXT NOT NULL,
    created_at  TEXT DEFAULT (datetime('now')),
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS labels (
    name        TEXT NOT NULL,
    cid         TEXT NOT NULL,
    version     TEXT NOT NULL DEFAULT '',
    description TEXT,
    created_at  TEXT DEFAULT (datetime('now')),
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS idx_labels_cid ON labels(cid);
"""


_ENTRY_COLS = "cid, name, schema_ref, data_urls, metadata"


def read_entries(conn: sqlite3.Connection) -> list[DatasetEntry]:
    """Every row of upstream's ``dataset_entries`` (malformed rows logged and left out)."""
    return entry_rows(conn.execute(f"SELECT {_ENTRY_COLS} FROM dataset_entries ORDER BY rowid"))


def find_entry(conn: sqlite3.Connection, name: str) -> DatasetEntry | None:
    """Upstream's entry ``name``: the one its label ``(name, '')`` (set on every insert) points
    to, else the most recent row; ``None`` when there is none."""
    found = entry_rows(
        conn.execute(
            f"SELECT {_ENTRY_COLS} FROM dataset_entries WHERE name=? "
            "ORDER BY created_at DESC, rowid DESC",
            (name,),
        )
    )
    label = conn.execute("SELECT cid FROM labels WHERE name=? AND version=''", (name,)).fetchone()
    return labeled_or_first(found, label and label[0])


def read_schemas(conn: sqlite3.Connection) -> list[SchemaRecord]:
    """Every row of upstream's ``schemas`` (malformed rows logged and left out)."""
    rows = conn.execute("SELECT name, version, schema_json FROM schemas")
    return decoded(schema_from_legacy, ((t, f"schemas row {n}@{v}") for n, v, t in rows))


def find_schema(conn: sqlite3.Connection, name: str, version: str | None) -> SchemaRecord | None:
    """Upstream's schema ``name`` at ``version`` (the highest when ``None``), or ``None``."""
    return pick_schema(read_schemas(conn), name, version)


def read_labels(conn: sqlite3.Connection) -> list[tuple[str, dict[str, Any]]]:
    """Upstream's labels as ``(name@version, label record)``, without the ``(name, '')`` labels
    that an insert sets on its own entry."""
    auto = {(n, c) for n, c in conn.execute("SELECT name, cid FROM dataset_entries").fetchall()}
    out = []
    for name, cid, version, desc, created in conn.execute(
        "SELECT name, cid, version, description, created_at FROM labels ORDER BY rowid"
    ):
        if not version and (name, cid) in auto:
            continue
        when = f"{created.replace(' ', 'T')}Z" if isinstance(created, str) else None
        rec = {"name": name, "cid": cid, "version": version or None, "description": desc,
               "createdAt": when}  # fmt: skip
        out.append((f"{name}@{version or ''}", rec))
    return out


def mirror_schema(conn: sqlite3.Connection, record: SchemaRecord) -> None:
    """Write ``record`` as upstream's schema row (never over an existing one; skipped when
    upstream cannot express a field)."""
    text = legacy_schema_json(record)
    if text is not None:
        conn.execute(
            "INSERT OR IGNORE INTO schemas (name, version, schema_json) VALUES (?, ?, ?)",
            (record.name, record.version, text),
        )


def mirror_entry(conn: sqlite3.Connection, entry: DatasetEntry) -> None:
    """Write ``entry`` as upstream's entry row and point its ``(name, '')`` label at it."""
    meta = msgpack.packb(entry.metadata) if entry.metadata else None
    conn.execute(
        "INSERT OR REPLACE INTO dataset_entries (cid, name, schema_ref, data_urls, metadata) "
        "VALUES (?, ?, ?, ?, ?)",
        (entry.cid, entry.name, entry.schema_ref or "", msgpack.packb(entry.data_urls), meta),
    )
    conn.execute(
        "INSERT OR REPLACE INTO labels (name, cid, version) VALUES (?, ?, '')",
        (entry.name, entry.cid),
    )


def mirror_label(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    """Write one of our label records as upstream's label row."""
    conn.execute(
        "INSERT OR REPLACE INTO labels (name, cid, version, description) VALUES (?, ?, ?, ?)",
        (record["name"], record["cid"], record.get("version") or "", record.get("description")),
    )
