"""Every other ``/v1/{path}``: the provider's own API, bytes streamed through both ways.

Per attempt (:meth:`Passthrough.run`):

1. build: ``provider.build_proxy`` (the client's headers less hop-by-hop ones and
   every ``x-portkey-*``, the provider key, ``provider.proxy_url`` for the URL);
2. cache: with a cache on the target and the body in hand, one lookup keyed on
   this provider-shaped request (only this target's native shape exists);
3. transform, then ``provider.authorize``;
4. send: the answer, whatever its status, is relayed as the provider sent it.

Delivery (:meth:`Passthrough.respond`) streams the upstream body to the client
chunk by chunk, inside the attempt's cache lease when there is one.
"""
from __future__ import annotations

import inspect
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from gateway import headers as h
from gateway.cache.keys import attempt_key
from gateway.cache.lease import CacheHit
from gateway.context import PROXY, StashKey
from gateway.endpoints import Endpoint, Hooks, Route
from gateway.endpoints import caching
from gateway.endpoints.relay import relay
from gateway.outcome import Outcome

if TYPE_CHECKING:  # pragma: no cover
    from gateway.attempt import Attempt
    from gateway.cache.lease import CacheLease
    from gateway.context import RequestContext
    from gateway.services import Services
    from gateway.upstream import Upstream

#: Leases taken by this request's attempts; any not delivered are given up at the end.
_LEASES: StashKey[list[CacheLease]] = StashKey("gateway.passthrough.leases")


class Passthrough(Endpoint):
    name = PROXY

    def __init__(self, services: Services, hooks: Hooks) -> None:
        self.services = services
        self.hooks = hooks

    async def handle(self, ctx: RequestContext, route: Route) -> Outcome:
        try:
            outcome = await route(ctx)
        except BaseException:
            await self._give_up(ctx, None)
            raise
        # Leases of answers a strategy dropped end now; the answer's own lives through the relay.
        await self._give_up(ctx, outcome.lease)
        return outcome

    # -- one attempt -----------------------------------------------------------------
    async def run(self, ctx: RequestContext, attempt: Attempt, upstream: Upstream) -> Outcome:
        provider = attempt.provider
        inbound = attempt.inbound
        if provider.proxy_reads_body and inbound.body is None and inbound.body_stream is not None:
            # The provider signs the body's hash: read it whole (and keep it for a retry).
            inbound.body = await read_all(inbound.body_stream)
            inbound.body_stream = None
        built: Any = provider.build_proxy(attempt)
        request = attempt.upstream = await built if inspect.isawaitable(built) else built
        lease = None
        cache = caching.target_cache(attempt.target, self.services.settings.cache)
        if cache is not None and isinstance(request.body, (bytes, type(None))):
            key = attempt_key(attempt, request, request.body or b"", ctx.principal)
            found = await caching.lookup(self.hooks, ctx, caching.query(ctx, key, cache))
            if isinstance(found, CacheHit):
                return found.outcome
            lease = found
        elif ctx.record.cache_status is None:
            ctx.record.cache_status = "DISABLED"
        try:
            if self.hooks.has_impls("gateway_transform_request"):
                await self.hooks.gateway_transform_request(ctx=ctx, attempt=attempt)
            await provider.authorize(attempt, attempt.upstream)
            resp = await upstream.send(attempt.upstream, relay=True)
        except BaseException:
            if lease is not None:
                await lease.release()
            raise
        outcome = Outcome(resp.status, h.relay_headers(resp.headers), relay=resp, provider=provider.name)
        if lease is not None:
            if outcome.ok:
                outcome.lease = lease
                ctx.stash.setdefault(_LEASES, []).append(lease)
            else:
                await lease.release()
        return outcome

    # -- the answer --------------------------------------------------------------------
    async def respond(self, ctx: RequestContext, outcome: Outcome, request: web.Request,
                      headers: dict[str, str]) -> web.StreamResponse:
        out = outcome.headers
        out.update(headers)
        if outcome.relay is None:  # a cached answer
            if "Content-Type" not in out:
                out["Content-Type"] = "application/json"
            ctx.record.bytes_out = len(outcome.body or b"")
            return web.Response(status=outcome.status, body=outcome.body, headers=out)
        async with AsyncExitStack() as stack:
            if outcome.lease is not None:
                await stack.enter_async_context(outcome.lease)
            return await relay(ctx, outcome, request, out, self.services.settings.cache.max_entry_bytes)

    async def _give_up(self, ctx: RequestContext, delivered: CacheLease | None) -> None:
        """Release the leases of this request's attempts other than ``delivered``."""
        for lease in ctx.stash.get(_LEASES) or ():
            if lease is not delivered:
                await lease.release()


async def read_all(stream: Any) -> bytes:
    """A passthrough body stream read whole."""
    if isinstance(stream, aiohttp.StreamReader):
        return await stream.read()
    return b"".join([chunk async for chunk in stream])

