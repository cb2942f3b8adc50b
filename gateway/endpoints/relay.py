"""Relaying an open upstream answer to the client chunk by chunk, as it arrives.

Used by passthrough (the provider's native answer, byte for byte) and by a streamed
generation (Server-Sent Events, each written the moment it arrives).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.outcome import Outcome


async def relay(ctx: RequestContext, outcome: Outcome, request: web.Request, headers: Any,
                keep_limit: int) -> web.StreamResponse:
    """Stream ``outcome.relay`` to the client; with a lease on the outcome, keep a copy of up
    to ``keep_limit`` bytes and hand the complete answer to it."""
    upstream = outcome.relay
    assert upstream is not None
    record = ctx.record
    try:
        resp = web.StreamResponse(status=outcome.status, headers=headers)
        if upstream.content_length is not None:
            resp.content_length = upstream.content_length
        record.status = outcome.status
        await resp.prepare(request)
        sent = 0
        # A miss this request fills keeps a copy of what it relays, for the cache.
        keep: list[bytes] | None = [] if outcome.lease is not None else None
        try:
            # What the protocol says decides whether there is a body: never ask a
            # bodiless answer's stream for one.  aiohttp hands every bodiless answer
            # the same shared empty reader, whose iter_chunks() never ends once
            # anyone has read its end (a loop spinning without yielding).
            if not bodiless(request.method, upstream):
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                    sent += len(chunk)
                    if keep is not None:
                        if sent > keep_limit:
                            keep = None
                        else:
                            keep.append(chunk)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as e:
            # Headers are gone already: the only honest signal left is to cut the
            # connection, so the client sees a broken response, not a short one.
            record.bytes_out = sent
            record.error = f"upstream reset mid-response: {e.__class__.__name__}"
            record.status = 502
            if request.transport is not None:
                request.transport.abort()
            return resp
        record.bytes_out = sent
        await resp.write_eof()
        if keep is not None and outcome.lease is not None:
            outcome.lease.keep(outcome, b"".join(keep))
        return resp
    finally:
        upstream.release()


def bodiless(method: str, upstream: aiohttp.ClientResponse) -> bool:
    """No body follows: a HEAD, a 1xx/204/304, or a zero ``Content-Length``."""
    return (method == "HEAD" or upstream.status in (204, 304) or upstream.status < 200
            or upstream.content_length == 0)
