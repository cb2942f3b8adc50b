"""Hook specifications for gateway plugins.

Two tiers (see ``docs/architecture.md``):

* **Startup hooks** are synchronous and called through pluggy a handful of times
  while an app is built: registries, config sections, lifespans.
* **Request-chain hooks** run once per request, may be ``async def`` and are
  driven by :mod:`gateway.chain` from pluggy's own implementation lists, in
  pluggy's order (LIFO, ``tryfirst``/``trylast``).  They are never called as
  ``pm.hook.X(...)``.  ``wrapper=True`` on them is refused at start-up.

A request walks: authenticate -> resolve config -> route (per target: cache
lookup -> transform -> upstream) -> log.  Each hook's docstring states its
Mode (first result or collected), whether it may be Async, and what it Returns.
Every request hook takes ``ctx`` (a :class:`gateway.context.RequestContext`)
first, so new facts become ``ctx`` attributes and signatures never change.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from contextlib import AbstractAsyncContextManager

    from aiohttp import web

    from gateway.cache.backend import CacheBackend
    from gateway.cache.service import Pending
    from gateway.context import RequestContext
    from gateway.errors import GatewayError
    from gateway.images.store import ImageStore
    from gateway.outcome import Outcome
    from gateway.plugins import GatewayPluginManager
    from gateway.provider import Call, Provider
    from gateway.registry import Registry
    from gateway.routing import RoutingStrategy
    from gateway.settings import Settings
    from gateway.targets import Target

hookspec = pluggy.HookspecMarker("gateway")
hookimpl = pluggy.HookimplMarker("gateway")

# --------------------------------------------------------------------------
# Startup: registration (sync; called through pluggy while an app is built)
# --------------------------------------------------------------------------


@hookspec(historic=True)
def gateway_addhooks(pm: GatewayPluginManager) -> None:
    """Add hook specifications of a plugin's own with ``pm.add_hookspecs``.

    Mode: historic.  Async: no.  Returns: nothing.
    """


@hookspec
def gateway_register_providers() -> list[type[Provider]]:
    """Return the :class:`gateway.provider.Provider` classes a plugin ships.

    Mode: collected; every provider ``name`` must be unique across plugins.
    Async: no.  Returns: a list of Provider subclasses.
    """


@hookspec
def gateway_register_routing_strategies() -> list[type[RoutingStrategy]]:
    """Return :class:`gateway.routing.RoutingStrategy` classes (``strategy.mode`` values).

    Mode: collected; every strategy ``name`` must be unique.  Async: no.
    Returns: a list of RoutingStrategy subclasses.
    """


@hookspec
def gateway_register_cache_backends() -> list[type[CacheBackend]]:
    """Return :class:`gateway.cache.backend.CacheBackend` classes (``cache.backend`` values).

    Mode: collected; every backend ``name`` must be unique.  Async: no.
    Returns: a list of CacheBackend subclasses.
    """


@hookspec
def gateway_register_image_stores() -> list[type[ImageStore]]:
    """Return :class:`gateway.images.store.ImageStore` classes (``images.store`` values).

    Mode: collected; every store ``name`` must be unique.  Async: no.
    Returns: a list of ImageStore subclasses.
    """


@hookspec
def gateway_register_config_sections() -> dict[str, type]:
    """Declare top-level config-file sections owned by a plugin.

    Mode: collected.  Async: no.  Returns: ``{section_name: msgspec.Struct type}``;
    the section is validated against the type at start-up and the decoded value
    is available as ``settings.sections[section_name]``.
    """


@hookspec(historic=True)
def gateway_configure(settings: Settings, registry: Registry) -> None:
    """Called once per app after settings are validated and registries filled.

    Mode: historic (a plugin registered later is called at registration).
    Async: no.  Returns: nothing.  Raise ``gateway.errors.StartupError`` to refuse.
    """


@hookspec
def gateway_lifespan(app: web.Application) -> AbstractAsyncContextManager[None] | None:
    """Return an async context manager entered at app start-up and exited at clean-up.

    Mode: collected; each is appended to ``app.cleanup_ctx`` in call order.
    Async: no (the context manager itself is async).  Returns: a context manager or None.
    """


# --------------------------------------------------------------------------
# Request chain (async def allowed; driven by gateway.chain, never pm.hook)
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def gateway_authenticate(ctx: RequestContext) -> Any | None:
    """Stage 1, auth: decide who the caller is.

    Mode: first result (``None`` means "not mine, ask the next one").  Async: yes.
    Returns: a principal (any object; the built-in one is a str) stored as
    ``ctx.principal``.  Raise ``gateway.errors.AuthError`` to reject outright.
    """


@hookspec(firstresult=True)
def gateway_resolve_config(ctx: RequestContext) -> Target | None:
    """Stage 2, config resolve: build the routing tree for this request.

    Mode: first result.  Async: yes.  Returns: the root
    :class:`gateway.targets.Target` (stored as ``ctx.config``), or None.
    Raise ``gateway.errors.ConfigError`` for a bad config (a 400).
    """


@hookspec(firstresult=True)
def gateway_route(ctx: RequestContext) -> Outcome | None:
    """Stage 3, route: walk ``ctx.config`` and produce the upstream outcome.

    Mode: first result.  Async: yes.  The built-in implementation delegates
    each node with ``targets`` to the routing strategy its ``strategy.mode``
    names and runs leaves through the provider.  Returns: an
    :class:`gateway.outcome.Outcome`.
    """


@hookspec(firstresult=True)
def gateway_cache_lookup(ctx: RequestContext, call: Call) -> Outcome | None:
    """Stage 3a, cache lookup: answer one target's call from a cache.

    Called for every leaf attempt after the provider built its upstream
    request (so the key can include the provider-shaped request) and before
    it is sent.  Mode: first result.  Async: yes.  Returns: an Outcome to
    serve instead of calling upstream, or None.  Set ``ctx.cache_status``.
    """


@hookspec
def gateway_cache_store(ctx: RequestContext, pending: Pending, outcome: Outcome, body: bytes) -> None:
    """Stage 3b, cache store: a miss this request led has a complete 2xx answer.

    Called after the answer was sent to the client, in a task the app tracks
    (so the client never waits for it), with the whole body.  Mode: collected.
    Async: yes.  Returns: nothing.  The single-flight lock is released after
    every implementation ran.
    """


@hookspec
def gateway_transform_request(ctx: RequestContext, call: Call) -> None:
    """Stage 4, transform: edit ``call.upstream`` (headers, URL, body) in place.

    Called after the provider built the upstream request and after the cache
    lookup missed.  Mode: collected (every implementation runs, in pluggy
    order).  Async: yes.  Returns: nothing.
    """


@hookspec
def gateway_log_fields(ctx: RequestContext) -> dict[str, Any] | None:
    """Stage 5, log: add fields to the one canonical ``request.finished`` line.

    Mode: collected; dicts are merged in call order.  Async: no.
    Returns: a dict or None.  Never return secrets.
    """


@hookspec
def gateway_request_finished(ctx: RequestContext, fields: dict[str, Any]) -> None:
    """Stage 5, log: the request is answered; ``fields`` is the canonical log record.

    Mode: collected notification; an exception in one implementation is
    logged and does not affect the others.  Async: yes.  Returns: nothing.
    The built-in implementation writes the ``request.finished`` line.
    """


@hookspec(firstresult=True)
def gateway_handle_error(ctx: RequestContext, error: GatewayError) -> web.StreamResponse | None:
    """Render a gateway error as an HTTP response.

    Mode: first result.  Async: yes.  Returns: a response, or None to let the
    next implementation (ultimately the built-in OpenAI-shaped JSON) answer.
    """
