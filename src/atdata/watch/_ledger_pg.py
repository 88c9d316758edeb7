"""Watch ledger on PostgreSQL: the table ``watch_ledger`` in the provider's schema.

A new record goes in with ``INSERT ... ON CONFLICT DO NOTHING``, a change with ``UPDATE ... WHERE
rev = <expected> RETURNING rev``: each is one statement, atomic under any number of watchers.
Each change also stamps the row with the watch's next generation (``MAX(gen) + 1``) under a
transaction-scoped advisory lock of the watch, so generations are committed in order and a
poll reads only the rows above the generation it saw last (see ``LedgerBase.snapshot``).
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
                # a table made before generations existed gets the column (rows at 0)
                conn.execute(
                    f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS gen BIGINT NOT NULL DEFAULT 0"
                )
                conn.execute(f"CREATE INDEX IF NOT EXISTS watch_ledger_gen ON {t} (watch, gen)")

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

    def _top_count(self) -> tuple[int, int]:
        top, count = self.provider._run(
            lambda c: c.execute(
                f"SELECT COALESCE(MAX(gen), 0), COUNT(*) FROM {self._table} WHERE watch=%s",
                (self.watch,),
            ).fetchone()
        )
        return int(top), int(count)

    def _since(self, gen: int) -> list[tuple[Any, int]]:
        rows = self.provider._run(
            lambda c: c.execute(
                f"SELECT record, gen FROM {self._table} WHERE watch=%s AND gen > %s",
                (self.watch, gen),
            ).fetchall()
        )
        return [(text, int(g)) for text, g in rows]

    def _shard_set(self) -> set[str]:
        rows = self.provider._run(
            lambda c: c.execute(
                f"SELECT shard FROM {self._table} WHERE watch=%s", (self.watch,)
            ).fetchall()
        )
        return {r[0] for r in rows}

    def put(self, record: LedgerRecord, *, expect_rev: int) -> bool:
        t = self._table
        if expect_rev == 0:
            sql = (
                f"INSERT INTO {t} (watch, shard, rev, status, record, gen) "
                "VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (watch, shard) DO NOTHING RETURNING rev"
            )
        else:
            sql = (
                f"UPDATE {t} SET rev=%s, status=%s, record=%s, gen=%s "
                "WHERE watch=%s AND shard=%s AND rev=%s RETURNING rev"
            )

        def go(conn: Any) -> Any:
            with conn.transaction():
                # held to the commit: the next writer of this watch reads MAX(gen) after it
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('atdata-watch'), hashtext(%s))",
                    (self.watch,),
                )
                (gen,) = conn.execute(
                    f"SELECT COALESCE(MAX(gen), 0) + 1 FROM {t} WHERE watch=%s", (self.watch,)
                ).fetchone()
                if expect_rev == 0:
                    args: tuple[Any, ...] = (
                        self.watch, record.shard, record.rev, record.status, record.dumps(), gen,
                    )  # fmt: skip
                else:
                    args = (
                        record.rev, record.status, record.dumps(), gen, self.watch, record.shard,
                        expect_rev,
                    )  # fmt: skip
                return conn.execute(sql, args).fetchone()

        return self.provider._run(go) is not None

    def delete(self, shard: str) -> bool:
        row = self.provider._run(
            lambda c: c.execute(
                f"DELETE FROM {self._table} WHERE watch=%s AND shard=%s RETURNING rev",
                (self.watch, shard),
            ).fetchone()
        )
        return row is not None
