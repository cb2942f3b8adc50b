"""Streamed answers (``stream: true``): Server-Sent Events in OpenAI's shape, whoever made the image.

A streamed request's work (the cache lookup, the routing tree, then the provider's
events or its whole answer) runs in a task that hands each event to an
:class:`EventStream` as soon as it is ready; the response writes each event the
moment it arrives (one write per event), and an SSE comment every
``images.stream_keepalive`` seconds while nothing else is sent, so a proxy's idle
time-out never cuts a long generation.

* Until the first byte is due, nothing is committed: a failure is an ordinary
  HTTP error, and routing (retries, fallback) runs as for any request.
* A provider that streams (``Capabilities.streams``) has its events relayed as
  they arrive (:func:`read_events`); one that does not is answered whole and
  the gateway sends one ``<kind>.completed`` event per image
  (:func:`completed_events`); a cached answer is sent the same way.
* After the first byte a failure is one ``event: error`` carrying an OpenAI
  error object (the openai SDK raises it), then the stream ends.
* A client that leaves cancels the task, and with it the provider call.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec
import structlog
from aiohttp import web

from gateway import json_decode
from gateway.context import StreamRecord
from gateway.errors import GatewayError, MalformedAnswer

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.outcome import Outcome

_encode = msgspec.json.Encoder().encode
_log = structlog.get_logger("gateway")

#: An SSE comment: ignored by every client, enough to keep an idle connection open.
KEEPALIVE = b": keep-alive\n\n"
#: Largest single event read from a provider (a completed 4K image in base64 is ~30 MB).
MAX_EVENT_BYTES = 64 * 1024 * 1024
_END = object()


def sse(event: str, data: bytes) -> bytes:
    """One Server-Sent Event."""
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def error_event(error: GatewayError) -> bytes:
    """``event: error`` with OpenAI's error object (the openai SDK raises it as an APIError)."""
    return sse("error", error.encode())


def completed_events(body: bytes, kind: str) -> list[bytes]:
    """One ``<kind>.completed`` event per image of a whole answer in the one answer shape
    (``b64_json``, or ``url`` when that was asked), ``usage`` on the last."""
    doc = json_decode.decode(body)
    items = doc.get("data") or []
    common = {k: doc[k] for k in ("background", "output_format", "quality", "size") if doc.get(k) is not None}
    out = []
    for i, item in enumerate(items):
        event: dict[str, Any] = {"type": f"{kind}.completed"}
        for key in ("b64_json", "url", "revised_prompt"):
            if item.get(key) is not None:
                event[key] = item[key]
        event["created_at"] = doc.get("created") or int(time.time())
        event.update(common)
        if i == len(items) - 1 and doc.get("usage") is not None:
            event["usage"] = doc["usage"]
        if doc.get("provider"):
            event["provider"] = doc["provider"]
        out.append(sse(f"{kind}.completed", _encode(event)))
    return out


async def read_events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, bytes]]:
    """``(event name, data)`` of each event a provider streams, as each one completes."""
    buf = bytearray()
    async for chunk in resp.content.iter_any():
        buf += chunk
        while True:
            end, sep = _boundary(buf)
            if end < 0:
                if len(buf) > MAX_EVENT_BYTES:
                    raise MalformedAnswer("upstream", f"an event is larger than {MAX_EVENT_BYTES} bytes")
                break
            raw = bytes(buf[:end])
            del buf[:end + sep]
            parsed = _parse(raw)
            if parsed is not None:
                yield parsed
    if buf.strip():
        parsed = _parse(bytes(buf))
        if parsed is not None:
            yield parsed


def _boundary(buf: bytearray) -> tuple[int, int]:
    """Where the first event ends (a blank line, ``\\n\\n`` or ``\\r\\n\\r\\n``), and the separator's length."""
    a, b = buf.find(b"\n\n"), buf.find(b"\r\n\r\n")
    if b >= 0 and (a < 0 or b < a):
        return b, 4
    return a, 2


def _parse(raw: bytes) -> tuple[str, bytes] | None:
    name = "message"
    data: list[bytes] = []
    for line in raw.splitlines():
        if line.startswith(b":") or not line:
            continue
        field, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if field == b"event":
            name = value.decode("utf-8", "replace")
        elif field == b"data":
            data.append(value)
    if not data:
        return None
    return name, b"\n".join(data)


