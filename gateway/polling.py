"""Waiting for a provider's asynchronous task: submit, poll until it ends, cancel on the way out.

Replicate, Black Forest Labs and fal.ai answer a generation with a task id
and finish it later.  Each provider says how to look at its task (:class:`Poll`'s
``check``: the task once it has ended, succeeded or failed, or None while it runs) and how
to cancel it; :func:`poll` does the rest, the same way for all of them:

- waits between checks, growing from ``first`` to ``most`` seconds (``growth`` times
  each check), with the gateway's sleep (tests replace it);
- gives up after ``max_wait`` seconds from the start with a 504 naming the task;
  the request's own timeout (``x-portkey-request-timeout``) cancels it sooner;
- tolerates ``retries`` failed checks in a row that may pass (429, 5xx, a dropped
  connection) before the failure is the answer;
- cancels the task when the gateway gives up on it for any reason (client gone,
  timeout, an error): in the background, since the request's answer does not wait for
  it, logged and never raised.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import aiohttp
import structlog

from gateway.errors import GatewayError, MalformedAnswer, UpstreamError
from gateway.upstream import MAX_ERROR_BODY

if TYPE_CHECKING:  # pragma: no cover
    from gateway.provider import UpstreamRequest
    from gateway.upstream import Upstream

__all__ = ["AFTERWARDS_TIMEOUT", "TRANSIENT", "Poll", "poll", "send_afterwards"]

_log = structlog.get_logger("gateway.polling")
T = TypeVar("T")
#: Statuses of a failed check worth another one.
TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Seconds a clean-up request (a cancel, a delete) may take; it runs after the answer is gone.
AFTERWARDS_TIMEOUT = 10.0


class Poll(Generic[T]):
    """How to wait for one task.

    :param check: one look at the task: the task once it has ended (succeeded or failed:
        the caller reads which after :func:`poll` returns it), None while it runs.  It
        raises only when the look itself failed (the provider's error answer, a malformed
        body); the task is then still running as far as anyone knows.
    :param cancel: stops the task at the provider (an ``UpstreamRequest`` sent with
        :func:`send_afterwards`), or None when the API cannot cancel.
    :param what: names the task in errors and log lines (``"prediction p-123"``).
    """

    __slots__ = ("check", "cancel", "what", "first", "most", "growth", "max_wait", "started", "retries",
                 "timeout_code", "cancel_events")

    def __init__(self, check: Callable[[], Awaitable[T | None]], *, what: str,
                 cancel: UpstreamRequest | None = None, first: float = 1.0, most: float = 5.0,
                 growth: float = 1.5, max_wait: float = 600.0, started: float | None = None, retries: int = 3,
                 timeout_code: str = "task_timeout",
                 cancel_events: tuple[str, str] = ("task_cancelled", "cancel_failed")) -> None:
        self.check = check
        self.cancel = cancel
        self.what = what
        #: When the wait began, on the loop's clock (default: when :func:`poll` starts); the
        #: task is given up ``max_wait`` seconds after it.
        self.started = started
        #: The log events of the cancel request: sent, and failed.
        self.cancel_events = cancel_events
        self.first = first
        self.most = most
        self.growth = growth
        self.max_wait = max_wait
        self.retries = retries
        self.timeout_code = timeout_code


async def poll(upstream: Upstream, provider: str, spec: Poll[T], *, trace_id: str | None = None) -> T:
    """Check the task until it ends; the ended task.  See the module's docstring."""
    loop = asyncio.get_running_loop()
    deadline = (loop.time() if spec.started is None else spec.started) + spec.max_wait
    delay, failures = spec.first, 0
    try:
        while True:
            if loop.time() >= deadline:
                raise UpstreamError(f"{provider} {spec.what} did not finish within {spec.max_wait:g} s",
                                    status=504, code=spec.timeout_code, provider=provider)
            await upstream.sleep(delay)
            delay = min(delay * spec.growth, spec.most)
            try:
                result = await spec.check()
            except MalformedAnswer:
                raise
            except GatewayError as e:
                if e.status not in TRANSIENT or failures >= spec.retries:
                    raise
                failures += 1
                continue
            failures = 0
            if result is not None:
                return result
    except BaseException:
        # Any way out before the task ended leaves it running and billing, with nobody to
        # take its images.
        if spec.cancel is not None:
            done, failed = spec.cancel_events
            upstream.spawn(send_afterwards(upstream, spec.cancel, provider=provider, done=done, failed=failed,
                                           trace_id=trace_id, task=spec.what))
        raise


async def send_afterwards(upstream: Upstream, req: UpstreamRequest, *, provider: str, done: str, failed: str,
                          trace_id: str | None = None, **fields: Any) -> None:
    """Send a clean-up request that outlives the client's request (cancel a task, delete an
    uploaded file): its outcome logged as ``<provider>.<done>`` or ``<provider>.<failed>``,
    never raised.  Run it with ``upstream.spawn``."""
    try:
        resp = await upstream.send(req, timeout=AFTERWARDS_TIMEOUT)
        try:
            await upstream.read_body(resp, MAX_ERROR_BODY)
        finally:
            resp.release()
    except (GatewayError, aiohttp.ClientError, TimeoutError, RuntimeError) as e:
        # GatewayError: Upstream's 502s (unreachable, reset); RuntimeError: the app's
        # session closed at shutdown.
        _log.warning(f"{provider}.{failed}", error=f"{type(e).__name__}: {e}", trace_id=trace_id, **fields)
        return
    _log.info(f"{provider}.{done}", status=resp.status, trace_id=trace_id, **fields)
