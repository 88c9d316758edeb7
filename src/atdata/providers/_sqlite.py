"""SQLite index provider (the default): one file, WAL mode, safe for several processes.

Upstream atdata's tables in the same file (its default index is ``~/.atdata/index.db`` too) are
read as part of the index and kept up to date with ours (``legacy_tables``; see
:mod:`atdata.providers._sqlite_legacy`).

Examples:
    >>> import tempfile, os
    >>> from atdata.index._entry import DatasetEntry
    >>> p = SQLiteProvider(os.path.join(tempfile.mkdtemp(), "index.db"))
    >>> p.add_entry(DatasetEntry(name="a")).version, p.add_entry(DatasetEntry(name="a")).version
    ('1.0.0', '1.1.0')
    >>> [e.version for e in p.list_entries()]
    ['1.0.0', '1.1.0']
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

from atdata._errors import ConfigError, SchemaError, StorageError
from atdata.index._entry import DatasetEntry, SchemaRecord, parse_version, utcnow
from atdata.providers import _sqlite_legacy as _legacy
from atdata.providers._base import (
    IndexProvider,
    conflict_message,
    next_entry_version,
    schema_conflict_message,
    sort_key,
)

__all__ = ["SQLiteProvider", "SqliteProvider"]

_DDL = """
CREATE TABLE IF NOT EXISTS atdata_schemas (
    name TEXT NOT NULL, version TEXT NOT NULL, fingerprint TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS atdata_entries (
    name TEXT NOT NULL, version TEXT NOT NULL, entry_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL,
    PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS atdata_records (
    kind TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (kind, key));
"""


class SqliteProvider(IndexProvider):
    """Index records in a SQLite database file.

    Args:
        path: Database file (parent directories are created).
        timeout: Seconds to wait for another process's write lock.
        legacy_tables: Also read upstream atdata's tables in this file and write our commits
            into them (default ``True``).
    """

    kind = "sqlite"

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, legacy_tables: bool = True
    ) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self.legacy_tables = legacy_tables
        self._local = threading.local()
        self._pid = os.getpid()
        self._conn()  # create the file and tables now, so errors surface here

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._pid == os.getpid():
            return conn
        self._pid = os.getpid()
        try:
            d = os.path.dirname(self.path)
            if d:
                os.makedirs(d, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            self._prepare(conn)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the SQLite index {self.url}: {exc}") from None
        self._local.conn = conn
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """WAL mode and the tables. Processes opening a new file at once can meet SQLite's
        immediate "database is locked" (switching to WAL, or two readers upgrading to writers in
        the rollback journal the file starts with: the busy timeout does not apply), so that is
        tried again until ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_DDL)
                if self.legacy_tables:
                    conn.executescript(_legacy.DDL)
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite index {self.url} failed: {exc}") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write-locking transaction: committed when the block ends, rolled back on any error;
        SQLite errors become :class:`StorageError` naming the file."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite index {self.url} failed: {exc}") from None

    # -- schemas --------------------------------------------------------------------------------
    def put_schema(self, record: SchemaRecord) -> SchemaRecord:
        parse_version(record.version)
        record.created_at = record.created_at or utcnow()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT record FROM atdata_schemas WHERE name=? AND version=?",
                (record.name, record.version),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO atdata_schemas VALUES (?,?,?,?)",
                    (record.name, record.version, record.fingerprint, record.dumps()),
                )
                if self.legacy_tables:
                    _legacy.mirror_schema(conn, record)
        if row is None:
            return record
        existing = SchemaRecord.from_json(row[0])
        if existing.fingerprint != record.fingerprint:
            raise SchemaError(schema_conflict_message(record))
        return existing

    def _versioned(self, table: str, name: str, version: str | None) -> str | None:
        """The stored JSON of ``name`` at ``version``, or of its newest version when ``None``."""
        if version is not None:
            rows = self._query(
                f"SELECT record FROM {table} WHERE name=? AND version=?", (name, version)
            )
            return rows[0][0] if rows else None
        rows = self._query(f"SELECT version, record FROM {table} WHERE name=?", (name,))
        if not rows:
            return None
        return max(rows, key=lambda r: sort_key(name, r[0]))[1]

    def _legacy_read(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(self._conn(), *args)
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite index {self.url} failed: {exc}") from None

    def get_schema(self, name: str, version: str | None = None) -> SchemaRecord | None:
        record = self._versioned("atdata_schemas", name, version)
        if record is not None:
            return SchemaRecord.from_json(record)
        return self._legacy_read(_legacy.find_schema, name, version) if self.legacy_tables else None

    def list_schemas(self) -> list[SchemaRecord]:
        recs = {
            (r.name, r.version): r
            for r in (
                SchemaRecord.from_json(x[0])
                for x in self._query("SELECT record FROM atdata_schemas")
            )
        }
        if self.legacy_tables:
            for r in self._legacy_read(_legacy.read_schemas):
                recs.setdefault((r.name, r.version), r)
        return sorted(recs.values(), key=lambda r: sort_key(r.name, r.version))

    # -- entries --------------------------------------------------------------------------------
    def add_entry(self, entry: DatasetEntry) -> DatasetEntry:
        import uuid

        entry.entry_id = entry.entry_id or uuid.uuid4().hex
        entry.created_at = entry.created_at or utcnow()
        if entry.version is not None:
            parse_version(entry.version)
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT record FROM atdata_entries WHERE entry_id=?", (entry.entry_id,)
            ).fetchone()
            if row is not None:
                return DatasetEntry.from_json(row[0])
            versions = [
                r[0]
                for r in conn.execute(
                    "SELECT version FROM atdata_entries WHERE name=?", (entry.name,)
                )
            ]
            if entry.version is None:
                entry.version = next_entry_version(versions)
            elif entry.version in versions:
                raise ConfigError(conflict_message(entry))
            conn.execute(
                "INSERT INTO atdata_entries VALUES (?,?,?,?)",
                (entry.name, entry.version, entry.entry_id, entry.dumps()),
            )
            if self.legacy_tables:
                _legacy.mirror_entry(conn, entry)
        return entry

    def get_entry(self, name: str, version: str | None = None) -> DatasetEntry | None:
        record = self._versioned("atdata_entries", name, version)
        if record is not None:
            return DatasetEntry.from_json(record)
        if self.legacy_tables and version is None:
            found: DatasetEntry | None = self._legacy_read(_legacy.find_entry, name)
            return found
        return None

    def get_entry_by_id(self, entry_id: str) -> DatasetEntry | None:
        rows = self._query("SELECT record FROM atdata_entries WHERE entry_id=?", (entry_id,))
        return DatasetEntry.from_json(rows[0][0]) if rows else None

    def list_entries(self) -> list[DatasetEntry]:
        recs = [
            DatasetEntry.from_json(r[0]) for r in self._query("SELECT record FROM atdata_entries")
        ]
        if self.legacy_tables:
            ours = {e.cid for e in recs}
            recs += [e for e in self._legacy_read(_legacy.read_entries) if e.cid not in ours]
        return sorted(recs, key=lambda e: sort_key(e.name, e.version or ""))

    def put_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO atdata_records (kind, key, record) VALUES (?, ?, ?)",
                (kind, key, json.dumps(record, separators=(",", ":"), ensure_ascii=False)),
            )
            if self.legacy_tables and kind == "label":
                _legacy.mirror_label(conn, record)

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = self._query("SELECT record FROM atdata_records WHERE kind=? AND key=?", (kind, key))
        return json.loads(rows[0][0]) if rows else None

    def list_records(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self._query(
            "SELECT key, record FROM atdata_records WHERE kind=? ORDER BY key", (kind,)
        )
        out = {k: json.loads(r) for k, r in rows}
        if self.legacy_tables and kind == "label":
            for key, rec in self._legacy_read(_legacy.read_labels):
                out.setdefault(key, rec)
        return sorted(out.items())

    def ping(self) -> None:
        self._query("SELECT 1")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __reduce__(self) -> Any:  # picklable: reopen the same file in another process
        state = {"timeout": self.timeout, "legacy_tables": self.legacy_tables}
        return (SqliteProvider, (self.path,), state)

    def __setstate__(self, state: dict) -> None:
        self.timeout = state["timeout"]
        self.legacy_tables = state.get("legacy_tables", True)


SQLiteProvider = SqliteProvider  # the same class; upstream documents the name ``SqliteProvider``