class EventStream:
    """The events of one streamed request: produced by a task, written as they come.

    The producer calls :meth:`answered` once routing chose the answer, :meth:`put`
    per event and :meth:`fail` on failure; the endpoint awaits :meth:`started` (the
    answer to give if nothing is committed yet) and then :meth:`write`.
    """

    def __init__(self, ctx: RequestContext, keepalive: float) -> None:
        self.ctx = ctx
        self.keepalive = keepalive
        self.outcome: Outcome | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=4)
        self._task: asyncio.Task[None] | None = None
        self._first: Any = None
        record = ctx.record.stream = StreamRecord("native")
        self.record = record

    # -- the producer's side ---------------------------------------------------------------
    def answered(self, outcome: Outcome, mode: str) -> None:
        """Routing chose ``outcome`` (its provider and target name the stream's headers)."""
        self.outcome = outcome
        self.record.mode = mode
        # The log line names the answering target even when the stream's headers went first.
        record = self.ctx.record
        record.provider = outcome.provider or record.provider
        record.target_path = outcome.target_path or record.target_path

    async def put(self, event: bytes) -> None:
        await self._queue.put(event)

    async def fail(self, failure: Outcome | GatewayError) -> None:
        await self._queue.put(failure)

    # -- the endpoint's side ---------------------------------------------------------------
    async def started(self, produce: Callable[[EventStream], Awaitable[None]]) -> Outcome | None:
        """Run ``produce`` until its first event, failure, or the first keep-alive is due.
        A failure before then is returned (an error outcome) or raised (a request error)
        as for a request that does not stream; otherwise None: the stream starts."""
        self._task = asyncio.ensure_future(self._run(produce))
        try:
            first = await asyncio.wait_for(self._queue.get(), self.keepalive)
        except TimeoutError:
            return None
        except BaseException:
            await self.close()
            raise
        if isinstance(first, GatewayError):
            raise first
        if not isinstance(first, bytes) and first is not _END:
            return first  # an error outcome: nothing sent yet, answered as JSON
        self._first = first
        return None

    async def _run(self, produce: Callable[[EventStream], Awaitable[None]]) -> None:
        try:
            await produce(self)
        except GatewayError as e:
            await self.fail(e)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: logged with its traceback, sent as an error without one
            _log.exception("stream.crashed", trace_id=self.ctx.trace_id)
            await self.fail(GatewayError("Internal gateway error", code="internal_error"))
        finally:
            await self._queue.put(_END)

    async def write(self, request: web.Request, headers: Any) -> web.StreamResponse:
        """Send the stream: each event as it arrives, keep-alive comments between."""
        record, ctx = self.record, self.ctx
        headers["Content-Type"] = "text/event-stream"
        headers["Cache-Control"] = "no-cache"
        headers.pop("Content-Length", None)
        resp = web.StreamResponse(status=200, headers=headers)
        ctx.record.status = 200
        sent = 0
        try:
            await resp.prepare(request)
            item = self._first
            while True:
                if item is None:
                    try:
                        item = await asyncio.wait_for(self._queue.get(), self.keepalive)
                    except TimeoutError:
                        await resp.write(KEEPALIVE)
                        record.keepalives += 1
                        continue
                if item is _END:
                    record.end = record.end or "completed"
                    break
                if isinstance(item, bytes):
                    await resp.write(item)
                    sent += len(item)
                    elapsed = ctx.elapsed_ms()
                    record.events += 1
                    if record.first_event_ms is None:
                        record.first_event_ms = elapsed
                    record.last_event_ms = elapsed
                else:
                    error = item if isinstance(item, GatewayError) else item.error
                    await resp.write(error_event(error))
                    sent += 1
                    record.end = record.end or "error"
                    ctx.record.error = error.message
                    break
                item = None
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            record.end = "client_left"
            ctx.record.status = 499
            ctx.record.error = "client disconnected"
            raise
        finally:
            ctx.record.bytes_out = sent
            await self.close()
        return resp

    async def close(self) -> None:
        """Stop the producer (the client left, or the stream ended): the provider call is cancelled."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

