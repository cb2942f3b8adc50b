"""Rate limits and budgets of gateway keys: fixed windows of counters.

A request admitted for a key with limits *takes* one charge per limit it is
under: ``requests_per_minute`` one request, ``images_per_minute`` and
``images_per_day`` the images it asks for, ``cost_per_day`` and
``cost_per_month`` what those images cost.  Either every charge fits under its
limit and all are added, or none is (the first that would not fit is named).
A window is a minute, a UTC day or a UTC calendar month; its counter's key
carries the window's start, so a new window starts from zero and the old
counter expires.

Counters live in the cache backend when it offers them (``take_counts`` /
``return_counts``, atomic: the ``redis`` backend runs one Lua script), so every
instance sharing it holds one limit; otherwise in this instance's memory.
Costs are counted in millionths, as whole numbers.
"""
from __future__ import annotations

import asyncio
import datetime
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import structlog

from gateway.errors import GatewayError, RateLimited

if TYPE_CHECKING:  # pragma: no cover
    from gateway.services import Services

_log = structlog.get_logger("gateway.limits")

#: Costs are counted in millionths of the currency, so counters stay whole numbers.
MICROS = 1_000_000
#: Seconds a counter outlives its window (clocks of instances differ a little).
_MARGIN = 60
#: Seconds between sweeps of expired counters in memory.
_SWEEP_EVERY = 60.0


class CounterStore(Protocol):
    """What a cache backend offers to hold the counters (duck-typed: ``take_counts``
    and ``return_counts`` on the backend object)."""

    async def take_counts(self, charges: Sequence[tuple[str, int, int, int]]) -> int:
        """Atomically: when every ``(key, amount, limit, ttl)`` has ``count + amount <=
        limit``, add every amount (a new counter lives ``ttl`` seconds) and return 0;
        else add nothing and return the 1-based index of the first that would not fit."""

    async def return_counts(self, refunds: Sequence[tuple[str, int]]) -> None:
        """Subtract each ``(key, amount)`` from its counter, when the counter still exists."""


class Charge(NamedTuple):
    """One limit's share of one request."""

    #: The limit's setting name (``images_per_day``).
    setting: str
    #: The counter: ``gk:{<key name>}:<setting>:<window start>``.
    key: str
    amount: int
    limit: int
    #: Seconds the counter lives.
    ttl: int
    #: When the window ends (Unix seconds).
    reset: float


