"""PostgreSQL index provider (``psycopg`` 3, extra ``postgres``).

Tables live in their own PostgreSQL schema (``schema="atdata"`` by default, one per test run in
the tests). Version assignment takes a transaction-scoped advisory lock on the dataset name, so
concurrent writers from any number of processes never collide.

Upstream atdata's tables (``dataset_entries``, ``schemas``, ``labels`` in ``public``) are read as
part of the default index and kept up to date with ours (``legacy_schema``; see
:mod:`atdata.providers._postgres_legacy`).
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from atdata._errors import ConfigError, SchemaError, StorageError
from atdata._extras import require
from atdata.index._entry import DatasetEntry, SchemaRecord, parse_version, utcnow
from atdata.providers import _postgres_legacy as _legacy
from atdata.providers._base import (
    IndexProvider,
    conflict_message,
    mask_url,
    next_entry_version,
    refuse_pickle,
    schema_conflict_message,
    sort_key,
)

__all__ = ["PostgresProvider"]

DEFAULT_DSN = "postgresql://127.0.0.1:5432/postgres"


class PostgresProvider(IndexProvider):
    """Index records in PostgreSQL.

    Args:
        dsn: libpq connection string or URL, e.g. ``"postgresql://user@127.0.0.1:5432/db"``.
        schema: PostgreSQL schema holding the tables (created if missing).
        connect_timeout: Seconds before an unreachable server raises :class:`StorageError`.
        legacy_schema: The PostgreSQL schema of upstream atdata's tables, read as part of the
            index and kept up to date with ours (``None``: ``public`` for the default
            ``schema="atdata"``, else none; ``""``: none).
    """

    kind = "postgres"

    def __init__(
        self,
        dsn: str = DEFAULT_DSN,
        *,
        schema: str = "atdata",
        connect_timeout: float = 5.0,
        legacy_schema: str | None = None,
    ) -> None:
        if legacy_schema is None:
            legacy_schema = "public" if schema == "atdata" else ""
        for name in (schema, legacy_schema or "x"):
            if not name.replace("_", "").isalnum():
                raise ConfigError(f"PostgreSQL schema name {name!r} must be letters, digits and _")
        self.dsn = dsn
        self.schema = schema
        self.legacy_schema = legacy_schema
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn_obj: Any = None
        self._pid: int | None = None
        self._ensure_tables()

    @property
    def url(self) -> str:
        return f"{mask_url(self.dsn)} (schema {self.schema})"

    def _conn(self) -> Any:
        import os

        if self._conn_obj is not None and self._pid == os.getpid() and not self._conn_obj.closed:
            return self._conn_obj
        psycopg = require("psycopg", "postgres", "the PostgreSQL index provider")
        try:
            conn = psycopg.connect(
                self.dsn, connect_timeout=max(1, int(self.connect_timeout)), autocommit=True
            )
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StorageError(
                f"cannot connect to the PostgreSQL index at {mask_url(self.dsn)}: {mask_url(first)}; "
                "check that the server is running and the DSN's host, port, user and database"
            ) from None
        self._conn_obj, self._pid = conn, os.getpid()
        return conn

    def _run(self, fn: Any) -> Any:
        psycopg = require("psycopg", "postgres")
        with self._lock:
            try:
                return fn(self._conn())
            except psycopg.OperationalError as exc:
                self._conn_obj = None
                raise StorageError(
                    f"PostgreSQL index {mask_url(self.dsn)} failed: {mask_url(str(exc).strip())}"
                ) from None
            except psycopg.Error as exc:
                raise StorageError(
                    f"PostgreSQL index {mask_url(self.dsn)} failed: {mask_url(str(exc).strip())}"
                ) from None

    def _ensure_tables(self) -> None:
        s = self.schema

        def go(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('atdata-ddl'))")
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{s}"')
                conn.execute(
                    f'CREATE TABLE IF NOT EXISTS "{s}".schemas (name TEXT NOT NULL, '
                    "version TEXT NOT NULL, fingerprint TEXT NOT NULL, record TEXT NOT NULL, "
                    "PRIMARY KEY (name, version))"
                )
                conn.execute(
                    f'CREATE TABLE IF NOT EXISTS "{s}".entries (name TEXT NOT NULL, '
                    "version TEXT NOT NULL, entry_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL, "
                    "PRIMARY KEY (name, version))"
                )
                conn.execute(
                    f'CREATE TABLE IF NOT EXISTS "{s}".records (kind TEXT NOT NULL, '
                    "key TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (kind, key))"
                )
                if self.legacy_schema:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.legacy_schema}"')
                    for stmt in _legacy.ddl(self.legacy_schema).split(";"):
                        if stmt.strip():
                            conn.execute(stmt)

        self._run(go)

    # -- schemas --------------------------------------------------------------------------------
    def put_schema(self, record: SchemaRecord) -> SchemaRecord:
        parse_version(record.version)
        record.created_at = record.created_at or utcnow()
        s = self.schema

        def go(conn: Any) -> Any:
            with conn.transaction():
                done = conn.execute(
                    f'INSERT INTO "{s}".schemas VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING',
                    (record.name, record.version, record.fingerprint, record.dumps()),
                )
                if done.rowcount == 1 and self.legacy_schema:
                    _legacy.mirror_schema(conn, self.legacy_schema, record)
                return conn.execute(
                    f'SELECT record FROM "{s}".schemas WHERE name=%s AND version=%s',
                    (record.name, record.version),
                ).fetchone()

        row = self._run(go)
        stored = SchemaRecord.from_json(row[0])
        if stored.fingerprint != record.fingerprint:
            raise SchemaError(schema_conflict_message(record))
        return stored

    def get_schema(self, name: str, version: str | None = None) -> SchemaRecord | None:
        s = self.schema
        if version is not None:
            rows = self._run(
                lambda c: c.execute(
                    f'SELECT version, record FROM "{s}".schemas WHERE name=%s AND version=%s',
                    (name, version),
                ).fetchall()
            )
        else:
            rows = self._run(
                lambda c: c.execute(
                    f'SELECT version, record FROM "{s}".schemas WHERE name=%s', (name,)
                ).fetchall()
            )
        if not rows:
            ls = self.legacy_schema
            if not ls:
                return None
            found: SchemaRecord | None = self._run(
                lambda c: _legacy.find_schema(c, ls, name, version)
            )
            return found
        return SchemaRecord.from_json(max(rows, key=lambda r: sort_key(name, r[0]))[1])

    def list_schemas(self) -> list[SchemaRecord]:
        s = self.schema
        rows = self._run(lambda c: c.execute(f'SELECT record FROM "{s}".schemas').fetchall())
        recs = {(r.name, r.version): r for r in (SchemaRecord.from_json(x[0]) for x in rows)}
        ls = self.legacy_schema
        if ls:
            for r in self._run(lambda c: _legacy.read_schemas(c, ls)):
                recs.setdefault((r.name, r.version), r)
        return sorted(recs.values(), key=lambda r: sort_key(r.name, r.version))

    # -- entries --------------------------------------------------------------------------------
    def add_entry(self, entry: DatasetEntry) -> DatasetEntry:
        entry.entry_id = entry.entry_id or uuid.uuid4().hex
        entry.created_at = entry.created_at or utcnow()
        if entry.version is not None:
            parse_version(entry.version)
        s = self.schema

        def go(conn: Any) -> DatasetEntry:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"atdata:{s}:{entry.name}",)
                )
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"atdata-id:{entry.entry_id}",)
                )
                row = conn.execute(
                    f'SELECT record FROM "{s}".entries WHERE entry_id=%s', (entry.entry_id,)
                ).fetchone()
                if row is not None:
                    return DatasetEntry.from_json(row[0])
                versions = [
                    r[0]
                    for r in conn.execute(
                        f'SELECT version FROM "{s}".entries WHERE name=%s', (entry.name,)
                    ).fetchall()
                ]
                if entry.version is None:
                    entry.version = next_entry_version(versions)
                elif entry.version in versions:
                    raise ConfigError(conflict_message(entry))
                conn.execute(
                    f'INSERT INTO "{s}".entries VALUES (%s,%s,%s,%s)',
                    (entry.name, entry.version, entry.entry_id, entry.dumps()),
                )
                if self.legacy_schema:
                    _legacy.mirror_entry(conn, self.legacy_schema, entry)
                return entry

        return self._run(go)

    def get_entry(self, name: str, version: str | None = None) -> DatasetEntry | None:
        s = self.schema
        args: tuple[str, ...]
        if version is not None:
            sql, args = (
                f'SELECT version, record FROM "{s}".entries WHERE name=%s AND version=%s',
                (name, version),
            )
        else:
            sql, args = f'SELECT version, record FROM "{s}".entries WHERE name=%s', (name,)
        rows = self._run(lambda c: c.execute(sql, args).fetchall())
        if not rows:
            ls = self.legacy_schema
            if not ls or version is not None:
                return None
            found: DatasetEntry | None = self._run(lambda c: _legacy.find_entry(c, ls, name))
            return found
        return DatasetEntry.from_json(max(rows, key=lambda r: sort_key(name, r[0]))[1])

    def get_entry_by_id(self, entry_id: str) -> DatasetEntry | None:
        s = self.schema
        row = self._run(
            lambda c: c.execute(
                f'SELECT record FROM "{s}".entries WHERE entry_id=%s', (entry_id,)
            ).fetchone()
        )
        return DatasetEntry.from_json(row[0]) if row else None

    def list_entries(self) -> list[DatasetEntry]:
        s = self.schema
        rows = self._run(lambda c: c.execute(f'SELECT record FROM "{s}".entries').fetchall())
        recs = [DatasetEntry.from_json(r[0]) for r in rows]
        ls = self.legacy_schema
        if ls:
            ours = {e.cid for e in recs}
            recs += [
                e for e in self._run(lambda c: _legacy.read_entries(c, ls)) if e.cid not in ours
            ]
        return sorted(recs, key=lambda e: sort_key(e.name, e.version or ""))

    def put_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        s = self.schema
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        ls = self.legacy_schema

        def go(conn: Any) -> None:
            with conn.transaction():
                conn.execute(
                    f'INSERT INTO "{s}".records (kind, key, record) VALUES (%s, %s, %s) '
                    "ON CONFLICT (kind, key) DO UPDATE SET record = EXCLUDED.record",
                    (kind, key, text),
                )
                if ls and kind == "label":
                    _legacy.mirror_label(conn, ls, record)

        self._run(go)

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        s = self.schema
        row = self._run(
            lambda conn: conn.execute(
                f'SELECT record FROM "{s}".records WHERE kind = %s AND key = %s', (kind, key)
            ).fetchone()
        )
        return json.loads(row[0]) if row else None

    def list_records(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        s = self.schema
        rows = self._run(
            lambda conn: conn.execute(
                f'SELECT key, record FROM "{s}".records WHERE kind = %s ORDER BY key', (kind,)
            ).fetchall()
        )
        out = {k: json.loads(r) for k, r in rows}
        ls = self.legacy_schema
        if ls and kind == "label":
            for key, rec in self._run(lambda c: _legacy.read_labels(c, ls)):
                out.setdefault(key, rec)
        return sorted(out.items())

    def ping(self) -> None:
        self._run(lambda c: c.execute("SELECT 1").fetchone())

    def drop(self) -> None:
        """Drop this provider's PostgreSQL schema and everything in it (tests, cleanup)."""
        self._run(lambda c: c.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))

    def close(self) -> None:
        if self._conn_obj is not None:
            self._conn_obj.close()
            self._conn_obj = None

    def __reduce__(self) -> Any:
        refuse_pickle("PostgreSQL", self.dsn)
        return (_rebuild, (self.dsn, self.schema, self.connect_timeout, self.legacy_schema))


def _rebuild(
    dsn: str, schema: str, connect_timeout: float, legacy_schema: str | None = None
) -> PostgresProvider:
    return PostgresProvider(
        dsn, schema=schema, connect_timeout=connect_timeout, legacy_schema=legacy_schema
    )
