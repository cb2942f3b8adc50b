"""``POST /v1/images/generations``: how a generation runs, the same way for every provider.

Per request (:meth:`Generations.handle`): one cache lookup keyed on the unified
request, the caller and the config (so a repeat is a hit whichever target a
strategy draws), then the routing tree inside the lease, then the answer is kept.

Per attempt (:meth:`Generations.run`, called by the router for every try of a leaf):

1. negotiate: the client's parameters against the model's capabilities
   (:func:`gateway.negotiation.negotiate`), lenient or strict, split into one
   request per upstream call when the model makes fewer images per call;
2. build: ``provider.build_generation`` for each part;
3. transform: ``gateway_transform_request`` plugins edit each request;
4. authorize: ``provider.authorize`` (a signature over the final bytes);
5. send and parse: ``provider.generate`` (send, map errors, ``parse_generation``),
   the parts in parallel, merged in order;
6. deliver: the images in the asked ``response_format``, in the one answer shape.

A parameter the target cannot take raises before any request is built (a fallback
skips such a target); once a request is built, a gateway error (a refused
signature, the provider's error, a malformed answer) is the attempt's outcome.

``stream: true`` (:meth:`Generations.streamed`): the same request runs in a task
feeding an :class:`~gateway.endpoints.streaming.EventStream`; a provider that
streams has its events relayed as they arrive (a completed image turned into a
gateway URL when ``url`` was asked), any other answer becomes one completed event
per image; the cache stores the whole answer once the stream completed, and a hit
is sent as completed events.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec
from aiohttp import web
from multidict import CIMultiDict

from gateway import json_decode
from gateway import headers as h
from gateway.cache.keys import request_key
from gateway.cache.lease import CacheHit
from gateway.context import ANSWER_BODY, HANDED_ON_URLS, IMAGES_GENERATIONS, StashKey
from gateway.endpoints import Endpoint, Hooks, Route
from gateway.endpoints import caching
from gateway.endpoints.delivery import Delivery, answer_body, handed_on_urls, merge_extra
from gateway.endpoints.streaming import EventStream, completed_events, read_events, sse
from gateway.errors import BadParam, GatewayError, MalformedAnswer, UpstreamError
from gateway.images.sniff import output_media_type
from gateway.negotiation import negotiate
from gateway.outcome import Outcome
from gateway.pricing import charge, note_hit
from gateway.upstream import MAX_ERROR_BODY, Answer

if TYPE_CHECKING:  # pragma: no cover
    from gateway.attempt import Attempt
    from gateway.context import RequestContext
    from gateway.generation import GenerationPlan, GenerationRequest, GenerationResult
    from gateway.services import Services
    from gateway.upstream import Upstream

#: Upstream answer headers that describe the upstream body, not the gateway's.
_BODY_HEADERS = ("Content-Type", "Content-Encoding", "Content-Disposition", "ETag", "Last-Modified")
#: The delivery of the attempt whose native stream is relayed (its completed images may become URLs).
_STREAM_DELIVERY: StashKey[tuple[Delivery, str | None]] = StashKey("gateway.generations.stream_delivery")
#: The attempt and request of the native stream relayed, priced once its images are made.
_STREAM_CALL: StashKey[tuple[Attempt, GenerationRequest]] = StashKey("gateway.generations.stream_call")
_decode = json_decode.decode
_encode = msgspec.json.Encoder().encode


class Generations(Endpoint):
    name = IMAGES_GENERATIONS
    #: The ``type`` prefix of streamed events (``image_generation.completed``).
    event_kind = "image_generation"

    def __init__(self, services: Services, hooks: Hooks) -> None:
        self.services = services
        self.hooks = hooks

    # -- the request ---------------------------------------------------------------
    async def handle(self, ctx: RequestContext, route: Route) -> Outcome:
        if self.services.prices is not None:
            ctx.record.cost = 0.0  # nothing billed yet; each billed call adds its cost
        if ctx.inbound.params.get("stream") is True:
            return await self.streamed(ctx, route)
        assert ctx.config is not None
        cache = caching.tree_cache(ctx.config, self.services.settings.cache)
        if cache is None:
            ctx.record.cache_status = "DISABLED"
            return await route(ctx)
        key = request_key(ctx.inbound, ctx.principal, ctx.config)
        found = await caching.lookup(self.hooks, ctx, caching.query(ctx, key, cache))
        if isinstance(found, CacheHit):
            self._hit(ctx, found.outcome)
            if ctx.record.cost_saved is not None:
                # Beside the hit's x-gateway-cost of 0.  Here, not with the gateway's headers: a miss
                # does no work for it, and a streamed hit (no x-gateway-cost either) does not get it.
                found.outcome.headers[h.RESP_COST_SAVED] = f"{ctx.record.cost_saved:.6f}"
            return found.outcome
        if found is None:
            return await route(ctx)
        async with found as lease:
            ctx.stash[caching.REQUEST_LEASE] = lease
            outcome = await route(ctx)
            if outcome.ok and outcome.body is not None and outcome.cacheable and self._kept(outcome):
                self._keep(ctx, lease, outcome)
        return outcome

    def _hit(self, ctx: RequestContext, outcome: Outcome) -> None:
        """A cache hit costs nothing: the cost it was stored with is what it saved."""
        saved = outcome.headers.popall(h.RESP_COST, [None])[-1]
        if self.services.prices is not None:
            note_hit(ctx.record, saved)

    def _keep(self, ctx: RequestContext, lease: Any, outcome: Outcome) -> None:
        """Store the answer, with what it cost (a hit's saving), when that is known."""
        if ctx.record.cost is not None:
            outcome.headers[h.RESP_COST] = f"{ctx.record.cost:.6f}"
        lease.keep(outcome, outcome.body or b"")

    def _kept(self, outcome: Outcome) -> bool:
        """Whether the target that answered caches (a tree may cache some targets only)."""
        return caching.target_cache(outcome.target, self.services.settings.cache) is not None

    # -- a streamed request -----------------------------------------------------------
    async def streamed(self, ctx: RequestContext, route: Route) -> Outcome:
        """``stream: true``: the request runs as a task feeding an event stream.  What fails
        before the first byte is due is answered as an ordinary error."""
        stream = EventStream(ctx, self.services.settings.images.stream_keepalive)
        failed = await stream.started(lambda s: self._produce(ctx, route, s))
        if failed is not None:
            return failed
        outcome = Outcome(200, provider=None, target_path="")
        if stream.outcome is not None:  # routing chose its answer before the stream started
            outcome.provider, outcome.target_path = stream.outcome.provider, stream.outcome.target_path
            outcome.headers = CIMultiDict(
                (k, v) for k, v in stream.outcome.headers.items() if k not in _BODY_HEADERS)
        outcome.stream = stream
        return outcome

    async def _produce(self, ctx: RequestContext, route: Route, stream: EventStream) -> None:
        """Everything a streamed request does, each event handed to ``stream`` when it is ready."""
        assert ctx.config is not None
        cache = caching.tree_cache(ctx.config, self.services.settings.cache)
        if cache is None:
            ctx.record.cache_status = "DISABLED"
            await self._events(ctx, await route(ctx), stream)
            return
        found = await caching.lookup(self.hooks, ctx, caching.query(ctx, request_key(ctx.inbound, ctx.principal,
                                                                                      ctx.config), cache))
        if isinstance(found, CacheHit):
            self._hit(ctx, found.outcome)
            await self._events(ctx, found.outcome, stream, mode="cache")
            return
        if found is None:
            await self._events(ctx, await route(ctx), stream)
            return
        async with found as lease:
            ctx.stash[caching.REQUEST_LEASE] = lease
            outcome = await route(ctx)
            whole = await self._events(ctx, outcome, stream)
            if whole is not None and whole.cacheable and self._kept(outcome):
                self._keep(ctx, lease, whole)

    async def _events(self, ctx: RequestContext, outcome: Outcome, stream: EventStream,
                      mode: str = "synthesized") -> Outcome | None:
        """Hand ``outcome``'s events to the stream; the whole answer (for the cache) once complete."""
        if outcome.error is not None:
            await stream.fail(outcome)
            return None
        if outcome.relay is not None:
            stream.answered(outcome, "native")
            return await self._relay(ctx, outcome, stream)
        stream.answered(outcome, mode)
        assert outcome.body is not None
        ctx.stash[ANSWER_BODY] = outcome.body
        body = self.services.image_urls.render(outcome.body, ctx.inbound.origin)
        for event in completed_events(body, self.event_kind):
            await stream.put(event)
        return outcome

    async def _relay(self, ctx: RequestContext, outcome: Outcome, stream: EventStream) -> Outcome | None:
        """A provider's events as they arrive; a completed image kept as a gateway URL when ``url``
        was asked.  The answer they make, in the one answer shape, when the stream completed."""
        resp = outcome.relay
        assert resp is not None
        delivery, fmt = ctx.stash[_STREAM_DELIVERY]
        completed: list[dict[str, Any]] = []
        whole = True
        try:
            async for name, data in read_events(resp):
                if name.endswith(".completed"):
                    event = _decode(data)
                    if fmt == "url" and isinstance(event, dict) and isinstance(event.get("b64_json"), str):
                        # The whole answer (for the cache) keeps the host-free signed path; the
                        # caller gets it on its own base.
                        event["url"] = path = await delivery.store(_b64(outcome.provider, event.pop("b64_json")),
                                                                   output_media_type(event.get("output_format")))
                        data = _encode({**event, "url": self.services.image_urls.absolute(path, ctx.inbound.origin)})
                    completed.append(event if isinstance(event, dict) else {})
                elif name == "error":
                    whole = False
                    ctx.record.stream.end = "error"  # type: ignore[union-attr]
                await stream.put(sse(name, data))
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as e:
            ctx.record.stream.end = "upstream_reset"  # type: ignore[union-attr]
            await stream.fail(UpstreamError(
                f"{outcome.provider} closed the stream before it completed ({e.__class__.__name__}); the image "
                "may have been made and billed", provider=outcome.provider, code="upstream_reset"))
            return None
        except msgspec.DecodeError as e:
            await stream.fail(MalformedAnswer(outcome.provider or "provider", f"a streamed event is not JSON: {e}"))
            return None
        except MalformedAnswer as e:
            await stream.fail(e)
            return None
        finally:
            resp.release()
        ctx.record.images = len(completed)
        usage = [e["usage"] for e in completed if isinstance(e.get("usage"), dict)]
        if usage:
            ctx.record.usage = merge_extra([{"usage": u} for u in usage])["usage"]
        if completed:  # the images made were billed, whatever became of the stream after
            attempt, part = ctx.stash[_STREAM_CALL]
            self._charge(ctx, attempt, part, ctx.record.usage if usage else None, len(completed))
        if not whole or not completed:
            return None
        answer = _whole_answer(outcome, completed)
        ctx.stash[ANSWER_BODY] = answer.body or b""
        return answer

    # -- one attempt -----------------------------------------------------------------
    async def run(self, ctx: RequestContext, attempt: Attempt, upstream: Upstream) -> Outcome:
        provider = attempt.provider
        plan = attempt.plan = negotiate(attempt)
        await self.prepare(plan)
        if attempt.params.get("stream") is True and provider.capabilities.streams:
            return await self._stream(ctx, attempt, upstream)
        attempts = [await self._build(ctx, attempt, part, first=i == 0) for i, part in enumerate(plan.parts)]
        try:
            results = await self._generate(ctx, attempts, plan.parts, upstream)
            images = [img for r in results for img in r.images]
            delivery = Delivery(self.services, attempt, upstream, self._cached_for(ctx, attempt))
            as_given = len(results) == 1 and results[0].raw is not None and delivery.as_given(
                images, plan.response_format)
            data = None if as_given else await delivery.items(images, plan.response_format)
        except GatewayError as e:
            return Outcome.from_error(e, provider=provider.name)
        handed = handed_on_urls(images, data)
        if handed:
            ctx.stash[HANDED_ON_URLS] = handed
        # The answers' other fields as one (token usage summed over the calls of a split).
        extra = merge_extra([r.extra for r in results])
        ctx.record.usage = extra.get("usage")
        ctx.record.images = len(images)
        outcome = Outcome(200, body=answer_body(provider.name, results, data, extra), provider=provider.name)
        outcome.cacheable = delivery.cacheable
        # The first call's relayed headers (request ids, rate limits) are the answer's: no copy.
        headers = outcome.headers = results[0].headers if results[0].headers is not None else CIMultiDict()
        for name in _BODY_HEADERS:
            headers.popall(name, None)
        headers["Content-Type"] = "application/json"
        if plan.adjusted:
            headers[h.RESP_ADJUSTED] = "; ".join(plan.adjusted)
        return outcome

    async def _stream(self, ctx: RequestContext, attempt: Attempt, upstream: Upstream) -> Outcome:
        """``stream: true`` to a provider that streams: its Server-Sent Events relayed as they come."""
        provider = attempt.provider
        plan = attempt.plan
        assert plan is not None
        if len(plan.parts) > 1:
            raise BadParam("n", f"A streamed generation is one upstream call: `n` {plan.n} is more than "
                                f"{provider.name} makes in one")
        await self._build(ctx, attempt, plan.parts[0], first=True)
        assert attempt.upstream is not None
        try:
            resp = await upstream.send(attempt.upstream, relay=True)
            if not 200 <= resp.status < 300:
                try:
                    body = await upstream.read_body(resp, MAX_ERROR_BODY)
                finally:
                    resp.release()
                raise provider.upstream_error(Answer(resp.status, resp.headers, body))
        except GatewayError as e:
            return Outcome.from_error(e, provider=provider.name)
        headers = h.relay_headers(resp.headers)
        if plan.adjusted:
            headers[h.RESP_ADJUSTED] = "; ".join(plan.adjusted)
        ctx.stash[_STREAM_DELIVERY] = (Delivery(self.services, attempt, upstream, self._cached_for(ctx, attempt)),
                                       plan.response_format)
        ctx.stash[_STREAM_CALL] = (attempt, plan.parts[0])
        return Outcome(resp.status, headers, relay=resp, provider=provider.name)

    async def prepare(self, plan: GenerationPlan) -> None:
        """Make the negotiated parts ready to build (nothing, for a generation)."""

    def build(self, attempt: Attempt, part: GenerationRequest) -> Any:
        """The provider's upstream request for one part (may be awaitable)."""
        return attempt.provider.build_generation(attempt, part)

    async def _build(self, ctx: RequestContext, attempt: Attempt, part: GenerationRequest, first: bool) -> Attempt:
        built: Any = self.build(attempt, part)
        request = await built if inspect.isawaitable(built) else built
        if first:
            attempt.upstream = request
            sub = attempt
        else:
            sub = attempt.sibling(request)
        if self.hooks.has_impls("gateway_transform_request"):
            await self.hooks.gateway_transform_request(ctx=ctx, attempt=sub)
        assert sub.upstream is not None
        await attempt.provider.authorize(sub, sub.upstream)
        return sub

    async def _generate(self, ctx: RequestContext, attempts: list[Attempt], parts: list[GenerationRequest],
                        upstream: Upstream) -> list[GenerationResult]:
        if len(parts) == 1:
            return [await self._billed(ctx, attempts[0], parts[0], upstream)]
        record = ctx.record
        waited, t0 = record.upstream_ms, time.perf_counter()
        try:
            return await _gather([self._billed(ctx, a, p, upstream) for a, p in zip(attempts, parts, strict=True)])
        finally:
            # Parallel waits overlap: count the wall time, not the sum.
            record.upstream_ms = min(record.upstream_ms, waited + (time.perf_counter() - t0) * 1000.0)

    async def _billed(self, ctx: RequestContext, attempt: Attempt, part: GenerationRequest,
                      upstream: Upstream) -> GenerationResult:
        """One upstream call, its cost added as soon as it answered with images: a call of a
        split that answered is billed even when another fails."""
        result = await attempt.provider.generate(attempt, part, upstream)
        self._charge(ctx, attempt, part, result.extra.get("usage"), len(result.images))
        return result

    def _charge(self, ctx: RequestContext, attempt: Attempt, part: GenerationRequest, usage: Any,
                images: int) -> None:
        prices = self.services.prices
        if prices is not None:
            provider = attempt.provider
            charge(ctx.record, prices.cost(provider, part, usage, images, provider.billed_model(attempt, part)))

    def _cached_for(self, ctx: RequestContext, attempt: Attempt) -> int | None:
        """Seconds this attempt's answer will be cached for, when it will be."""
        lease = ctx.stash.get(caching.REQUEST_LEASE)
        if lease is None or caching.target_cache(attempt.target, self.services.settings.cache) is None:
            return None
        return lease.max_age

    # -- the answer --------------------------------------------------------------------
    async def respond(self, ctx: RequestContext, outcome: Outcome, request: web.Request,
                      headers: dict[str, str]) -> web.StreamResponse:
        out = outcome.headers
        out.update(headers)
        if outcome.stream is not None:  # a stream of events, each written as it arrives
            return await outcome.stream.write(request, out)
        if "Content-Type" not in out:
            out["Content-Type"] = "application/json"
        body = outcome.body or b""
        if outcome.ok:  # stored images become signed URLs on this caller's base (a hit's too)
            ctx.stash[ANSWER_BODY] = body
            body = self.services.image_urls.render(body, ctx.inbound.origin)
        ctx.record.bytes_out = len(body)
        return web.Response(status=outcome.status, body=body, headers=out)


def _whole_answer(outcome: Outcome, completed: list[dict[str, Any]]) -> Outcome:
    """A relayed stream's completed events as the whole answer a request without ``stream`` gets."""
    first = completed[0]
    doc: dict[str, Any] = {"created": first.get("created_at") or int(time.time()), "data": [
        {k: e[k] for k in ("b64_json", "url") if k in e} for e in completed]}
    for key in ("background", "output_format", "quality", "size", "usage"):
        if first.get(key) is not None:
            doc[key] = first[key]
    doc["provider"] = outcome.provider
    headers = CIMultiDict((k, v) for k, v in outcome.headers.items() if k not in _BODY_HEADERS)
    headers["Content-Type"] = "application/json"
    whole = Outcome(200, headers, body=_encode(doc), provider=outcome.provider, target_path=outcome.target_path)
    whole.target = outcome.target
    return whole


def _b64(provider: str | None, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedAnswer(provider or "provider", "a streamed image is not valid base64") from None


async def _gather(coros: list[Any]) -> list[Any]:
    """All results in order; the first failure cancels the rest and is raised as it is."""
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(c) for c in coros]
    except BaseExceptionGroup as eg:
        first = eg.exceptions[0]
        for e in eg.exceptions:
            if isinstance(e, GatewayError):
                first = e
                break
        raise first from None
    return [t.result() for t in tasks]
