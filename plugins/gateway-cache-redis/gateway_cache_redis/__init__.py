"""The ``redis`` cache backend: ``[cache] backend = "redis"``, connected as ``[redis]`` says."""
from __future__ import annotations

from typing import Any

from aiocache import RedisCache
from yarl import URL

from gateway.sdk import Base, BytesSerializer, CacheBackend, StartupError, hookimpl

__version__ = "0.1.0"


class RedisSettings(Base):
    """``[redis]``: where the ``redis`` cache backend connects."""

    #: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
    url: str = "redis://127.0.0.1:6379/0"


class RedisBackend(CacheBackend):
    """aiocache's RedisCache holding raw bytes, at ``[redis] url``."""

    name = "redis"

    @classmethod
    def from_settings(cls, settings: Any) -> RedisCache:
        redis: RedisSettings = settings.sections["redis"]
        url = URL(redis.url)
        if url.scheme not in ("redis", "rediss"):
            raise StartupError(f"settings [redis] url: expected redis:// or rediss://, got {url.scheme!r}")
        db = int(url.path.strip("/") or 0)
        return RedisCache(
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
