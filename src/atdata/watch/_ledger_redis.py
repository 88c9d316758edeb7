"""Watch ledger on Redis: one hash ``<prefix>watch:<name>`` (shard -> record JSON).

Every change runs as a Lua script that compares the stored revision with the expected one and
writes only on a match, so it is atomic; listing the whole watch is one ``HGETALL``.
"""

from __future__ import annotations

from typing import Any

from atdata.watch._ledger import LedgerBase, LedgerRecord

__all__ = ["RedisLedger"]

# KEYS: the watch hash ; ARGV: shard, expected rev, new record JSON -> 1 stored, 0 not
_CAS = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local rev = 0
if cur then rev = tonumber(cjson.decode(cur)['rev']) end
if rev ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class RedisLedger(LedgerBase):
    """Ledger records in a Redis hash through a :class:`~atdata.providers.RedisProvider`'s client.

    Args:
        provider: The Redis provider (its key prefix is used).
        watch: The watch's name.
    """

    def __init__(self, provider: Any, watch: str) -> None:
        self.provider = provider
        self.watch = watch
        self.key = f"{provider.prefix}watch:{watch}"
        self._cas = provider._client.register_script(_CAS)

    def get(self, shard: str) -> LedgerRecord | None:
        raw = self.provider._call(self.provider._client.hget, self.key, shard)
        return LedgerRecord.loads(raw) if raw else None

    def list_records(self) -> list[LedgerRecord]:
        raw = self.provider._call(self.provider._client.hvals, self.key)
        return sorted((LedgerRecord.loads(v) for v in raw), key=lambda r: r.shard)

    def put(self, record: LedgerRecord, *, expect_rev: int) -> bool:
        got = self.provider._call(
            self._cas, keys=[self.key], args=[record.shard, expect_rev, record.dumps()]
        )
        return int(got) == 1

    def delete(self, shard: str) -> bool:
        return int(self.provider._call(self.provider._client.hdel, self.key, shard)) == 1

    def drop(self) -> None:
        """Delete the whole watch (tests, cleanup)."""
        self.provider._call(self.provider._client.delete, self.key)
