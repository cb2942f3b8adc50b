"""aiohttp handlers: read the request once, drive the hook chain, write the answer.

Every request walks the same stages (``gateway/hookspecs.py``): authenticate,
the control headers and the body read once, resolve the config, then the
endpoint pipeline (``gateway/endpoints/``), which looks in the cache and routes;
the answer is written by the endpoint, and one log line closes the request.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec
import structlog
from aiohttp import web

from gateway import headers as h
from gateway.chain import PluginError
from gateway.compression import decode_body
from gateway.context import IMAGES_EDITS, IMAGES_FILES, IMAGES_GENERATIONS, PROXY, Inbound, RequestContext
from gateway.endpoints import image_files
from gateway.endpoints.passthrough import read_all
from gateway.errors import BadRequest, GatewayError, NotFound, PayloadTooLarge, UnsupportedMediaType
from gateway.forms import read_edit_form
from gateway.json_decode import Decoder
from gateway.keys import GATEWAY
from gateway.metrics import CONTENT_TYPE
from gateway.models_list import catalog
from gateway.paths import check_passthrough_path
from gateway.router import needs_body_bytes
from gateway.targets import CheckedParams

if TYPE_CHECKING:  # pragma: no cover
    from gateway.endpoints import Endpoint
    from gateway.outcome import Outcome
    from gateway.state import GatewayState

_log = structlog.get_logger("gateway")

_RETRY_AFTER = ("retry-after", "retry-after-ms", "x-ms-retry-after-ms")
#: ``Inbound.endpoint`` of a request no route serves.
_UNROUTED = "unrouted"
#: ``Inbound.endpoint`` of the gateway's own model list.
_MODELS = "models"


class GenerationView(CheckedParams, kw_only=True):
    """The few fields of an images.generations body the gateway itself checks, the prompt
    required.

    Not a gatekeeper: unknown fields are ignored here and forwarded as they are.
    """

    prompt: str


_decode_object = Decoder(dict).decode


async def images_generations(request: web.Request) -> web.StreamResponse:
    return await _handle(request, IMAGES_GENERATIONS, "/images/generations")


async def images_edits(request: web.Request) -> web.StreamResponse:
    return await _handle(request, IMAGES_EDITS, "/images/edits")


async def passthrough(request: web.Request) -> web.StreamResponse:
    return await _handle(request, PROXY, "/" + request.match_info["tail"])


async def image_file(request: web.Request) -> web.StreamResponse:
    """``GET /v1/images/files/{id}``: an image the gateway stored.  The URL's signature is the
    authorization (an ``<img src>`` sends no gateway key), so no key is asked for."""
    state: GatewayState = request.app[GATEWAY]
    ctx = RequestContext(_inbound(request, IMAGES_FILES, request.path[len("/v1"):]))
    await state.chain.gateway_request_started.notify(ctx=ctx)
    try:
        try:
            _check_request(ctx.inbound)
            return await image_files.serve(state, ctx, request.match_info["image_id"], request.query)
        except GatewayError as e:
            return await _error_response(ctx, state, e)
    finally:
        await _finish(ctx, state)


async def models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models``: with a provider named (``x-portkey-provider``, a virtual key, a
    config), the provider's own list (passthrough); without, the gateway's catalog of what
    the caller can reach, with each model's capabilities."""
    if any(request.headers.get(name) for name in (h.PROVIDER, h.VIRTUAL_KEY, h.CONFIG)):
        return await _handle(request, PROXY, "/models")
    state: GatewayState = request.app[GATEWAY]
    ctx = RequestContext(_inbound(request, _MODELS, "/models"))
    await state.chain.gateway_request_started.notify(ctx=ctx)
    try:
        _check_request(ctx.inbound)
        ctx.principal = await state.chain.gateway_authenticate(ctx=ctx)
        ctx.record.status = 200
        return web.json_response(catalog(state, ctx.principal), headers=_gateway_headers(ctx, None))
    except GatewayError as e:
        return await _error_response(ctx, state, e)
    finally:
        await _finish(ctx, state)


