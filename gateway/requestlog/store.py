"""Where the request log is kept: the :class:`LogStore` interface and its query.

Stores register through ``gateway_register_log_stores`` (like cache backends); the
``[request_log] store`` setting picks one by its ``name``.  Pages are newest first; ids
sort as arrival times do (:func:`~gateway.requestlog.record.new_id`), so a store may order
pages, bound time ranges (to the millisecond) and apply retention by id.  A cursor is
opaque to callers.
"""
from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from gateway.requestlog.record import LogRecord

if TYPE_CHECKING:  # pragma: no cover
    from gateway.services import Services

#: Most records one page may hold.
MAX_LIMIT = 200

_STATUS = re.compile(r"^(?:[1-5][0-9][0-9]|[1-5]xx)$")


class InvalidQuery(ValueError):
    """A query parameter the store cannot use (the API answers 400 naming it)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class LogQuery(msgspec.Struct, kw_only=True):
    """Which records a page holds; every filter set must match."""

    since: float | None = None
    until: float | None = None
    provider: str | None = None
    model: str | None = None
    #: A status code (``"200"``) or a class (``"4xx"``, ``"5xx"``).
    status: str | None = None
    #: A gateway key's name.
    key: str | None = None
    trace_id: str | None = None
    #: Exact match on each metadata field.
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    #: From the previous page's ``next_cursor``.
    cursor: str | None = None
    limit: int = 50

    def check(self) -> None:
        """:class:`InvalidQuery` naming the first parameter a store cannot use."""
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidQuery("limit", f"limit must be from 1 to {MAX_LIMIT}, not {self.limit}")
        self.status_range()
        self.position()

    def status_range(self) -> tuple[int, int] | None:
        """The status filter as ``[low, high]`` inclusive, or None."""
        if self.status is None:
            return None
        s = self.status.lower()
        if not _STATUS.match(s):
            raise InvalidQuery("status", f"status must be a code like 200 or a class like 4xx, not {self.status!r}")
        if s.endswith("xx"):
            low = int(s[0]) * 100
            return low, low + 99
        return int(s), int(s)

    def position(self) -> tuple[float, str] | None:
        """The cursor as ``(time, id)`` of the last record of the page before: this page
        holds what is older (a smaller id)."""
        return None if self.cursor is None else decode_cursor(self.cursor)


def encode_cursor(record: LogRecord) -> str:
    """The cursor after ``record`` (the last of a page)."""
    raw = msgspec.json.encode([record.time, record.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, rid = msgspec.json.decode(raw, type=tuple[float, str])
    except (ValueError, msgspec.DecodeError):
        raise InvalidQuery("cursor", "cursor is not one this API handed out") from None
    return when, rid


class LogStore:
    """Base of a log store.  Subclasses set ``name`` and implement every method."""

    #: What ``[request_log] store`` names it by.
    name: ClassVar[str]

    @classmethod
    def from_services(cls, services: Services) -> LogStore:
        """A store from the app's services (its settings are in ``services.settings``)."""
        raise NotImplementedError

    async def start(self) -> None:
        """Open, and run the schema migrations not yet applied."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def write(self, records: list[LogRecord]) -> None:
        """Insert a batch (an id already present is left as it is)."""
        raise NotImplementedError

    async def query(self, q: LogQuery) -> tuple[list[LogRecord], str | None]:
        """A page, newest first, and the cursor of the next page (None after the last)."""
        raise NotImplementedError

    async def get(self, record_id: str) -> LogRecord | None:
        raise NotImplementedError

    async def stats(self, since: float, until: float, bucket_seconds: int) -> list[dict[str, Any]]:
        """One row per (bucket, provider) with records in ``[since, until)``: ``bucket`` (its start,
        unix seconds), ``provider``, ``requests``, ``errors_4xx``, ``errors_5xx``, ``p50_ms``,
        ``p95_ms``, ``cost``, ``cost_saved`` (what cache hits saved), ``cache_hits``, ``cache_lookups``;
        ordered by bucket then provider."""
        raise NotImplementedError

    async def prune(self, now: float) -> int:
        """Remove what retention no longer keeps (by age, then by size); the rows removed."""
        raise NotImplementedError


def percentile(sorted_values: list[float], p: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least ``p`` of the values at or
    below it: PostgreSQL's ``percentile_disc``) of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p * len(sorted_values)))
    return sorted_values[rank - 1]


def aggregate(rows: Iterable[tuple[float, str | None, int, float, float | None, str, float | None]],
              bucket_seconds: int) -> list[dict[str, Any]]:
    """:meth:`LogStore.stats` rows from ``(time, provider, status, ms, cost, cache, cost_saved)`` tuples."""
    groups: dict[tuple[int, str | None], list[Any]] = {}
    for when, provider, status, ms, cost, cache, saved in rows:
        bucket = int(when // bucket_seconds) * bucket_seconds
        g = groups.get((bucket, provider))
        if g is None:
            g = groups[(bucket, provider)] = [0, 0, 0, [], 0.0, 0, 0, 0.0]
        g[0] += 1
        if 400 <= status < 500:
            g[1] += 1
        elif status >= 500:
            g[2] += 1
        g[3].append(ms)
        if cost is not None:
            g[4] += cost
        if cache == "HIT":
            g[5] += 1
        if saved is not None:  # set on cache hits only (exact or semantic)
            g[7] += saved
        if cache != "DISABLED":
            g[6] += 1
    out = []
    for (bucket, provider), (n, e4, e5, times, cost, hits, lookups, saved_sum) in sorted(
            groups.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        times.sort()
        out.append({"bucket": bucket, "provider": provider, "requests": n, "errors_4xx": e4, "errors_5xx": e5,
                    "p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95), "cost": round(cost, 6),
                    "cost_saved": round(saved_sum, 6), "cache_hits": hits, "cache_lookups": lookups})
    return out
