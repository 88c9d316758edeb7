"""The watcher's ledger: one record per watched shard, kept on an index provider.

A record holds the shard's status, the listing stamp of the bytes it describes, the sha256 of
the bytes that were processed, the attempts made, the lease (owner + expiry) of the watcher
working on it, the last error and the output written. Every change is a compare-and-set on the
record's revision ``rev``: a backend writes the new record only when the stored one still has
``rev - 1`` (or, for ``rev == 1``, when there is none), in one atomic step (SQLite ``BEGIN
IMMEDIATE`` + conditional ``UPDATE``/``INSERT OR IGNORE``, PostgreSQL conditional ``UPDATE`` /
``INSERT ... ON CONFLICT DO NOTHING``, Redis a Lua script). So of two watchers deciding from the
same record, exactly one wins; the other sees the newer record on its next poll.

Examples:
    >>> import os, tempfile
    >>> from atdata.providers._sqlite import SQLiteProvider
    >>> led = ledger_for(SQLiteProvider(os.path.join(tempfile.mkdtemp(), "i.db")), "demo")
    >>> rec = LedgerRecord("a.tar", "waiting", stamp="10:1", since=5.0, rev=1)
    >>> led.put(rec, expect_rev=0), led.put(rec, expect_rev=0)
    (True, False)
    >>> led.get("a.tar").status, [r.shard for r in led.list_records()]
    ('waiting', ['a.tar'])
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from atdata._errors import ConfigError, StorageError

__all__ = [
    "STATUSES",
    "Ledger",
    "LedgerRecord",
    "SQLiteLedger",
    "ledger_for",
    "provider_from_spec",
]

#: ``waiting`` (seen, not yet complete), ``running`` (leased), ``done``, ``failed`` (retried),
#: ``parked`` (failed ``max_attempts`` times), ``changed`` (rewritten after being done, waiting
#: to settle), ``refused`` (rewritten and ``on_change="refuse"``)
STATUSES = ("waiting", "running", "done", "failed", "parked", "changed", "refused")


@dataclasses.dataclass(frozen=True)
class LedgerRecord:
    """What the ledger knows about one shard.

    Attributes:
        shard: The shard's path or URL (the record's key within a watch).
        status: One of :data:`STATUSES`.
        stamp: The listing stamp (size + mtime or ETag) of the bytes this record describes.
        since: Clock time when ``stamp`` was first seen (for the "size is stable" rule).
        checksum: sha256 of the input bytes that were processed (``""`` before any success).
        attempts: Attempts at processing the current bytes.
        owner: The watcher holding the lease (``""`` when none).
        lease_until: Clock time the lease expires.
        error: The last failure (kind and message), or why the shard was refused.
        output: The output shard written for it (``""`` when none).
        samples: Samples in the output shard.
        rev: The record's revision; each change writes ``rev + 1``.
        updated: Clock time of the last change.
    """

    shard: str
    status: str
    stamp: str = ""
    since: float = 0.0
    checksum: str = ""
    attempts: int = 0
    owner: str = ""
    lease_until: float = 0.0
    error: str = ""
    output: str = ""
    samples: int = 0
    rev: int = 0
    updated: float = 0.0

    def dumps(self) -> str:
        """The record as compact JSON."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def loads(cls, text: str | bytes) -> LedgerRecord:
        """A record from :meth:`dumps` (unknown keys are ignored)."""
        raw = json.loads(text)
        return cls(**{k: raw[k] for k in _FIELDS if k in raw})

    def next(self, **changes: Any) -> LedgerRecord:
        """This record with ``changes`` and the revision after this one."""
        return dataclasses.replace(self, rev=self.rev + 1, **changes)


_FIELDS = tuple(f.name for f in dataclasses.fields(LedgerRecord))


@runtime_checkable
class Ledger(Protocol):
    """A watch's records on one backend (see the module docstring for the atomicity rule)."""

    watch: str

    def get(self, shard: str) -> LedgerRecord | None:
        """The record of ``shard``, or ``None``."""
        ...

    def list_records(self) -> list[LedgerRecord]:
        """Every record of this watch, sorted by shard, in one round trip."""
        ...

    def snapshot(self) -> dict[str, LedgerRecord]:
        """``shard -> record`` for every record (may reuse records read before, by revision)."""
        ...

    def put(self, record: LedgerRecord, *, expect_rev: int) -> bool:
        """Store ``record`` if the stored one has revision ``expect_rev`` (``0``: none stored).

        Returns:
            Whether it was stored (``False``: another watcher changed the record first).
        """
        ...

    def delete(self, shard: str) -> bool:
        """Forget ``shard`` (it is then treated as new); whether there was a record."""
        ...