async def unrouted(request: web.Request) -> web.StreamResponse:
    """A path no route serves (404), or a method its route does not take (405), in the
    gateway's error shape rather than aiohttp's plain text."""
    state: GatewayState = request.app[GATEWAY]
    ctx = RequestContext(_inbound(request, _UNROUTED, request.path))
    for resource in request.app.router.resources():
        match, allowed = await resource.resolve(request)
        if match is None and allowed:
            methods = ", ".join(sorted(allowed))
            error = GatewayError(f"Method {request.method} is not allowed on this path; allowed: {methods}",
                                 status=405, type="invalid_request_error", code="method_not_allowed",
                                 headers={"Allow": methods})
            break
    else:
        # An SDK pointed at the gateway without /v1 asks for /images/generations.
        hint = "" if request.path.startswith("/v1") else "; the API is under /v1 (a client's base URL ends in /v1)"
        error = NotFound("No such path: the gateway serves /v1/images/generations, "
                         "/v1/images/edits, /v1/images/files/{id}, any other /v1/... path of the provider's own "
                         f"API, /healthz and /readyz{hint}", code="not_found")
    return await _error_response(ctx, state, error)


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus' text format (the route exists while metrics are on)."""
    return web.Response(body=request.app[GATEWAY].metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if not request.app[GATEWAY].ready:
        return web.json_response({"status": "not ready"}, status=503)
    return web.json_response({"status": "ready"})


def _inbound(request: web.Request, endpoint: str, path: str) -> Inbound:
    url = request.rel_url
    return Inbound(endpoint, request.method, path, request.headers, raw_path=url.raw_path,
                   query_string=request.query_string, raw_query_string=url.raw_query_string,
                   content_length=request.content_length, origin=request.app[GATEWAY].image_urls.base(request))


def _check_request(inbound: Inbound) -> None:
    """What no stage may see, refused before any work: a header value that is not UTF-8 text
    or a trace id the gateway cannot echo, a passthrough path that could leave the provider's
    base URL."""
    h.check_values(inbound.headers)
    if inbound.endpoint == PROXY:
        check_passthrough_path(inbound.raw_path)


async def _handle(request: web.Request, name: str, path: str) -> web.StreamResponse:
    state: GatewayState = request.app[GATEWAY]
    chain = state.chain
    ctx = RequestContext(_inbound(request, name, path))
    await chain.gateway_request_started.notify(ctx=ctx)
    try:
        try:
            _check_request(ctx.inbound)
            ctx.principal = await chain.gateway_authenticate(ctx=ctx)
            ctx.inbound.read_control_headers()
            await _read_body(ctx, request, state)
            ctx.config = await chain.gateway_resolve_config(ctx=ctx)
            if ctx.config is None:
                raise BadRequest("No routing config could be resolved for this request")
            # Scopes and limits see the whole tree, before the cache or any upstream call.
            await chain.gateway_admit(ctx=ctx)
            inbound = ctx.inbound
            if inbound.body_stream is not None and needs_body_bytes(ctx.config, state.settings.cache.default is not None):
                # A retry or another target sends the same bytes again; a cache key reads them.
                inbound.body = await read_all(inbound.body_stream)
                inbound.body_stream = None
            endpoint = state.endpoints[name]
            outcome = await endpoint.handle(ctx, chain.route)
            return await _respond(ctx, state, endpoint, outcome, request)
        except GatewayError as e:
            return await _error_response(ctx, state, e)
        except PluginError as e:
            _log.error("plugin.error", plugin=e.plugin, hook=e.hook, error=str(e.__cause__))
            return await _error_response(ctx, state, GatewayError(f"Internal error in plugin {e.plugin!r}",
                                                                  code="plugin_error"))
        except Exception:  # a bug: logged with its traceback, answered as JSON without one
            _log.exception("request.crashed", trace_id=ctx.trace_id)
            return await _error_response(ctx, state, GatewayError("Internal gateway error", code="internal_error"))
    except asyncio.CancelledError:
        ctx.record.status = 499
        ctx.record.error = "client disconnected"
        raise
    finally:
        await _finish(ctx, state)


async def _read_body(ctx: RequestContext, request: web.Request, state: GatewayState) -> None:
    inbound = ctx.inbound
    limit = state.settings.server.max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body of {length} bytes is over the limit of {limit} bytes")
    if inbound.endpoint == PROXY:
        # Whatever the method: a GET or PROPFIND may carry a body, and its bytes must follow the
        # Content-Length that goes upstream (a provider waits for them, holding a pooled connection).
        if length or request.body_exists:
            inbound.body_stream = _limited(ctx, request.content, limit) if length is None else request.content
            ctx.record.bytes_in = length or 0
        return
    ctype = request.content_type if request.headers.get("Content-Type") else "application/json"
    if inbound.endpoint == IMAGES_EDITS:
        await _read_form(ctx, request, state, ctype)
        return
    if ctype != "application/json":
        raise UnsupportedMediaType(
            f"Unsupported content type {ctype!r} for /v1{inbound.path}: send application/json",
            param="content-type",
        )
    body = await _read_whole(ctx, request, limit)
    if not body:
        raise BadRequest("Request body is empty: expected a JSON object with a `prompt`", code="invalid_body")
    # One decode: the params every stage reads, then the few fields the gateway checks.
    try:
        inbound.params = _decode_object(body)
        view = msgspec.convert(inbound.params, GenerationView)
    except msgspec.ValidationError as e:
        raise _view_error(str(e)) from None
    except msgspec.DecodeError as e:
        raise BadRequest(f"Malformed JSON body: {e}", code="invalid_json") from None
    if not view.prompt.strip():
        raise BadRequest("`prompt` must not be empty", param="prompt", code="missing_required_parameter")
    ctx.record.model = view.model


async def _read_form(ctx: RequestContext, request: web.Request, state: GatewayState, ctype: str) -> None:
    """An edit's multipart form, read whole (it may go upstream byte for byte) and parsed once."""
    if ctype != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Unsupported content type {ctype!r} for /v1/images/edits: send multipart/form-data "
            "(`image` or `image[]` files, `prompt`, ...)", param="content-type",
        )
    inbound = ctx.inbound
    body = await _read_whole(ctx, request, state.settings.server.max_body_bytes)
    inbound.form, inbound.params = await read_edit_form(body, request.headers["Content-Type"], state.settings.images)
    model = inbound.params.get("model")
    ctx.record.model = model if isinstance(model, str) else None


