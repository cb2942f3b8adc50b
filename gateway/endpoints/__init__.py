"""Endpoint pipelines: how each kind of request runs, one module per endpoint.

* :mod:`.generations`: ``POST /v1/images/generations``;
* :mod:`.passthrough`: every other ``/v1/...`` path, to the provider's own API;
* :mod:`.image_files`: ``GET /v1/images/files/{id}``.

An endpoint has two levels.  :meth:`Endpoint.handle` runs once per request,
around the routing tree (the request-level cache lookup lives there).
:meth:`Endpoint.run` is one attempt at one leaf target, called by the router
for every try; it reads top to bottom: build the request, look in the cache,
transform, send, read, deliver.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from gateway.attempt import Attempt
    from gateway.context import RequestContext
    from gateway.outcome import Outcome
    from gateway.upstream import Upstream

#: Runs the request's routing tree (the ``gateway_route`` stage).
Route = Callable[["RequestContext"], Awaitable["Outcome"]]


class Hooks(Protocol):
    """The request hooks an endpoint drives (the app's hook chain)."""

    def has_impls(self, name: str) -> bool: ...

    gateway_cache_lookup: Any
    gateway_transform_request: Any


class Endpoint:
    """One kind of request.  Subclasses are built once per app with its services."""

    #: The endpoint name (``ctx.endpoint``, ``Capabilities.endpoints``).
    name: str = ""

    async def handle(self, ctx: RequestContext, route: Route) -> Outcome:
        """The whole request: ``route`` runs the config tree (calling :meth:`run` per attempt)."""
        return await route(ctx)

    async def run(self, ctx: RequestContext, attempt: Attempt, upstream: Upstream) -> Outcome:
        """One attempt at one leaf target."""
        raise NotImplementedError

    async def respond(self, ctx: RequestContext, outcome: Outcome, request: web.Request,
                      headers: dict[str, str]) -> web.StreamResponse:
        """Write a successful outcome to the client (``headers``: the gateway's own)."""
        raise NotImplementedError
