"""Cache lookup, built in: exact-match entries over the configured backend, with single flight.

A miss becomes a :class:`SimpleLease`: the request that holds it calls upstream
while identical requests (here or on another instance) wait for its entry; the
lease stores the answer in an app task and then lets them go.
"""
from __future__ import annotations

from gateway import hookimpl
from gateway.cache.backend import MemoryBackend
from gateway.cache.lease import CacheHit, CacheLease, CacheQuery
from gateway.cache.service import CacheService, Unavailable
from gateway.context import RequestContext
from gateway.outcome import Outcome
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings


class SimpleLease(CacheLease):
    """A miss: released when given up, or once its answer is stored."""

    def __init__(self, services: Services, service: CacheService, query: CacheQuery, holds_lock: bool) -> None:
        self.status = "REFRESH" if query.refresh else "MISS"
        self.max_age = query.max_age
        self._services = services
        self._service = service
        self._key = query.key
        # A twin whose leader stored nothing calls upstream without the lock (see lookup).
        self._holds_lock = holds_lock
        self._done = False

    def keep(self, outcome: Outcome, body: bytes) -> None:
        if self._done:
            return
        self._done = True
        self._services.spawn(self._store(outcome, body))

    async def _store(self, outcome: Outcome, body: bytes) -> None:
        try:
            if len(body) <= self._services.settings.cache.max_entry_bytes:
                volatile = frozenset()
                if outcome.target is not None:
                    volatile = self._services.registry.providers[outcome.target.provider].volatile_headers
                await self._service.store(self._key, self.max_age, outcome, body, volatile)
        except Unavailable:
            pass
        finally:
            await self._unlock()

    async def release(self) -> None:
        if not self._done:
            self._done = True
            await self._unlock()

    async def _unlock(self) -> None:
        if self._holds_lock:
            await self._service.release(self._key)


class Plugin:
    """Per app: the cache service comes from ``gateway_configure``."""

    services: Services

    @hookimpl
    def gateway_register_cache_backends(self) -> list[type]:
        return [MemoryBackend]

    @hookimpl(trylast=True)
    def gateway_configure(self, settings: Settings, registry: Registry, services: Services) -> None:
        self.services = services

    @hookimpl(trylast=True)
    async def gateway_cache_lookup(self, ctx: RequestContext, query: CacheQuery) -> CacheHit | CacheLease | None:
        service = self.services.cache
        if service is None or query.mode != "simple":  # semantic caching is a plugin's business
            return None
        key = query.key
        try:
            if not query.refresh:
                hit = await service.lookup(key)
                if hit is not None:
                    return CacheHit(hit)
            leader = await service.lead(key)
            if not leader:
                # A twin request fetched it meanwhile (here or on another instance).
                hit = None if query.refresh else await service.lookup(key)
                if hit is not None:
                    return CacheHit(hit)
                # The twin's answer was not stored (an error, or too big): call upstream
                # now, all waiting twins at once, rather than queueing behind new leads.
        except Unavailable:
            return None
        return SimpleLease(self.services, service, query, holds_lock=leader)
