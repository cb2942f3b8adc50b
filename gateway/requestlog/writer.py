"""Writes leave the request path: a bounded queue, batched inserts, drops counted.

:meth:`LogWriter.submit` appends to a queue and returns: it never waits and never raises.
A task takes up to ``batch_size`` records at a time (waiting up to ``flush_interval`` for a
batch to fill), prepares each (``prepare``: the parameters made safe, the images kept) and
writes the batch in one insert.  When the store is down or slower than the requests (a
write fails or passes ``write_timeout``, or the queue is full), the records that cannot be
written are dropped and counted: ``request_log.unavailable`` is logged once when that
starts and ``request_log.recovered``, with the count, once writes go through again.
"""
from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:  # pragma: no cover
    from gateway.requestlog.record import LogRecord
    from gateway.requestlog.store import LogStore

_log = structlog.get_logger("gateway")
#: Seconds between writes while the store is down, at most (doubling from ``flush_interval``).
MAX_BACKOFF = 5.0
#: Seconds the writer may take at shutdown to write what is queued.
CLOSE_TIMEOUT = 5.0

#: Finishes a record in the writer's task, given what :meth:`LogWriter.submit` was given with it;
#: what cannot be done at once (storing images) it returns as an awaitable, else None.
Prepare = Callable[["LogRecord", Any], "Awaitable[None] | None"]


class LogWriter:
    """The queue in front of a :class:`~gateway.requestlog.store.LogStore` (``services.request_log``)."""

    def __init__(self, store: LogStore, *, queue_size: int = 10_000, batch_size: int = 200,
                 flush_interval: float = 0.5, write_timeout: float = 10.0, prepare: Prepare | None = None,
                 observe: Callable[[int, int], None] | None = None) -> None:
        self.store = store
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.write_timeout = write_timeout
        self.prepare = prepare
        #: Told ``(queue depth, records dropped since the last call)`` after each batch and drop.
        self.observe = observe
        #: Records written, and dropped (queue full or the store failing), since start-up.
        self.written = 0
        self.dropped = 0
        #: Bytes the queued records hold besides themselves (request bodies, answers), as
        #: :meth:`submit` was told: a caller can keep the queue's memory bounded.
        self.held_bytes = 0
        self._items: collections.deque[tuple[LogRecord, Any, int]] = collections.deque()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: Records dropped in the current outage (None: the store is fine).
        self._outage: int | None = None
        self._failures = 0
        self._prepare_failed = False

    @property
    def depth(self) -> int:
        """Records waiting to be written."""
        return len(self._items)

    @property
    def available(self) -> bool:
        """False while records are being dropped (the store down or too slow)."""
        return self._outage is None

    def submit(self, record: LogRecord, extra: Any = None, held: int = 0) -> None:
        """Queue ``record`` (and ``extra``, for ``prepare``, holding ``held`` bytes until it is
        written); never waits, never raises."""
        try:
            items = self._items
            if self._stopping or len(items) >= self.queue_size:
                self._drop(1, "the queue is full: the log store is slower than the requests")
                return
            items.append((record, extra, held))
            self.held_bytes += held
            n = len(items)
            if n == 1:
                self._wake.set()
            if n >= self.batch_size:
                self._full.set()
        except Exception:  # noqa: BLE001 - a log record never fails a request
            pass

    def mark_down(self, reason: str) -> None:
        """The store cannot be used (it did not open): logged once, until a write goes through."""
        if self._outage is None:
            self._outage = 0
            _log.warning("request_log.unavailable", store=self.store.name, reason=reason,
                         hint="requests go on; their records are dropped and counted until the store is back")

    # -- the task ------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Write what is queued (for at most ``timeout`` seconds), then stop."""
        self._stopping = True
        self._wake.set()
        self._full.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        left = len(self._items)
        if left:
            self._items.clear()
            self.held_bytes = 0
            self.dropped += left
            _log.warning("request_log.unwritten", dropped=left)

    async def _run(self) -> None:
        items = self._items
        while True:
            if not items:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(items) < self.batch_size and not self._stopping:
                self._full.clear()
                try:
                    async with asyncio.timeout(self.flush_interval):
                        await self._full.wait()
                except TimeoutError:
                    pass
            batch = [items.popleft() for _ in range(min(len(items), self.batch_size))]
            await self.flush(batch)

    async def flush(self, batch: list[tuple[LogRecord, Any, int]]) -> None:
        """Prepare and write one batch; on failure drop it, count it and wait a little."""
        try:
            await self._flush(batch)
        finally:
            self.held_bytes -= sum(held for _, _, held in batch)

    async def _flush(self, batch: list[tuple[LogRecord, Any, int]]) -> None:
        if self.prepare is not None:
            waits = []
            for record, extra, _ in batch:
                if extra is not None:
                    try:
                        pending = self.prepare(record, extra)
                    except Exception as e:  # noqa: BLE001 - the record is written without what failed
                        self._prepare_error(record, e)
                    else:
                        if pending is not None:
                            waits.append(self._waited(record, pending))
            if waits:
                await asyncio.gather(*waits)
        records = [record for record, _, _ in batch]
        try:
            async with asyncio.timeout(self.write_timeout):
                await self.store.write(records)
        except Exception as e:  # noqa: BLE001 - whatever the store raises, requests go on
            reason = "the write took longer than write_timeout" if isinstance(e, TimeoutError) else \
                f"{e.__class__.__name__}: {e}"
            self._drop(len(records), reason)
            self._failures += 1
            if not self._stopping:
                await asyncio.sleep(min(MAX_BACKOFF, self.flush_interval * 2 ** min(self._failures, 10)))
            return
        self._failures = 0
        self.written += len(records)
        if self._outage is not None and len(self._items) < self.queue_size // 2:
            _log.info("request_log.recovered", dropped=self._outage, store=self.store.name)
            self._outage = None
        if self.observe is not None:
            self.observe(len(self._items), 0)

    async def _waited(self, record: LogRecord, pending: Awaitable[None]) -> None:
        try:
            await pending
            self._prepare_failed = False
        except Exception as e:  # noqa: BLE001 - the record is written without what failed
            self._prepare_error(record, e)

    def _prepare_error(self, record: LogRecord, e: Exception) -> None:
        """Logged once until a preparation succeeds again (an image store that is full, say)."""
        if not self._prepare_failed:
            _log.warning("request_log.prepare_failed", error=f"{e.__class__.__name__}: {e}", trace_id=record.trace_id)
            self._prepare_failed = True

    def _drop(self, n: int, reason: str) -> None:
        self.dropped += n
        self.mark_down(reason)
        assert self._outage is not None
        self._outage += n
        if self.observe is not None:
            self.observe(len(self._items), n)
