"""Watch ledger on PostgreSQL: the table ``watch_ledger`` in the provider's schema.

A new record goes in with ``INSERT ... ON CONFLICT DO NOTHING``, a change with ``UPDATE ... WHERE
rev = <expected> RETURNING rev``: each is one statement, atomic under any number of watchers.
"""

from __future__ import annotations

from typing import Any

from atdata.watch._ledger import LedgerBase, LedgerRecord

__all__ = ["PostgresLedger"]


class PostgresLedger(LedgerBase):
    """Ledger records in ``"<schema>".watch_ledger`` through a
    :class:`~atdata.providers.PostgresProvider`'s connection.

    Args:
        provider: The PostgreSQL provider (its schema holds the table).
        watch: The watch's name.
    """

    def __init__(self, provider: Any, watch: str) -> None:
        super().__init__()
        self.provider = provider
        self.watch = watch
        self._table = f'"{provider.schema}".watch_ledger'
        t = self._table

        def ddl(conn: Any) -> None:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('atdata-ddl'))")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {t} (watch TEXT NOT NULL, shard TEXT NOT NULL, "
                    "rev BIGINT NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL, "
                    "PRIMARY KEY (watch, shard))"
                )

        provider._run(ddl)

    def get(self, shard: str) -> LedgerRecord | None:
        row = self.provider._run(
            lambda c: c.execute(
                f"SELECT record FROM {self._table} WHERE watch=%s AND shard=%s",
                (self.watch, shard),
            ).fetchone()
        )
        return LedgerRecord.loads(row[0]) if row else None

    def list_records(self) -> list[LedgerRecord]:
        rows = self.provider._run(
            lambda c: c.execute(
                f"SELECT record FROM {self._table} WHERE watch=%s ORDER BY shard", (self.watch,)
            ).fetchall()
        )
        return [LedgerRecord.loads(r[0]) for r in rows]

    def revisions(self) -> list[tuple[str, int]]:
        rows = self.provider._run(
            lambda c: c.execute(
                f"SELECT shard, rev FROM {self._table} WHERE watch=%s", (self.watch,)
            ).fetchall()
        )
        return [(s, int(r)) for s, r in rows]

    def fetch(self, shards: list[str]) -> list[LedgerRecord]:
        rows = self.provider._run(
            lambda c: c.execute(
                f"SELECT record FROM {self._table} WHERE watch=%s AND shard = ANY(%s)",
                (self.watch, shards),
            ).fetchall()
        )
        return [LedgerRecord.loads(r[0]) for r in rows]

    def put(self, record: LedgerRecord, *, expect_rev: int) -> bool:
        t = self._table
        if expect_rev == 0:
            sql = (
                f"INSERT INTO {t} (watch, shard, rev, status, record) VALUES (%s,%s,%s,%s,%s) "
                "ON CONFLICT (watch, shard) DO NOTHING RETURNING rev"
            )
            args: tuple[Any, ...] = (
                self.watch, record.shard, record.rev, record.status, record.dumps(),
            )  # fmt: skip
        else:
            sql = (
                f"UPDATE {t} SET rev=%s, status=%s, record=%s "
                "WHERE watch=%s AND shard=%s AND rev=%s RETURNING rev"
            )
            args = (record.rev, record.status, record.dumps(), self.watch, record.shard, expect_rev)
        row = self.provider._run(lambda c: c.execute(sql, args).fetchone())
        return row is not None

    def delete(self, shard: str) -> bool:
        row = self.provider._run(
            lambda c: c.execute(
                f"DELETE FROM {self._table} WHERE watch=%s AND shard=%s RETURNING rev",
                (self.watch, shard),
            ).fetchone()
        )
        return row is not None
