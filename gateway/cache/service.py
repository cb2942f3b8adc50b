"""The cache service: entries and image bytes in a backend, single flight, outage handling.

Layout in the backend (keys are hex digests):

* ``e:<key>`` — a small entry: status, headers, provider, and the hash of the body;
* ``b:<sha256>`` — the body itself, stored once however many entries point at it;
* ``l:<key>`` — a single-flight lock while one caller fetches what others wait for;
* ``st:<key>`` — a sticky load-balancing choice (the loadbalance strategy's);
* ``cb:<key>`` — a target's circuit breaker (through the backend's ``circuit_*`` calls).
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Any

import msgspec
import structlog
from aiocache.base import BaseCache
from multidict import CIMultiDict

from gateway.outcome import Outcome

_log = structlog.get_logger("gateway.cache")
#: Seconds a body outlives the newest entry pointing at it, so an entry read just
#: before it expires still finds its bytes.
BLOB_GRACE = 3600


class Unavailable(Exception):
    """The backend failed or was too slow; the request goes on without the cache."""


class Entry(msgspec.Struct, array_like=True):
    status: int
    headers: list[tuple[str, str]]
    blob: str
    provider: str | None
    created: float
    #: The config target that produced the answer (``x-portkey-last-used-option-index``).
    target_path: str = "config"


_encode_entry = msgspec.msgpack.Encoder().encode
_decode_entry = msgspec.msgpack.Decoder(Entry).decode


class CacheService:
    """One app's cache, on one backend."""

    def __init__(self, backend: BaseCache, *, op_timeout: float, lock_timeout: float, retry_after: float = 5.0) -> None:
        self.backend = backend
        self.op_timeout = op_timeout
        self.lock_timeout = lock_timeout
        self.retry_after = retry_after
        self._down_until = 0.0
        self._outage = False
        self._inflight: dict[str, asyncio.Future[None]] = {}

    # -- backend calls, with the outage switch ------------------------------------
    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._outage and time.monotonic() < self._down_until:
            raise Unavailable
        try:
            async with asyncio.timeout(self.op_timeout):
                result = await getattr(self.backend, method)(*args, **kwargs)
        except ValueError:
            if method != "add":
                raise
            result = False  # aiocache's "the key exists" from add(): the lock is held elsewhere
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as e:  # any backend failure: serve without the cache
            self._down_until = time.monotonic() + self.retry_after
            if not self._outage:
                self._outage = True
                _log.warning("cache.unavailable", backend=type(self.backend).__name__,
                             error=f"{e.__class__.__name__}: {e}"[:300])
            raise Unavailable from None
        if self._outage:
            self._outage = False
            _log.info("cache.recovered", backend=type(self.backend).__name__)
        return result

    async def get(self, key: str) -> bytes | None:
        """A raw value (for other users of the backend, such as the image store)."""
        return await self._call("get", key)

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        await self._call("set", key, value, ttl=ttl)

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def add(self, key: str, value: bytes, ttl: float | None) -> bool:
        """Set ``key`` only if it is absent (atomic in the backend); whether this call set it."""
        return bool(await self._call("add", key, value, ttl=ttl))

    # -- entries ------------------------------------------------------------------
    async def lookup(self, key: str) -> Outcome | None:
        raw = await self._call("get", "e:" + key)
        if raw is None:
            return None
        entry = _decode_entry(raw)
        body = await self._call("get", "b:" + entry.blob)
        if body is None:
            return None
        return Outcome(entry.status, CIMultiDict(entry.headers), body=body, provider=entry.provider,
                       target_path=entry.target_path)

    async def store(self, key: str, max_age: int, outcome: Outcome, body: bytes,
                    volatile: frozenset[str] = frozenset()) -> None:
        """Keep ``body`` (the whole answer) under ``key``; headers in ``volatile`` and the
        gateway's own are not kept."""
        blob = hashlib.sha256(body).hexdigest()
        headers = [(str(k), str(v)) for k, v in outcome.headers.items()
                   if k.lower() not in volatile and not k.lower().startswith("x-portkey-")]
        entry = Entry(outcome.status, headers, blob, outcome.provider, time.time(), outcome.target_path)
        await self._call("set", "b:" + blob, body, ttl=max_age + BLOB_GRACE)
        await self._call("set", "e:" + key, _encode_entry(entry), ttl=max_age)

    # -- single flight ------------------------------------------------------------
    async def lead(self, key: str) -> bool:
        """Become the one caller that fetches ``key``, or wait for the one that is.

        Returns True to lead (call upstream, then :meth:`release`), False when a
        twin finished meanwhile (look the entry up again).  Twins in this process
        wait on a future; twins in other processes on the backend lock.
        """
        fut = self._inflight.get(key)
        if fut is not None:
            try:
                async with asyncio.timeout(self.lock_timeout):
                    await asyncio.shield(fut)
            except TimeoutError:
                return True
            return False
        self._inflight[key] = asyncio.get_running_loop().create_future()
        token = os.urandom(8)
        try:
            if await self._call("add", "l:" + key, token, ttl=self.lock_timeout):
                return True
        except Unavailable:
            return True
        # Another instance leads: wait for its entry, or for its lock to go.
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)
            try:
                if await self._call("exists", "e:" + key) or not await self._call("exists", "l:" + key):
                    self._resolve(key)
                    return False
            except Unavailable:
                break
        return True

    def _resolve(self, key: str) -> None:
        fut = self._inflight.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def release(self, key: str) -> None:
        """End a lead: wake local twins and drop the backend lock."""
        self._resolve(key)
        try:
            await self._call("delete", "l:" + key)
        except Unavailable:
            pass

    async def close(self) -> None:
        for key in list(self._inflight):
            self._resolve(key)
        await self.backend.close()
