"""aiohttp handlers: read the request, drive the hook chain, write the answer."""
from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

import aiohttp
import msgspec
import structlog
from aiohttp import web

from gateway import headers as h
from gateway.chain import PluginError
from gateway.cache.service import Unavailable
from gateway.context import IMAGES_FILES, IMAGES_GENERATIONS, PROXY, RequestContext
from gateway.errors import (
    BadRequest,
    GatewayError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    UpstreamError,
)
from gateway.keys import CTX, GATEWAY
from gateway.outcome import Outcome
from gateway.routing import needs_body_bytes

if TYPE_CHECKING:  # pragma: no cover
    from gateway.state import GatewayState

_log = structlog.get_logger("gateway")

_RETRY_AFTER = ("retry-after", "retry-after-ms", "x-ms-retry-after-ms")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class GenerationView(msgspec.Struct):
    """The few fields of an images.generations body the gateway itself needs.

    Not a gatekeeper: unknown fields are ignored here and forwarded as they are.
    """

    prompt: str
    model: str | None = None
    n: int | None = None
    size: str | None = None
    response_format: str | None = None


_decode_generation = msgspec.json.Decoder(GenerationView).decode


async def images_generations(request: web.Request) -> web.StreamResponse:
    return await _handle(request, IMAGES_GENERATIONS, "/images/generations")


async def passthrough(request: web.Request) -> web.StreamResponse:
    return await _handle(request, PROXY, "/" + request.match_info["tail"])


async def image_file(request: web.Request) -> web.StreamResponse:
    """``GET /v1/images/files/{id}``: an image the gateway stored, under the same auth as the rest."""
    gw: GatewayState = request.app[GATEWAY]
    ctx = RequestContext(request, gw, IMAGES_FILES, request.path[len("/v1"):])
    try:
        try:
            ctx.principal = await gw.chain.gateway_authenticate(ctx=ctx)
            try:
                image = await gw.images.get(request.match_info["image_id"])
            except Unavailable:
                raise UpstreamError("The image store is unavailable", status=503, code="image_store_unavailable") from None
            if image is None:
                raise NotFound("No such image (it may have expired)", code="image_not_found")
            headers = {h.TRACE_ID: ctx.trace_id, "Content-Type": image.content_type,
                       "Cache-Control": f"private, max-age={max(0, int(image.expires - time.time()))}"}
            ctx.status = 200
            if image.path is not None:
                resp: web.StreamResponse = web.FileResponse(image.path, headers=headers)
                ctx.bytes_out = os.path.getsize(image.path)
            else:
                resp = web.Response(body=image.data, headers=headers)
                ctx.bytes_out = len(image.data or b"")
            return resp
        except GatewayError as e:
            return await _error_response(ctx, e)
    finally:
        await _finish(ctx, gw)


def image_url(ctx: RequestContext, image_id: str) -> str:
    """The absolute URL of a stored image, as the caller can reach it."""
    base = ctx.gateway.settings.images.public_url
    if not base:
        base = f"{ctx.request.scheme}://{ctx.request.host}"
    return f"{base.rstrip('/')}/v1/images/files/{image_id}"


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    if not gw.ready:
        return web.json_response({"status": "not ready"}, status=503)
    return web.json_response({"status": "ready"})


async def _handle(request: web.Request, endpoint: str, path: str) -> web.StreamResponse:
    gw: GatewayState = request.app[GATEWAY]
    chain = gw.chain
    ctx = RequestContext(request, gw, endpoint, path)
    request[CTX] = ctx
    response: web.StreamResponse | None = None
    try:
        try:
            ctx.principal = await chain.gateway_authenticate(ctx=ctx)
            ctx.metadata  # validates x-portkey-metadata up front: a bad one is a 400 before any work
            await _read_body(ctx, gw)
            ctx.config = await chain.gateway_resolve_config(ctx=ctx)
            if ctx.config is None:
                raise BadRequest("No routing config could be resolved for this request")
            if ctx.body_stream is not None and needs_body_bytes(ctx.config, gw.settings.cache.default is not None):
                # A retry or another target sends the same bytes again; a cache key reads them.
                ctx.body_stream = await _read_all(ctx.body_stream)
            outcome = await chain.gateway_route(ctx=ctx)
            response = await _respond(ctx, outcome)
        except GatewayError as e:
            response = await _error_response(ctx, e)
        except PluginError as e:
            _log.error("plugin.error", plugin=e.plugin, hook=e.hook, error=str(e.__cause__))
            response = await _error_response(ctx, GatewayError(f"Internal error in plugin {e.plugin!r}", code="plugin_error"))
        except Exception:  # a bug: logged with its traceback, answered as JSON without one
            _log.exception("request.crashed", trace_id=ctx.trace_id)
            response = await _error_response(ctx, GatewayError("Internal gateway error", code="internal_error"))
        return response
    except asyncio.CancelledError:
        ctx.status = 499
        ctx.error = "client disconnected"
        raise
    finally:
        await _finish(ctx, gw)
        # Break the request <-> context cycle so the request is freed by reference
        # counting, not by the (much costlier) cycle collector.
        del request[CTX]