async def _read_whole(ctx: RequestContext, request: web.Request, limit: int) -> bytes:
    """The request body read whole under ``limit`` (a 413 above it) and decoded from its
    ``Content-Encoding`` (within the same limit), kept as ``inbound.body``."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes") from None
    ctx.record.bytes_in = len(body)
    body = decode_body(body, request.headers.get("Content-Encoding"), limit)
    ctx.inbound.body = body
    return body


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
        ctx.record.bytes_in = seen
        yield chunk


def _gateway_headers(ctx: RequestContext, outcome: Outcome | None) -> dict[str, str]:
    record = ctx.record
    out = {h.TRACE_ID: ctx.trace_id}
    if outcome is not None:
        if outcome.provider:
            out[h.RESP_PROVIDER] = outcome.provider
        if outcome.target_path:  # empty: a stream whose headers went before routing chose a target
            out[h.RESP_LAST_USED] = outcome.target_path
        out[h.RESP_RETRY_COUNT] = str(record.retry_count or 0)
    out[h.RESP_CACHE_STATUS] = record.cache_status or "DISABLED"
    out[h.RESP_OVERHEAD] = f"{overhead_ms(ctx):.2f}"
    # A stream's headers go before its images are made: its cost is on the log line only.
    if record.cost is not None and (outcome is None or outcome.stream is None):
        out[h.RESP_COST] = f"{record.cost:.6f}"
    return out


def overhead_ms(ctx: RequestContext) -> float:
    """The request's time so far less the time spent waiting on providers."""
    return max(0.0, ctx.elapsed_ms() - ctx.record.upstream_ms)


async def _respond(ctx: RequestContext, state: GatewayState, endpoint: Endpoint, outcome: Outcome,
                   request: web.Request) -> web.StreamResponse:
    record = ctx.record
    record.target_path = outcome.target_path or record.target_path
    record.provider = outcome.provider or record.provider
    if outcome.error is not None:
        return await _error_response(ctx, state, outcome.error, outcome)
    record.status = outcome.status
    return await endpoint.respond(ctx, outcome, request, _gateway_headers(ctx, outcome))


async def _error_response(ctx: RequestContext, state: GatewayState, error: GatewayError,
                          outcome: Outcome | None = None) -> web.StreamResponse:
    record = ctx.record
    record.status = error.status
    record.error = error.message
    record.error_code = error.code or error.type
    if error.provider and not record.provider:
        record.provider = error.provider
    resp = await state.chain.gateway_handle_error(ctx=ctx, error=error)
    for name, value in _gateway_headers(ctx, outcome).items():
        resp.headers[name] = value
    for name, value in error.headers.items():
        resp.headers[name] = value
    if outcome is not None:
        for name in _RETRY_AFTER:
            if name in outcome.headers:
                resp.headers[name] = outcome.headers[name]
    record.bytes_out = resp.content_length or 0
    return resp


async def _finish(ctx: RequestContext, state: GatewayState) -> None:
    chain = state.chain
    try:
        fields: dict[str, Any] = {}
        for extra in chain.gateway_log_fields.call_sync(ctx=ctx):
            fields.update(extra)
    except Exception as e:  # logging must never break an answered request
        _log.error("log.failed", error=f"{e.__class__.__name__}: {e}")
        fields = {"trace_id": ctx.trace_id, "status": ctx.record.status}
    await chain.gateway_request_finished.notify(ctx=ctx, fields=fields)


__all__ = ["healthz", "image_file", "images_edits", "images_generations", "metrics", "models", "passthrough",
           "readyz", "unrouted"]
