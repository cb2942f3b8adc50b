"""Cache backends: aiocache caches that hold bytes, registered by plugins.

A backend class has a ``name`` (the value of ``cache.backend`` in settings) and
``from_settings(settings) -> aiocache.BaseCache``.  The gateway only uses
``get``, ``set``, ``add`` (set-if-absent, for single-flight locks), ``delete``,
``exists`` and ``close``, always with ``bytes`` values.

A backend shared by several instances may also offer the counters of gateway
keys' rate limits and budgets: ``take_counts`` and ``return_counts`` on the
cache object, atomic (see :class:`gateway.limits.CounterStore`; the ``redis``
backend has them).  Without them the counters live in each instance's memory,
outside this cache, so evicting entries never resets a limit.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, ClassVar

from aiocache.base import BaseCache
from aiocache.serializers import BaseSerializer


class BytesSerializer(BaseSerializer):
    """Values are bytes already; store them as they are."""

    DEFAULT_ENCODING = None

    def dumps(self, value: bytes) -> bytes:  # type: ignore[override]
        return value

    def loads(self, value: bytes | None) -> bytes | None:  # type: ignore[override]
        return value


class CacheBackend:
    """Base of cache backend registrations (``gateway_register_cache_backends``)."""

    name: ClassVar[str] = ""

    @classmethod
    def from_settings(cls, settings: Any) -> BaseCache:
        raise NotImplementedError


class BoundedMemoryCache(BaseCache):
    """An in-process aiocache cache bounded by the bytes it holds; the least
    recently used entries go first, and expired ones on access."""

    NAME = "memory"

    def __init__(self, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(serializer=BytesSerializer(), **kwargs)
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return value

    def _drop(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self.bytes -= len(item[0]) + len(key)

    def _put(self, key: str, value: bytes, ttl: float | None) -> bool:
        size = len(value) + len(key)
        if size > self.max_bytes:
            return False
        self._drop(key)
        self._data[key] = (value, time.monotonic() + ttl if ttl else None)
        self.bytes += size
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._data))
            self._drop(oldest)
        return True

    async def _get(self, key, encoding=None, _conn=None):  # noqa: ANN001, ANN202
        return self._live(key)

    async def _gets(self, key, encoding=None, _conn=None):  # noqa: ANN001, ANN202
        return self._live(key)

    async def _set(self, key, value, ttl=None, _cas_token=None, _conn=None):  # noqa: ANN001, ANN202
        return self._put(key, value, ttl)

    async def _add(self, key, value, ttl=None, _conn=None):  # noqa: ANN001, ANN202
        if self._live(key) is not None:
            raise ValueError(f"Key {key} already exists, use .set to update the value")
        return self._put(key, value, ttl)

    async def _delete(self, key, _conn=None):  # noqa: ANN001, ANN202
        existed = key in self._data
        self._drop(key)
        return int(existed)

    async def _exists(self, key, _conn=None):  # noqa: ANN001, ANN202
        return self._live(key) is not None

    async def _expire(self, key, ttl, _conn=None):  # noqa: ANN001, ANN202
        value = self._live(key)
        if value is None:
            return False
        self._data[key] = (value, time.monotonic() + ttl if ttl else None)
        return True

    async def _clear(self, namespace=None, _conn=None):  # noqa: ANN001, ANN202
        self._data.clear()
        self.bytes = 0
        return True

    async def _close(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        return None

    async def _redlock_release(self, key, value):  # noqa: ANN001, ANN202
        if self._live(key) == value:
            self._drop(key)
            return 1
        return 0


class MemoryBackend(CacheBackend):
    """The default: one instance's memory, bounded by ``cache.memory_max_bytes``."""

    name = "memory"

    @classmethod
    def from_settings(cls, settings: Any) -> BaseCache:
        return BoundedMemoryCache(settings.cache.memory_max_bytes, timeout=settings.cache.op_timeout)