async def _read_body(ctx: RequestContext, gw: GatewayState) -> None:
    request = ctx.request
    limit = gw.settings.server.max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body of {length} bytes is over the limit of {limit} bytes")
    if ctx.endpoint == PROXY:
        if request.method in _METHODS_WITH_BODY and (length or request.body_exists):
            ctx.body_stream = _limited(ctx, request.content, limit) if length is None else request.content
            ctx.bytes_in = length or 0
        return
    ctype = request.content_type if request.headers.get("Content-Type") else "application/json"
    if ctype != "application/json":
        raise UnsupportedMediaType(
            f"Unsupported content type {ctype!r} for /v1{ctx.path}: send application/json",
            param="content-type",
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes") from None
    ctx.bytes_in = len(body)
    ctx.body = body
    if not body:
        raise BadRequest("Request body is empty: expected a JSON object with a `prompt`", code="invalid_body")
    try:
        view = _decode_generation(body)
    except msgspec.ValidationError as e:
        raise _view_error(str(e)) from None
    except msgspec.DecodeError as e:
        raise BadRequest(f"Malformed JSON body: {e}", code="invalid_json") from None
    if not view.prompt.strip():
        raise BadRequest("`prompt` must not be empty", param="prompt", code="missing_required_parameter")
    ctx.view = view
    ctx.model = view.model


def _view_error(msg: str) -> BadRequest:
    if msg.startswith("Expected `object`"):
        return BadRequest("Request body must be a JSON object", code="invalid_body")
    if "missing required field `prompt`" in msg:
        return BadRequest("Missing required parameter: `prompt`", param="prompt", code="missing_required_parameter")
    param = None
    if " - at `$." in msg:
        param = msg.rpartition(" - at `$.")[2].rstrip("`").split(".")[0].split("[")[0]
    return BadRequest(f"Invalid request body: {msg}", param=param, code="invalid_parameter")


async def _limited(ctx: RequestContext, stream: aiohttp.StreamReader, limit: int):  # noqa: ANN202
    """Relay a chunked request body, failing once it passes ``limit`` bytes."""
    seen = 0
    async for chunk, _ in stream.iter_chunks():
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes")
        ctx.bytes_in = seen
        yield chunk


async def _read_all(stream) -> bytes:  # noqa: ANN001
    if isinstance(stream, aiohttp.StreamReader):
        return await stream.read()
    return b"".join([chunk async for chunk in stream])


def _gateway_headers(ctx: RequestContext, outcome: Outcome | None) -> dict[str, str]:
    out = {h.TRACE_ID: ctx.trace_id}
    if outcome is not None:
        if outcome.provider:
            out[h.RESP_PROVIDER] = outcome.provider
        out[h.RESP_LAST_USED] = outcome.target_path
        out[h.RESP_RETRY_COUNT] = str(ctx.retry_count or 0)
    out[h.RESP_CACHE_STATUS] = ctx.cache_status or "DISABLED"
    return out


async def _respond(ctx: RequestContext, outcome: Outcome) -> web.StreamResponse:
    ctx.target_path = outcome.target_path
    ctx.provider = outcome.provider or ctx.provider
    if outcome.error is not None:
        return await _error_response(ctx, outcome.error, outcome)
    headers = outcome.headers
    headers.update(_gateway_headers(ctx, outcome))
    if outcome.relay is None:
        if "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        ctx.status = outcome.status
        ctx.bytes_out = len(outcome.body or b"")
        if outcome.cache is not None and outcome.body is not None:
            _store_later(ctx, outcome, outcome.body)
        return web.Response(status=outcome.status, body=outcome.body, headers=headers)
    return await _relay(ctx, outcome, headers)


async def _relay(ctx: RequestContext, outcome: Outcome, headers) -> web.StreamResponse:  # noqa: ANN001
    upstream = outcome.relay
    assert upstream is not None
    try:
        resp = web.StreamResponse(status=outcome.status, headers=headers)
        if upstream.content_length is not None:
            resp.content_length = upstream.content_length
        ctx.status = outcome.status
        await resp.prepare(ctx.request)
        sent = 0
        # A miss this request leads keeps a copy of what it relays, for the cache.
        keep: list[bytes] | None = [] if outcome.cache is not None else None
        limit = ctx.gateway.settings.cache.max_entry_bytes
        try:
            # What the protocol says decides whether there is a body: never ask a
            # bodiless answer's stream for one.  aiohttp hands every bodiless answer
            # the same shared empty reader, whose iter_chunks() never ends once
            # anyone has read its end (a loop spinning without yielding).
            if not _bodiless(ctx.request.method, upstream):
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                    sent += len(chunk)
                    if keep is not None:
                        if sent > limit:
                            keep = None
                        else:
                            keep.append(chunk)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as e:
            # Headers are gone already: the only honest signal left is to cut the
            # connection, so the client sees a broken response, not a short one.
            ctx.bytes_out = sent
            ctx.error = f"upstream reset mid-response: {e.__class__.__name__}"
            ctx.status = 502
            transport = ctx.request.transport
            if transport is not None:
                transport.abort()
            return resp
        ctx.bytes_out = sent
        await resp.write_eof()
        if keep is not None:
            _store_later(ctx, outcome, b"".join(keep))
        return resp
    finally:
        upstream.release()


def _bodiless(method: str, upstream: aiohttp.ClientResponse) -> bool:
    """No body follows: a HEAD, a 1xx/204/304, or a zero ``Content-Length``."""
    return (method == "HEAD" or upstream.status in (204, 304) or upstream.status < 200
            or upstream.content_length == 0)


def _store_later(ctx: RequestContext, outcome: Outcome, body: bytes) -> None:
    """Store a complete answer in a task the app tracks; the client does not wait."""
    pending = outcome.cache
    held = ctx.extra.get("cache.held")
    if held is not None and held.get(pending.key):
        held[pending.key] = False  # the store task releases it now, not the request's end
        release = True
    else:
        release = False

    async def store() -> None:
        try:
            await ctx.gateway.chain.gateway_cache_store.notify(ctx=ctx, pending=pending, outcome=outcome, body=body)
        finally:
            if release and ctx.gateway.cache is not None:
                await ctx.gateway.cache.release(pending.key)

    ctx.gateway.spawn(store())


async def _error_response(ctx: RequestContext, error: GatewayError, outcome: Outcome | None = None) -> web.StreamResponse:
    ctx.status = error.status
    ctx.error = error.message
    if error.provider and not ctx.provider:
        ctx.provider = error.provider
    resp = await ctx.gateway.chain.gateway_handle_error(ctx=ctx, error=error)
    for name, value in _gateway_headers(ctx, outcome).items():
        resp.headers[name] = value
    for name, value in error.headers.items():
        resp.headers[name] = value
    if outcome is not None:
        for name in _RETRY_AFTER:
            if name in outcome.headers:
                resp.headers[name] = outcome.headers[name]
    ctx.bytes_out = resp.content_length or 0
    return resp


async def _finish(ctx: RequestContext, gw: GatewayState) -> None:
    chain = gw.chain
    try:
        fields: dict = {}
        for extra in chain.gateway_log_fields.call_sync(ctx=ctx):
            fields.update(extra)
    except Exception as e:  # logging must never break an answered request
        _log.error("log.failed", error=f"{e.__class__.__name__}: {e}")
        fields = {"trace_id": ctx.trace_id, "status": ctx.status}
    await chain.gateway_request_finished.notify(ctx=ctx, fields=fields)


__all__ = ["images_generations", "passthrough", "healthz", "readyz", "UpstreamError"]
