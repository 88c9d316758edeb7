"""Redis index provider (``redis`` package, extra ``redis``).

Layout under a key prefix (``atdata:`` by default, one per test run in the tests): hashes
``<p>entries`` (``name@version`` -> entry JSON), ``<p>entry_ids`` (id -> ``name@version``),
``<p>latest`` (name -> highest version), and the same three for schemas; ``<p>latest_order``
marks pointers that follow semver precedence (a database without it has them recomputed once). Commits and version
assignment run as Lua scripts, so they are atomic; listing is one ``HVALS``.

With ``legacy_keys`` (the default for the default prefix, ``atdata:``) the provider also reads
the index upstream atdata keeps unprefixed in the same database, and mirrors its own commits
into it (see :mod:`atdata.providers._redis_legacy`), so both libraries share one index.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from atdata._errors import ConfigError, SchemaError, StorageError, as_both
from atdata._extras import require
from atdata.index._entry import DatasetEntry, SchemaRecord, parse_version, utcnow
from atdata.providers import _redis_legacy as _legacy
from atdata.providers._base import (
    IndexProvider,
    conflict_message,
    mask_url,
    refuse_pickle,
    schema_conflict_message,
    sort_key,
)

__all__ = ["RedisProvider"]

log = logging.getLogger("atdata")

_TOKEN = "@@ATDATA_VERSION@@"

# Lua: whether version text A outranks B (semver precedence, then the text; as version_key)
_NEWER = """
local function bytes_cmp(x, y)
  for i = 1, math.min(#x, #y) do
    local a, b = string.byte(x, i), string.byte(y, i)
    if a ~= b then return a < b and -1 or 1 end
  end
  if #x == #y then return 0 end
  return #x < #y and -1 or 1
end
local function num_cmp(x, y)
  x, y = string.gsub(x, '^0+', ''), string.gsub(y, '^0+', '')
  if #x ~= #y then return #x < #y and -1 or 1 end
  return bytes_cmp(x, y)
end
local function split(v)
  local a, b, c, rest = string.match(v, '^(%d+)%.(%d+)%.(%d+)(.*)$')
  local ids = {}
  local pre = string.match(rest, '^%-([^+]*)')
  if pre then for x in string.gmatch(pre, '[^.]+') do ids[#ids + 1] = x end end
  return {a, b, c}, pre ~= nil, ids
end
local function newer(va, vb)
  local ca, pa, ia = split(va)
  local cb, pb, ib = split(vb)
  for i = 1, 3 do
    local r = num_cmp(ca[i], cb[i])
    if r ~= 0 then return r > 0 end
  end
  if pa ~= pb then return pb end
  for i = 1, math.max(#ia, #ib) do
    local x, y = ia[i], ib[i]
    if x == nil or y == nil then return y == nil end
    local xn, yn = string.match(x, '^%d+$') ~= nil, string.match(y, '^%d+$') ~= nil
    local r
    if xn and yn then r = num_cmp(x, y)
    elseif xn ~= yn then r = xn and -1 or 1
    else r = bytes_cmp(x, y) end
    if r ~= 0 then return r > 0 end
  end
  return bytes_cmp(va, vb) > 0
end
"""

# (run after _NEWER) KEYS: entries, entry_ids, latest ; ARGV: name, entry_id, version or "",
# json with _TOKEN
_ADD_ENTRY = """
local existing = redis.call('HGET', KEYS[2], ARGV[2])
if existing then return {0, redis.call('HGET', KEYS[1], existing)} end
local name, version = ARGV[1], ARGV[3]
local latest = redis.call('HGET', KEYS[3], name)
if version == '' then
  if latest then
    local a, b = string.match(latest, '^(%d+)%.(%d+)%.')
    version = a .. '.' .. (tonumber(b) + 1) .. '.0'
  else
    version = '1.0.0'
  end
else
  if redis.call('HEXISTS', KEYS[1], name .. '@' .. version) == 1 then return {-1, version} end
end
local rec = string.gsub(ARGV[4], '@@ATDATA_VERSION@@', version)
redis.call('HSET', KEYS[1], name .. '@' .. version, rec)
redis.call('HSET', KEYS[2], ARGV[2], name .. '@' .. version)
if not latest or newer(version, latest) then redis.call('HSET', KEYS[3], name, version) end
return {1, rec}
"""

# (run after _NEWER) KEYS: schemas, schema_latest ; ARGV: name, version, json
_PUT_SCHEMA = """
local key = ARGV[1] .. '@' .. ARGV[2]
local existing = redis.call('HGET', KEYS[1], key)
if existing then return existing end
redis.call('HSET', KEYS[1], key, ARGV[3])
local latest = redis.call('HGET', KEYS[2], ARGV[1])
if not latest or newer(ARGV[2], latest) then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return ARGV[3]
"""

# (run after _NEWER) KEYS: entries, latest, schemas, schema_latest, marker: recompute every
# name's latest version from the stored records, once per database (an index written before
# the pointers followed semver precedence can point at a pre-release below its release)
_REPAIR_LATEST = """
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
local function fix(records, latest)
  local best = {}
  for _, key in ipairs(redis.call('HKEYS', records)) do
    local name, v = string.match(key, '^(.*)@([^@]*)$')
    if name and string.match(v, '^%d+%.%d+%.%d+') then
      if best[name] == nil or newer(v, best[name]) then best[name] = v end
    end
  end
  for name, v in pairs(best) do redis.call('HSET', latest, name, v) end
end
fix(KEYS[1], KEYS[2])
fix(KEYS[3], KEYS[4])
redis.call('SET', KEYS[5], '2')
return 1
"""

# KEYS: records, latest ; ARGV: name -> the record of the highest version
_GET_LATEST = """
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return false end
return redis.call('HGET', KEYS[1], ARGV[1] .. '@' .. v)
"""


class RedisProvider(IndexProvider):
    """Index records in Redis.

    Args:
        redis: A ``redis.Redis`` client, or a URL such as ``"redis://127.0.0.1:6379/0"``.
        prefix: Key prefix (every key this provider touches starts with it).
        connect_timeout: Seconds before an unreachable server raises :class:`StorageError`.
        legacy_keys: Also read upstream atdata's unprefixed index in this database, and mirror
            commits into it (``None``: only with the default prefix ``atdata:``).
    """

    kind = "redis"

    def __init__(
        self,
        redis: Any = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "atdata:",
        connect_timeout: float = 3.0,
        timeout: float = 30.0,
        legacy_keys: bool | None = None,
    ) -> None:
        mod = require("redis", "redis", "the Redis index provider")
        if isinstance(redis, str):
            self._url = redis
            self._client = mod.Redis.from_url(
                redis, socket_connect_timeout=connect_timeout, socket_timeout=timeout
            )
        else:
            self._client = redis
            kw = redis.connection_pool.connection_kwargs
            self._url = f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"
        # a client built with a password (not in the URL we keep) must not be pickled either
        self._has_auth = bool(self._client.connection_pool.connection_kwargs.get("password"))
        self.prefix = prefix
        self.legacy_keys = prefix == "atdata:" if legacy_keys is None else legacy_keys
        self.connect_timeout, self.timeout = connect_timeout, timeout
        p = prefix
        self._k = {
            "entries": f"{p}entries",
            "ids": f"{p}entry_ids",
            "latest": f"{p}latest",
            "schemas": f"{p}schemas",
            "schema_latest": f"{p}schema_latest",
            # set once the latest pointers follow semver precedence (see _REPAIR_LATEST)
            "layout": f"{p}latest_order",
        }
        self._pointers_checked = False
        self._add = self._client.register_script(_NEWER + _ADD_ENTRY)
        self._put_schema = self._client.register_script(_NEWER + _PUT_SCHEMA)
        self._latest = self._client.register_script(_GET_LATEST)
        self._repair = self._client.register_script(_NEWER + _REPAIR_LATEST)

    @property
    def url(self) -> str:
        return f"{mask_url(self._url)} (prefix {self.prefix!r})"

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        mod = require("redis", "redis")
        try:
            return fn(*args, **kw)
        except mod.exceptions.RedisError as exc:
            raise as_both(
                StorageError,
                exc,
                f"Redis index at {mask_url(self._url)} failed: {mask_url(str(exc))}; "
                "check that the server is running and reachable",
            ) from None

    def _check_pointers(self) -> None:
        """Before the first use of the latest pointers: recompute them when this database's
        were written before they followed semver precedence (once per database, one
        ``EXISTS`` per provider after that)."""
        if self._pointers_checked:
            return
        k = self._k
        keys = [k["entries"], k["latest"], k["schemas"], k["schema_latest"], k["layout"]]
        if self._call(self._repair, keys=keys):
            log.info("Redis index %s: recomputed the latest version of every name", self.url)
        self._pointers_checked = True

    # -- schemas --------------------------------------------------------------------------------
    def put_schema(self, record: SchemaRecord) -> SchemaRecord:
        parse_version(record.version)
        record.created_at = record.created_at or utcnow()
        self._check_pointers()
        k = self._k
        raw = self._call(
            self._put_schema,
            keys=[k["schemas"], k["schema_latest"]],
            args=[record.name, record.version, record.dumps()],
        )
        stored = SchemaRecord.from_json(raw)
        if stored.fingerprint != record.fingerprint:
            raise SchemaError(schema_conflict_message(record))
        if self.legacy_keys:
            _legacy.mirror_schema(self, stored)
        return stored

    def get_schema(self, name: str, version: str | None = None) -> SchemaRecord | None:
        k = self._k
        if version is None:
            self._check_pointers()
            raw = self._call(self._latest, keys=[k["schemas"], k["schema_latest"]], args=[name])
        else:
            raw = self._call(self._client.hget, k["schemas"], f"{name}@{version}")
        if raw:
            return SchemaRecord.from_json(raw)
        return _legacy.find_schema(self, name, version) if self.legacy_keys else None

    def list_schemas(self) -> list[SchemaRecord]:
        vals = self._call(self._client.hvals, self._k["schemas"])
        out = {(r.name, r.version): r for r in map(SchemaRecord.from_json, vals)}
        if self.legacy_keys:
            for r in _legacy.read_schemas(self):
                out.setdefault((r.name, r.version), r)
        return sorted(out.values(), key=lambda r: sort_key(r.name, r.version))

    # -- entries --------------------------------------------------------------------------------
    def add_entry(self, entry: DatasetEntry) -> DatasetEntry:
        entry.entry_id = entry.entry_id or uuid.uuid4().hex
        entry.created_at = entry.created_at or utcnow()
        explicit = entry.version
        if explicit is not None:
            parse_version(explicit)
        entry.version = _TOKEN
        try:
            text = entry.dumps()
        finally:
            entry.version = explicit
        if text.count(_TOKEN) != 1:
            raise ConfigError(f"entry metadata of {entry.name!r} must not contain {_TOKEN!r}")
        self._check_pointers()
        k = self._k
        status, payload = self._call(
            self._add,
            keys=[k["entries"], k["ids"], k["latest"]],
            args=[entry.name, entry.entry_id, explicit or "", text],
        )
        if status == -1:
            raise ConfigError(conflict_message(entry))
        stored = DatasetEntry.from_json(payload)
        if self.legacy_keys:
            _legacy.mirror_entry(self, stored)
        return stored

    def get_entry(self, name: str, version: str | None = None) -> DatasetEntry | None:
        k = self._k
        if version is None:
            self._check_pointers()
            raw = self._call(self._latest, keys=[k["entries"], k["latest"]], args=[name])
        else:
            raw = self._call(self._client.hget, k["entries"], f"{name}@{version}")
        if raw:
            return DatasetEntry.from_json(raw)
        return _legacy.find_entry(self, name) if self.legacy_keys and version is None else None

    def get_entry_by_id(self, entry_id: str) -> DatasetEntry | None:
        ref = self._call(self._client.hget, self._k["ids"], entry_id)
        if not ref:
            return None
        raw = self._call(self._client.hget, self._k["entries"], ref)
        return DatasetEntry.from_json(raw) if raw else None

    def list_entries(self) -> list[DatasetEntry]:
        vals = self._call(self._client.hvals, self._k["entries"])
        out = [DatasetEntry.from_json(json.loads(v)) for v in vals]
        if self.legacy_keys:
            ours = {e.cid for e in out}
            out += [e for e in _legacy.read_entries(self) if e.cid not in ours]
        return sorted(out, key=lambda e: sort_key(e.name, e.version or ""))

    def put_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        self._call(self._client.hset, f"{self.prefix}rec:{kind}", key, text)
        if self.legacy_keys and kind == "label":
            _legacy.mirror_label(self, record)

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = self._call(self._client.hget, f"{self.prefix}rec:{kind}", key)
        return json.loads(raw) if raw else None

    def list_records(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        raw = self._call(self._client.hgetall, f"{self.prefix}rec:{kind}")
        out = {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}
        if self.legacy_keys and kind == "label":
            for key, rec in _legacy.read_labels(self):
                out.setdefault(key, rec)
        return sorted(out.items())

    def ping(self) -> None:
        self._call(self._client.ping)

    def drop(self) -> None:
        """Delete every key of this provider's prefix (tests, cleanup)."""
        self._call(self._client.delete, *self._k.values())
        for key in self._call(self._client.keys, f"{self.prefix}rec:*"):
            self._call(self._client.delete, key)

    def close(self) -> None:
        self._client.close()

    def __reduce__(self) -> Any:
        # a client built with a password keeps it out of self._url: refuse that one too
        refuse_pickle(
            "Redis", self._url.replace("://", "://:pw@", 1) if self._has_auth else self._url
        )
        args = (self._url, self.prefix, self.connect_timeout, self.timeout, self.legacy_keys)
        return (_rebuild, args)


def _rebuild(
    url: str, prefix: str, connect_timeout: float, timeout: float, legacy_keys: bool | None = None
) -> RedisProvider:
    return RedisProvider(
        url, prefix=prefix, connect_timeout=connect_timeout, timeout=timeout,
        legacy_keys=legacy_keys,
    )  # fmt: skip