def _minute(now: float) -> tuple[int, int]:
    start = int(now // 60) * 60
    return start, start + 60


def _day(now: float) -> tuple[int, int]:
    start = int(now // 86400) * 86400
    return start, start + 86400


def _month(now: float) -> tuple[int, int]:
    d = datetime.datetime.fromtimestamp(now, datetime.UTC)
    start = datetime.datetime(d.year, d.month, 1, tzinfo=datetime.UTC)
    end = datetime.datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=datetime.UTC)
    return int(start.timestamp()), int(end.timestamp())


_WINDOWS = {
    "requests_per_minute": _minute,
    "images_per_minute": _minute,
    "images_per_day": _day,
    "cost_per_day": _day,
    "cost_per_month": _month,
}
_COSTS = frozenset({"cost_per_day", "cost_per_month"})


def micros(value: float | None) -> int | None:
    return None if value is None else round(value * MICROS)


class KeyLimits(NamedTuple):
    """One key's limits (costs in millionths); None is no limit."""

    requests_per_minute: int | None = None
    images_per_minute: int | None = None
    images_per_day: int | None = None
    cost_per_day: int | None = None
    cost_per_month: int | None = None
    #: What one image costs, in millionths (the only cost known today; a price computed
    #: from the provider's answer would replace ``images * image_cost``).
    image_cost: int = 0

    def any(self) -> bool:
        return any(getattr(self, s) is not None for s in _WINDOWS)

    def charges(self, name: str, images: int, now: float) -> list[Charge]:
        """What a request asking for ``images`` images takes (charges of 0 left out)."""
        amounts = {
            "requests_per_minute": 1,
            "images_per_minute": images,
            "images_per_day": images,
            "cost_per_day": images * self.image_cost,
            "cost_per_month": images * self.image_cost,
        }
        out = []
        for setting, window in _WINDOWS.items():
            limit = getattr(self, setting)
            amount = amounts[setting]
            if limit is None or amount <= 0:
                continue
            start, end = window(now)
            out.append(Charge(setting, f"gk:{{{name}}}:{setting}:{start}", amount, limit,
                              math.ceil(end - now) + _MARGIN, float(end)))
        return out


def refusal(name: str, charge: Charge, now: float) -> RateLimited:
    """The 429 for a charge that does not fit, with ``Retry-After`` until its window ends."""
    wait = max(1, math.ceil(charge.reset - now))
    setting = charge.setting
    per = setting.rpartition("_per_")[2]
    if setting in _COSTS:
        message = (f"Budget exceeded for gateway key {name!r}: {charge.limit / MICROS:g} per {per}; this request "
                   f"would cost {charge.amount / MICROS:g}; the budget resets in {wait} s")
        code = "budget_exceeded"
    elif setting == "requests_per_minute":
        message = f"Rate limit exceeded for gateway key {name!r}: {charge.limit} requests per minute; try again in {wait} s"
        code = "rate_limit_exceeded"
    else:
        message = (f"Rate limit exceeded for gateway key {name!r}: {charge.limit} images per {per}; this request "
                   f"asks for {charge.amount}; try again in {wait} s")
        code = "rate_limit_exceeded"
    return RateLimited(message, param=setting, code=code, headers={"Retry-After": str(wait)})


class MemoryCounters:
    """Counters in this process's memory.  Atomic because nothing awaits between the
    check and the add."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._next_sweep = 0.0

    def _sweep(self, now: float) -> None:
        if now >= self._next_sweep:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._next_sweep = now + _SWEEP_EVERY

    def _value(self, key: str, now: float) -> int:
        item = self._counts.get(key)
        return item[0] if item is not None and item[1] > now else 0

    async def take_counts(self, charges: Sequence[tuple[str, int, int, int]]) -> int:
        now = time.time()
        self._sweep(now)
        for i, (key, amount, limit, _ttl) in enumerate(charges, 1):
            if self._value(key, now) + amount > limit:
                return i
        for key, amount, _limit, ttl in charges:
            item = self._counts.get(key)
            if item is None or item[1] <= now:
                item = (0, now + ttl)
            self._counts[key] = (item[0] + amount, item[1])
        return 0

    async def return_counts(self, refunds: Sequence[tuple[str, int]]) -> None:
        now = time.time()
        for key, amount in refunds:
            item = self._counts.get(key)
            if item is not None and item[1] > now:
                self._counts[key] = (max(0, item[0] - amount), item[1])


class Taken(NamedTuple):
    """What a request took, and where from (to give back the same way)."""

    store: Any
    charges: list[Charge]


class Limiter:
    """Takes and gives back charges: in the cache backend's counters when it has them
    (several instances, one limit), else in memory.

    When the shared store fails or is slower than ``op_timeout``, ``when_down`` decides:
    ``local`` counts in memory until it is back, ``refuse`` answers 503.  The outage is
    logged once (``limits.unavailable``) and the store is tried again after ``retry_after`` s.
    """

    def __init__(self, services: Services, *, op_timeout: float, when_down: str, retry_after: float = 5.0) -> None:
        self.services = services
        self.op_timeout = op_timeout
        self.when_down = when_down
        self.retry_after = retry_after
        self.local = MemoryCounters()
        self._down_until = 0.0
        self._outage = False

    def shared(self) -> CounterStore | None:
        """The cache backend, when it keeps counters (it exists once the app runs)."""
        cache = self.services.cache
        backend = getattr(cache, "backend", None)
        return backend if hasattr(backend, "take_counts") and hasattr(backend, "return_counts") else None

    async def take(self, name: str, charges: list[Charge]) -> Taken:
        """Take every charge or raise the 429 of the first that does not fit."""
        rows = [(c.key, c.amount, c.limit, c.ttl) for c in charges]
        store: Any = self.shared()
        refused = None
        if store is not None:
            if self._outage and time.monotonic() < self._down_until:
                store = None
            else:
                try:
                    async with asyncio.timeout(self.op_timeout):
                        refused = await store.take_counts(rows)
                except Exception as e:  # any store failure: the outage policy decides
                    self._failed(store, e)
                    store = None
                else:
                    self._recovered(store)
            if store is None and self.when_down == "refuse":
                raise GatewayError(
                    "Rate limits cannot be checked right now (their store is unreachable); try again shortly",
                    status=503, type="service_unavailable", code="limits_unavailable",
                    headers={"Retry-After": str(math.ceil(self.retry_after))},
                )
        if store is None:
            store = self.local
            refused = await store.take_counts(rows)
        if refused:
            raise refusal(name, charges[int(refused) - 1], time.time())
        return Taken(store, charges)

    async def give_back(self, taken: Taken, charges: list[Charge]) -> None:
        """Return ``charges`` to the store ``taken`` came from (a lost refund only overcounts)."""
        if not charges:
            return
        refunds = [(c.key, c.amount) for c in charges]
        if taken.store is self.local:
            await self.local.return_counts(refunds)
            return
        try:
            async with asyncio.timeout(self.op_timeout):
                await taken.store.return_counts(refunds)
        except Exception as e:  # logged once with the outage; the counter stays a little high
            self._failed(taken.store, e)

    def _failed(self, store: Any, error: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_after
        if not self._outage:
            self._outage = True
            _log.warning("limits.unavailable", store=type(store).__name__, policy=self.when_down,
                         error=f"{error.__class__.__name__}: {error}"[:300])

    def _recovered(self, store: Any) -> None:
        if self._outage:
            self._outage = False
            _log.info("limits.recovered", store=type(store).__name__)
