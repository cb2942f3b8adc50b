"""The ``redis`` cache backend: ``[cache] backend = "redis"``, connected as ``[redis]`` says."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiocache import RedisCache
from yarl import URL

from gateway.sdk import Base, BytesSerializer, CacheBackend, StartupError, hookimpl

__version__ = "0.1.0"


class RedisSettings(Base):
    """``[redis]``: where the ``redis`` cache backend connects."""

    #: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
    url: str = "redis://127.0.0.1:6379/0"


#: Take every charge or none, atomically.  KEYS: the counters; ARGV: amount, limit, ttl
#: per counter.  Returns 0, or the 1-based index of the first counter that would pass its limit.
TAKE_COUNTS = """
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count + tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then
    return i
  end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  if redis.call('TTL', KEYS[i]) < 0 then
    redis.call('EXPIRE', KEYS[i], ARGV[3 * i])
  end
end
return 0
"""
#: Give back: subtract each amount from a counter that still exists (an expired window stays gone).
RETURN_COUNTS = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('DECRBY', KEYS[i], ARGV[i])
  end
end
return 0
"""

# Circuit breakers of config targets (gateway/circuit.py documents the rules; MemoryCircuits
# there is the same logic in memory).  A circuit is a hash: s (1 open), n and f (outcomes and
# failures in the window), w (window start), u (open until), t and te (the trial's token and
# its end).  Times are Unix milliseconds from the caller.
#: KEYS: the circuit; ARGV: now, trial ms, token ('' only looks).  0 closed, 1 open, 2 half-open.
CIRCUIT_CHECK = """
local st = redis.call('HMGET', KEYS[1], 's', 'u', 't', 'te')
if st[1] ~= '1' then
  return 0
end
local now = tonumber(ARGV[1])
if now < tonumber(st[2]) or (st[3] and tonumber(st[4]) > now) then
  return 1
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 't', ARGV[3], 'te', now + tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]) + 60000)
end
return 2
"""
#: KEYS: the circuit; ARGV: now, result (0 neutral, 1 success, 2 failure), window ms, cooldown ms,
#: failure threshold (0: none), percentage (0: none), minimum requests, token.
#: Returns {transition (0 none, 1 opened, 2 closed), requests, failures}.
CIRCUIT_RECORD = """
local now, result, window, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 's', 'u', 't', 'n', 'f', 'w')
local n, f = tonumber(st[4]) or 0, tonumber(st[5]) or 0
if st[1] == '1' then
  if now < tonumber(st[2]) then
    return {0, 0, 0}
  end
  if result == 1 then
    redis.call('DEL', KEYS[1])
    return {2, n, f}
  end
  if result == 2 then
    redis.call('HSET', KEYS[1], 'u', now + cooldown)
    redis.call('HDEL', KEYS[1], 't', 'te')
    redis.call('PEXPIRE', KEYS[1], 2 * cooldown + 60000)
    return {1, n, f}
  end
  if ARGV[8] ~= '' and st[3] == ARGV[8] then
    redis.call('HDEL', KEYS[1], 't', 'te')
  end
  return {0, 0, 0}
end
if result == 0 then
  return {0, 0, 0}
end
local w = tonumber(st[6])
if not w or now - w >= window then
  n, f, w = 0, 0, now
end
n = n + 1
if result == 2 then
  f = f + 1
end
local threshold, pct, minimum = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if (threshold > 0 and f >= threshold) or (pct > 0 and n >= minimum and 100 * f >= pct * n) then
  redis.call('HSET', KEYS[1], 's', 1, 'u', now + cooldown, 'n', n, 'f', f, 'w', w)
  redis.call('HDEL', KEYS[1], 't', 'te')
  redis.call('PEXPIRE', KEYS[1], 2 * cooldown + 60000)
  return {1, n, f}
end
redis.call('HSET', KEYS[1], 's', 0, 'n', n, 'f', f, 'w', w)
redis.call('PEXPIRE', KEYS[1], w + window - now + 60000)
return {0, n, f}
"""
#: KEYS: the circuit; ARGV: token.  Ends that trial unused.
CIRCUIT_RELEASE = """
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 't', 'te')
end
return 0
"""


class CountingRedisCache(RedisCache):
    """aiocache's RedisCache, plus the counters of gateway keys' rate limits and budgets and the
    circuit breakers of config targets: each check-and-change is one Lua script, so instances
    sharing this Redis share one limit and one circuit per target."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._take = self.client.register_script(TAKE_COUNTS)
        self._return = self.client.register_script(RETURN_COUNTS)
        self._circuit_check = self.client.register_script(CIRCUIT_CHECK)
        self._circuit_record = self.client.register_script(CIRCUIT_RECORD)
        self._circuit_release = self.client.register_script(CIRCUIT_RELEASE)

    async def take_counts(self, charges: Sequence[tuple[str, int, int, int]]) -> int:
        args: list[int] = []
        for _key, amount, limit, ttl in charges:
            args += (amount, limit, ttl)
        return int(await self._take(keys=[c[0] for c in charges], args=args))

    async def return_counts(self, refunds: Sequence[tuple[str, int]]) -> None:
        await self._return(keys=[k for k, _ in refunds], args=[amount for _, amount in refunds])

    async def _close(self, *args: Any, _conn: Any = None, **kwargs: Any) -> None:
        # aiocache 0.12 calls redis-py's deprecated close(); aclose() is its replacement.
        await self.client.aclose()

    async def circuit_check(self, key: str, now: int, trial_ms: int, token: str) -> int:
        return int(await self._circuit_check(keys=[key], args=[now, trial_ms, token]))

    async def circuit_record(self, key: str, now: int, result: int, window_ms: int, cooldown_ms: int,
                             threshold: int, percentage: float, minimum: int, token: str) -> tuple[int, int, int]:
        got = await self._circuit_record(keys=[key], args=[now, result, window_ms, cooldown_ms, threshold,
                                                           repr(float(percentage)), minimum, token])
        return int(got[0]), int(got[1]), int(got[2])

    async def circuit_release(self, key: str, token: str) -> None:
        await self._circuit_release(keys=[key], args=[token])


class RedisBackend(CacheBackend):
    """aiocache's RedisCache holding raw bytes, at ``[redis] url``, with atomic counters."""

    name = "redis"

    @classmethod
    def from_settings(cls, settings: Any) -> CountingRedisCache:
        redis: RedisSettings = settings.sections["redis"]
        url = URL(redis.url)
        if url.scheme not in ("redis", "rediss"):
            raise StartupError(f"settings [redis] url: expected redis:// or rediss://, got {url.scheme!r}")
        db = int(url.path.strip("/") or 0)
        return CountingRedisCache(
            serializer=BytesSerializer(), endpoint=url.host or "127.0.0.1", port=url.port or 6379, db=db,
            password=url.password, ssl=url.scheme == "rediss", timeout=settings.cache.op_timeout,
            create_connection_timeout=settings.cache.op_timeout,
        )


@hookimpl
def gateway_register_cache_backends() -> list[type]:
    return [RedisBackend]


@hookimpl
def gateway_register_config_sections() -> dict[str, type]:
    return {"redis": RedisSettings}