class LedgerBase:
    """Shared helpers: the lazy ``records`` view and the generation-based :meth:`snapshot`.

    Each change stamps its row with the watch's next *generation*, assigned so that generations
    are committed in order (the writer holds the watch's lock from reading ``MAX(gen)`` to its
    commit). A backend implements ``list_records`` and three reads: ``_top_count`` (the highest
    generation and the number of records), ``_since(gen)`` (``(record JSON, gen)`` of the rows
    above ``gen``) and ``_shard_set`` (every shard, after deletes).
    """

    def __init__(self) -> None:
        self._cache: dict[str, LedgerRecord] = {}
        self._seen = (-1, -1)  # (max gen, row count) of the last snapshot

    def list_records(self) -> list[LedgerRecord]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _top_count(self) -> tuple[int, int]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _since(self, gen: int) -> list[tuple[Any, int]]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _shard_set(self) -> set[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def records(self) -> Iterator[LedgerRecord]:
        """Every record of this watch (lazy view of :meth:`list_records`)."""
        return iter(self.list_records())

    def snapshot(self) -> dict[str, LedgerRecord]:
        """``shard -> record`` for every record: only the rows changed since the last snapshot
        are read (a poll over 10,000 settled shards reads two numbers)."""
        top, count = self._top_count()
        if (top, count) == self._seen:
            return dict(self._cache)
        for text, gen in self._since(self._seen[0]):
            r = LedgerRecord.loads(text)
            self._cache[r.shard] = r
            top = max(top, int(gen))
        if len(self._cache) > count:  # records were forgotten: read the set of shards again
            keep = self._shard_set()
            for shard in [s for s in self._cache if s not in keep]:
                del self._cache[shard]
        self._seen = (top, len(self._cache))
        return dict(self._cache)


_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS atdata_watch_ledger (
    watch TEXT NOT NULL, shard TEXT NOT NULL, rev INTEGER NOT NULL, status TEXT NOT NULL,
    record TEXT NOT NULL, gen INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (watch, shard));
"""
_SQLITE_GEN_INDEX = (
    "CREATE INDEX IF NOT EXISTS atdata_watch_ledger_gen ON atdata_watch_ledger (watch, gen)"
)
_T = "atdata_watch_ledger"


class SQLiteLedger(LedgerBase):
    """Ledger records in the table ``atdata_watch_ledger`` of a SQLite index file.

    Each change also stamps the row with the watch's next *generation* (``MAX(gen) + 1``,
    computed inside the same ``BEGIN IMMEDIATE`` transaction, so generations are committed in
    order): a poll reads only the rows above the generation it saw last, and a poll over a
    settled watch reads two numbers.

    Args:
        provider: The :class:`~atdata.providers.SQLiteProvider` whose connection is used.
        watch: The watch's name (records of other watches are not seen).
    """

    def __init__(self, provider: Any, watch: str) -> None:
        super().__init__()
        self.provider = provider
        self.watch = watch
        self._ready_conns: set[int] = set()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = self.provider._conn()
        if id(conn) not in self._ready_conns:
            try:
                conn.executescript(_SQLITE_DDL)
                cols = [r[1] for r in conn.execute(f"PRAGMA table_info({_T})")]
                if "gen" not in cols:  # a table made before generations existed
                    conn.execute(f"ALTER TABLE {_T} ADD COLUMN gen INTEGER NOT NULL DEFAULT 0")
                conn.execute(_SQLITE_GEN_INDEX)
            except sqlite3.Error as exc:
                raise StorageError(
                    f"cannot create the watch ledger in {self.provider.url}: {exc}"
                ) from None
            self._ready_conns.add(id(conn))
        return conn

    def _err(self, exc: sqlite3.Error) -> StorageError:
        return StorageError(f"watch ledger {self.watch!r} in {self.provider.url} failed: {exc}")

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._err(exc) from None

    def get(self, shard: str) -> LedgerRecord | None:
        rows = self._rows(f"SELECT record FROM {_T} WHERE watch=? AND shard=?", (self.watch, shard))
        return LedgerRecord.loads(rows[0][0]) if rows else None

    def list_records(self) -> list[LedgerRecord]:
        rows = self._rows(f"SELECT record FROM {_T} WHERE watch=? ORDER BY shard", (self.watch,))
        return [LedgerRecord.loads(r[0]) for r in rows]

    def _top_count(self) -> tuple[int, int]:
        ((top, count),) = self._rows(
            f"SELECT COALESCE(MAX(gen), 0), COUNT(*) FROM {_T} WHERE watch=?", (self.watch,)
        )
        return int(top), int(count)

    def _since(self, gen: int) -> list[tuple[Any, int]]:
        return [
            (text, g)
            for text, g in self._rows(
                f"SELECT record, gen FROM {_T} WHERE watch=? AND gen > ?", (self.watch, gen)
            )
        ]

    def _shard_set(self) -> set[str]:
        return {r[0] for r in self._rows(f"SELECT shard FROM {_T} WHERE watch=?", (self.watch,))}

    def put(self, record: LedgerRecord, *, expect_rev: int) -> bool:
        conn = self._conn()
        args = (record.rev, record.status, record.dumps())
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                ((gen,),) = conn.execute(
                    f"SELECT COALESCE(MAX(gen), 0) + 1 FROM {_T} WHERE watch=?", (self.watch,)
                ).fetchall()
                if expect_rev == 0:
                    cur = conn.execute(
                        f"INSERT OR IGNORE INTO {_T} (rev, status, record, gen, watch, shard) "
                        "VALUES (?,?,?,?,?,?)",
                        (*args, gen, self.watch, record.shard),
                    )
                else:
                    cur = conn.execute(
                        f"UPDATE {_T} SET rev=?, status=?, record=?, gen=? "
                        "WHERE watch=? AND shard=? AND rev=?",
                        (*args, gen, self.watch, record.shard, expect_rev),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._err(exc) from None
        return cur.rowcount == 1

    def delete(self, shard: str) -> bool:
        try:
            cur = self._conn().execute(
                f"DELETE FROM {_T} WHERE watch=? AND shard=?", (self.watch, shard)
            )
        except sqlite3.Error as exc:
            raise self._err(exc) from None
        return cur.rowcount == 1


def provider_from_spec(spec: str | None, prefix: str | None = None) -> Any:
    """The index provider a ledger string names: ``None`` (the default index's), a SQLite file,
    a ``postgresql://`` DSN or a ``redis://`` URL (``prefix``: Redis key prefix / PostgreSQL
    schema).

    Examples:
        >>> provider_from_spec("redis://127.0.0.1:6379/15", "w:").kind
        'redis'
    """
    from atdata.providers._factory import create_provider

    if spec is None:
        from atdata.index._index import get_default_index

        return get_default_index().provider
    if spec.startswith(("postgresql://", "postgres://")):
        return create_provider("postgres", dsn=spec, prefix=prefix)
    if spec.startswith(("redis://", "rediss://")):
        return create_provider("redis", redis=spec, prefix=prefix)
    return create_provider("sqlite", path=spec)


def ledger_for(provider: Any, watch: str) -> Ledger:
    """The ledger of watch ``watch`` on ``provider``: an index provider, an ``Index``, or a
    string naming one (a SQLite file, a ``postgresql://`` DSN, a ``redis://`` URL).

    Raises:
        ConfigError: For a provider kind other than ``sqlite``, ``postgres`` or ``redis``.
    """
    if isinstance(provider, Ledger):
        return provider
    if isinstance(provider, (str, os.PathLike)):
        provider = provider_from_spec(os.fspath(provider))
    provider = getattr(provider, "provider", provider)  # an Index -> its provider
    if not watch:
        raise ConfigError("a watch ledger needs a non-empty watch name")
    kind = getattr(provider, "kind", None)
    if kind == "sqlite":
        return SQLiteLedger(provider, watch)
    if kind == "postgres":
        from atdata.watch._ledger_pg import PostgresLedger

        return PostgresLedger(provider, watch)
    if kind == "redis":
        from atdata.watch._ledger_redis import RedisLedger

        return RedisLedger(provider, watch)
    raise ConfigError(
        f"cannot keep a watch ledger on {provider!r}: use a SQLite, PostgreSQL or Redis index "
        "provider (atdata.providers.create_provider)"
    )
