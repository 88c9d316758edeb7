"""Watch ledger on Redis, under the provider's key prefix:

* ``<prefix>watch:<name>``: hash, shard -> record JSON;
* ``<prefix>watch:<name>:gen``: a counter bumped by every change;
* ``<prefix>watch:<name>:log``: sorted set, shard -> the counter value of its last change.

Every change runs as a Lua script that compares the stored revision with the expected one and
writes only on a match, so it is atomic. A poll asks for the shards changed since the counter
value it last saw (``ZRANGEBYSCORE``), so a watch of 10,000 settled shards costs a ``GET``.
"""

from __future__ import annotations

from typing import Any

from atdata.watch._ledger import LedgerBase, LedgerRecord

__all__ = ["RedisLedger"]

# KEYS: records hash, change log zset, counter ; ARGV: shard, expected rev, new record JSON
_CAS = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local rev = 0
if cur then rev = tonumber(cjson.decode(cur)['rev']) end
if rev ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
return 1
"""

# KEYS: as above ; ARGV: shard -> 1 when there was a record
_DEL = """
local n = redis.call('HDEL', KEYS[1], ARGV[1])
if n == 1 then redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1]) end
return n
"""


class RedisLedger(LedgerBase):
    """Ledger records in Redis through a :class:`~atdata.providers.RedisProvider`'s client.

    Args:
        provider: The Redis provider (its key prefix is used).
        watch: The watch's name.
    """

    def __init__(self, provider: Any, watch: str) -> None:
        super().__init__()
        self.provider = provider
        self.watch = watch
        self.key = f"{provider.prefix}watch:{watch}"
        self._keys = [self.key, f"{self.key}:log", f"{self.key}:gen"]
        self._seen_gen = 0
        self._cas = provider._client.register_script(_CAS)
        self._del = provider._client.register_script(_DEL)

    def _c(self, method: str, *args: Any) -> Any:
        return self.provider._call(getattr(self.provider._client, method), *args)

    def get(self, shard: str) -> LedgerRecord | None:
        raw = self._c("hget", self.key, shard)
        return LedgerRecord.loads(raw) if raw else None

    def list_records(self) -> list[LedgerRecord]:
        raw = self._c("hvals", self.key)
        return sorted((LedgerRecord.loads(v) for v in raw), key=lambda r: r.shard)

    def snapshot(self) -> dict[str, LedgerRecord]:
        gen = int(self._c("get", self._keys[2]) or 0)
        if gen != self._seen_gen:
            changed = self._c("zrangebyscore", self._keys[1], f"({self._seen_gen}", "+inf",
                              None, None, True)  # fmt: skip
            shards = [s.decode() if isinstance(s, bytes) else s for s, _ in changed]
            for i in range(0, len(shards), 1000):
                part = shards[i : i + 1000]
                for s, v in zip(part, self._c("hmget", self.key, part), strict=True):
                    if v:
                        self._cache[s] = LedgerRecord.loads(v)
                    else:
                        self._cache.pop(s, None)
            self._seen_gen = max([int(g) for _, g in changed], default=gen)
        return dict(self._cache)

    def put(self, record: LedgerRecord, *, expect_rev: int) -> bool:
        got = self.provider._call(
            self._cas, keys=self._keys, args=[record.shard, expect_rev, record.dumps()]
        )
        return int(got) == 1

    def delete(self, shard: str) -> bool:
        return int(self.provider._call(self._del, keys=self._keys, args=[shard])) == 1

    def drop(self) -> None:
        """Delete the whole watch (tests, cleanup)."""
        self._c("delete", *self._keys)
