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


class CountingRedisCache(RedisCache):
    """aiocache's RedisCache, plus the counters of gateway keys' rate limits and budgets:
    each check-and-add is one Lua script, so instances sharing this Redis share one limit."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._take = self.client.register_script(TAKE_COUNTS)
        self._return = self.client.register_script(RETURN_COUNTS)

    async def take_counts(self, charges: Sequence[tuple[str, int, int, int]]) -> int:
        args: list[int] = []
        for _key, amount, limit, ttl in charges:
            args += (amount, limit, ttl)
        return int(await self._take(keys=[c[0] for c in charges], args=args))

    async def return_counts(self, refunds: Sequence[tuple[str, int]]) -> None:
        await self._return(keys=[k for k, _ in refunds], args=[amount for _, amount in refunds])


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
