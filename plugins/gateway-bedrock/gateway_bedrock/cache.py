"""Temporary credentials kept until shortly before they expire, fetched once for every request
that needs them meanwhile.

Kept per key (the role, how it is assumed and with which base credentials: never a secret
itself, only a digest of it) until :data:`REFRESH_BEFORE` seconds before they expire (half
their lifetime, for ones that live less than twice that).  The fetch runs as its own task: a
request that goes away does not fail the others waiting for it, and the fetch stops when the
last one goes.  Nothing here is logged.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, NamedTuple, TypeVar

__all__ = ["MAX_ENTRIES", "REFRESH_BEFORE", "ExpiringCache"]

#: Credentials are replaced this many seconds before they expire.
REFRESH_BEFORE = 300.0
#: Entries kept at most: one per role in use.
MAX_ENTRIES = 1024
T = TypeVar("T")


class _Entry(NamedTuple, Generic[T]):
    value: T
    #: On the cache's clock: when to fetch anew.
    refresh_at: float


class _Flight(Generic[T]):
    """A fetch under way, and how many requests wait for it."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Future[T]) -> None:
        self.task = task
        self.waiters = 0


class ExpiringCache(Generic[T]):
    """Values by key, each fetched by one task at a time and kept until shortly before it expires."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: The clock expiries are read on (tests move it on).
        self.clock = clock
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._flights: dict[str, _Flight[T]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        """The value for ``key`` while it is fresh, else what ``fetch`` gets: ``(value, seconds it lives)``."""
        found = self._entries.get(key)
        if found is not None and self.clock() < found.refresh_at:
            self._entries.move_to_end(key)
            return found.value
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = _Flight(asyncio.ensure_future(self._fetch(key, fetch)))
            flight.task.add_done_callback(lambda _: self._settled(key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if not flight.waiters and not flight.task.done():
                flight.task.cancel()

    async def _fetch(self, key: str, fetch: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        started = self.clock()
        value, lifetime = await fetch()
        margin = min(REFRESH_BEFORE, lifetime / 2)
        self._entries[key] = _Entry(value, started + lifetime - margin)
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
        return value

    def _settled(self, key: str, flight: _Flight[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved: a failure nobody awaits any more is not reported as lost
