"""The ``redis`` cache backend: ``[cache] backend = "redis"``."""
from __future__ import annotations

from typing import Any

from aiocache import RedisCache
from yarl import URL

from gateway import hookimpl
from gateway.cache.backend import BytesSerializer, CacheBackend
from gateway.errors import StartupError

__version__ = "0.1.0"


class RedisBackend(CacheBackend):
    """aiocache's RedisCache holding raw bytes, from ``cache.redis_url``."""

    name = "redis"

    @classmethod
    def from_settings(cls, settings: Any) -> RedisCache:
        url = URL(settings.cache.redis_url)
        if url.scheme not in ("redis", "rediss"):
            raise StartupError(f"settings [cache] redis_url: expected redis:// or rediss://, got {url.scheme!r}")
        db = int(url.path.strip("/") or 0)
        return RedisCache(
            serializer=BytesSerializer(), endpoint=url.host or "127.0.0.1", port=url.port or 6379, db=db,
            password=url.password, ssl=url.scheme == "rediss", timeout=settings.cache.op_timeout,
            create_connection_timeout=settings.cache.op_timeout,
        )


@hookimpl
def gateway_register_cache_backends() -> list[type]:
    return [RedisBackend]
