"""Hook specifications for gateway plugins.

Plugin API: everything a plugin imports comes from :mod:`gateway.sdk` (providers,
strategies, cache leases, image stores, errors, ``hookimpl``); nothing else in
the core is promised to stay.

Two tiers (see ``docs/architecture.md``):

* **Startup hooks** are synchronous and called through pluggy a handful of times
  while an app is built: registries, config sections, ``gateway_configure``
  (where a plugin gets the app's :class:`~gateway.services.Services`), lifespans.
* **Request-chain hooks** run once per request (or per attempt), may be
  ``async def`` and are driven by :mod:`gateway.chain` from pluggy's own
  implementation lists, in pluggy's order (LIFO, ``tryfirst``/``trylast``).
  They are never called as ``pm.hook.X(...)``; ``wrapper=True`` on them is
  refused at start-up.  Each takes ``ctx`` (a
  :class:`~gateway.context.RequestContext`) first, so new facts become ``ctx``
  attributes and signatures never change.

A request walks: :func:`gateway_request_started` -> :func:`gateway_authenticate` -> :func:`gateway_resolve_config`
-> :func:`gateway_admit` -> :func:`gateway_cache_lookup` (unified routes) -> :func:`gateway_route`, which
for every try of a leaf runs the endpoint pipeline (build -> cache lookup on
passthrough -> :func:`gateway_transform_request` -> send) -> the answer ->
:func:`gateway_log_fields` and :func:`gateway_request_finished`.  Errors at any
stage are rendered by :func:`gateway_handle_error`.  Each docstring states its
Mode (first result, collected, historic), whether it may be Async, what it
Returns, and its side effects.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from contextlib import AbstractAsyncContextManager

    import msgspec
    from aiohttp import web

    from gateway.attempt import Attempt
    from gateway.cache.backend import CacheBackend
    from gateway.cache.lease import CacheHit, CacheLease, CacheQuery
    from gateway.context import RequestContext
    from gateway.errors import GatewayError
    from gateway.images.store import ImageStore
    from gateway.outcome import Outcome
    from gateway.plugins import GatewayPluginManager
    from gateway.provider import Provider
    from gateway.registry import Registry
    from gateway.requestlog.store import LogStore
    from gateway.services import Services
    from gateway.settings import Settings
    from gateway.strategy import RoutingStrategy
    from gateway.targets import Target

hookspec = pluggy.HookspecMarker("gateway")
hookimpl = pluggy.HookimplMarker("gateway")

# --------------------------------------------------------------------------
# Startup: registration (sync; called through pluggy while an app is built)
# --------------------------------------------------------------------------


@hookspec(historic=True)
def gateway_addhooks(pm: GatewayPluginManager) -> None:
    """Add hook specifications of a plugin's own with ``pm.add_hookspecs``.

    :param pm: the app's plugin manager.

    Mode: historic.  Async: no.  Returns: nothing.
    """


@hookspec
def gateway_register_providers() -> list[type[Provider]]:
    """Return the :class:`gateway.sdk.Provider` classes a plugin ships.

    The core builds one instance per app with its ``[providers.<name>]`` settings.

    Mode: collected; every provider ``name`` must be unique across plugins.
    Async: no.  Returns: a list of Provider subclasses.
    """


@hookspec
def gateway_register_routing_strategies() -> list[type[RoutingStrategy]]:
    """Return :class:`gateway.sdk.RoutingStrategy` classes (``strategy.mode`` values).

    The core builds one instance per app (no arguments); a strategy's ``Config``
    declares the fields it reads under ``strategy``.

    Mode: collected; every strategy ``name`` must be unique.  Async: no.
    Returns: a list of RoutingStrategy subclasses.
    """


@hookspec
def gateway_register_cache_backends() -> list[type[CacheBackend]]:
    """Return :class:`gateway.sdk.CacheBackend` classes (``cache.backend`` values).

    Mode: collected; every backend ``name`` must be unique.  Async: no.
    Returns: a list of CacheBackend subclasses.
    """


@hookspec
def gateway_register_image_stores() -> list[type[ImageStore]]:
    """Return :class:`gateway.sdk.ImageStore` classes (``images.store`` values).

    Mode: collected; every store ``name`` must be unique.  Async: no.
    Returns: a list of ImageStore subclasses.
    """


@hookspec
def gateway_register_log_stores() -> list[type[LogStore]]:
    """Return :class:`gateway.sdk.LogStore` classes (``request_log.store`` values).

    The request log builds the one its settings name with ``from_services(services)``
    at start-up, starts it (migrations) and writes every request's record to it.

    Mode: collected; every store ``name`` must be unique.  Async: no.
    Returns: a list of LogStore subclasses.
    """


@hookspec
def gateway_register_config_sections() -> dict[str, type[msgspec.Struct]]:
    """Declare top-level settings-file sections owned by a plugin (``[redis]``).

    Mode: collected.  Async: no.  Returns: ``{section_name: msgspec.Struct type}``;
    the section is validated against the type at start-up and the decoded value
    is available as ``settings.sections[section_name]``.
    """


@hookspec(historic=True)
def gateway_configure(settings: Settings, registry: Registry, services: Services) -> None:
    """Called once per app after settings are validated and registries filled.

    :param settings: the validated settings (plugin sections in ``settings.sections``).
    :param registry: providers, strategies, cache backends and image stores by name.
    :param services: the app's services; keep it for request hooks (``services.cache``
        and ``services.images`` exist while the app runs).

    Mode: historic (a plugin registered later is called at registration).
    Async: no.  Returns: nothing.  Raise ``gateway.sdk.StartupError`` to refuse.
    """


@hookspec
def gateway_lifespan(app: web.Application) -> AbstractAsyncContextManager[None] | None:
    """Return an async context manager entered at app start-up and exited at clean-up.

    :param app: the aiohttp application.

    Mode: collected; each is appended to ``app.cleanup_ctx`` in call order.
    Async: no (the context manager itself is async).  Returns: a context manager or None.
    """


@hookspec
def gateway_add_routes(router: web.UrlDispatcher, services: Services) -> None:
    """Add HTTP routes of a plugin's own (a web UI, an admin API) to the app.

    :param router: the app's router, holding the core's routes (``/v1/images/...``,
        ``/healthz``); the passthrough's ``/v1/{path}`` and the JSON 404 come after every
        plugin's routes, so a plugin route below ``/v1`` wins over the passthrough.
    :param services: the app's services (as :func:`gateway_configure` gets them).

    Mode: collected, called once per app after :func:`gateway_configure`.  Async: no
    (the handlers are).  Returns: nothing.  A handler answers errors in the gateway's
    JSON shape itself; the request chain does not run for these routes.
    """


# --------------------------------------------------------------------------
# Request chain (async def allowed; driven by gateway.chain, never pm.hook)
# --------------------------------------------------------------------------


@hookspec
def gateway_request_started(ctx: RequestContext) -> None:
    """Stage 0: a request has arrived, before any work (authentication included).

    :param ctx: the request: ``ctx.inbound`` holds its method, path and headers;
        nothing is checked yet.

    Mode: collected notification; an exception in one implementation is logged and
    does not affect the others.  Async: yes.  Returns: nothing.  Every request that
    gets this gets :func:`gateway_request_finished` too (the metrics plugin counts
    requests in flight with the pair).
    """


@hookspec(firstresult=True)
def gateway_authenticate(ctx: RequestContext) -> Any | None:
    """Stage 1, auth: decide who the caller is.

    :param ctx: the request; ``ctx.inbound.headers`` holds what the caller sent.

    Mode: first result (``None`` means "not mine, ask the next one").  Async: yes.
    Returns: a principal (any object with a stable ``str()``; the built-in one is a
    str), stored as ``ctx.principal``; the cache keys on it, so two principals never
    share an entry.  Raise ``gateway.sdk.AuthError`` to reject outright.
    """


@hookspec(firstresult=True)
def gateway_resolve_config(ctx: RequestContext) -> Target | None:
    """Stage 2, config resolve: build the routing tree for this request.

    :param ctx: the request, authenticated, its body read (``ctx.inbound.params``).

    Mode: first result.  Async: yes.  Returns: the root
    :class:`gateway.targets.Target` (stored as ``ctx.config``), or None.
    Raise ``gateway.sdk.ConfigError`` for a bad config (a 400).
    """


@hookspec
def gateway_admit(ctx: RequestContext) -> None:
    """Stage 2b, admit: may this caller run this request, now?

    Called once per request on the unified routes and the passthrough, after the
    config is resolved and before the cache lookup or any upstream call: the place
    for checks over the whole ``ctx.config`` tree (which virtual keys, saved
    configs, providers, custom hosts the caller's key may use) and for rate limits
    and budgets.

    :param ctx: the request: authenticated (``ctx.principal``), its body read, its
        config resolved (``ctx.config``).

    Mode: collected (every implementation runs, in pluggy order).  Async: yes.
    Returns: nothing.  Raise a ``gateway.sdk.GatewayError`` to refuse (403 for a
    scope, 429 with ``Retry-After`` in ``headers`` for a limit).  Side effects: what
    an implementation counts it may give back in :func:`gateway_request_finished`
    (the built-in one does when the request failed or the cache answered).
    """


@hookspec(firstresult=True)
def gateway_cache_lookup(ctx: RequestContext, query: CacheQuery) -> CacheHit | CacheLease | None:
    """Stage 3, cache lookup: answer from a cache, or take a lease to fill it.

    Called once per request on the unified routes, before any strategy draws a
    target; on passthrough once per target attempt, after the provider built the
    request (the key is that provider-shaped request).  Only called when the
    config or ``[cache] default`` turns a cache on.

    :param ctx: the request (``ctx.principal`` is part of ``query.key``).
    :param query: the key, ``mode`` (``simple``/``semantic``), ``max_age`` and
        ``refresh`` (``x-portkey-cache-force-refresh``).

    Mode: first result.  Async: yes.  Returns: a :class:`gateway.sdk.CacheHit`
    (served as it is, nothing sent upstream), a :class:`gateway.sdk.CacheLease`
    (a miss this request fills: the core enters it around the work and the
    delivery, calls ``lease.keep(outcome, body)`` once with a complete 2xx answer,
    and leaving it without ``keep`` gives it up), or None (no cache).  The core
    records ``HIT``/``MISS``/``REFRESH``/``DISABLED`` from the answer's ``status``.
    """


@hookspec(firstresult=True)
def gateway_route(ctx: RequestContext) -> Outcome | None:
    """Stage 4, route: walk ``ctx.config`` and produce the upstream outcome.

    :param ctx: the request with ``ctx.config`` resolved.

    The built-in implementation runs, in order: a node with ``targets`` goes to
    the strategy its ``strategy.mode`` names, which calls back for its children;
    a leaf runs with its retries, each try an attempt that resolves the
    virtual key and provider, checks the custom host, and runs the endpoint
    pipeline within the attempt's time limit: for generations negotiate ->
    ``provider.build_generation`` -> :func:`gateway_transform_request` ->
    ``provider.authorize`` -> ``provider.generate`` -> deliver; for passthrough
    ``provider.build_proxy`` -> :func:`gateway_cache_lookup` ->
    :func:`gateway_transform_request` -> ``provider.authorize`` -> send.

    Mode: first result.  Async: yes.  Returns: an :class:`gateway.sdk.Outcome`.
    Side effects: ``ctx.record`` (provider, attempts, retry count).
    """


@hookspec
def gateway_transform_request(ctx: RequestContext, attempt: Attempt) -> None:
    """Stage 5, transform: edit ``attempt.upstream`` (headers, URL, body) in place.

    Called for every upstream request the gateway is about to send (each part of
    an ``n`` split), after the provider built it and before the provider
    authorizes it (so a signature covers the edit).

    :param ctx: the request.
    :param attempt: the attempt: ``attempt.upstream`` is the request to edit;
        ``attempt.target``, ``attempt.provider`` and ``attempt.params`` say where it goes.

    Mode: collected (every implementation runs, in pluggy order).  Async: yes.
    Returns: nothing.
    """


@hookspec
def gateway_log_fields(ctx: RequestContext) -> dict[str, Any] | None:
    """Stage 6, log: add fields to the one canonical ``request.finished`` line.

    :param ctx: the answered request; ``ctx.record`` holds what the core learned.

    Mode: collected; dicts are merged in call order.  Async: no.
    Returns: a dict or None.  Never return secrets.
    """


@hookspec
def gateway_request_finished(ctx: RequestContext, fields: dict[str, Any]) -> None:
    """Stage 6, log: the request is answered; ``fields`` is the canonical log record.

    :param ctx: the answered request.
    :param fields: the merged ``gateway_log_fields`` results.

    Mode: collected notification; an exception in one implementation is
    logged and does not affect the others.  Async: yes.  Returns: nothing.
    The built-in implementation writes the ``request.finished`` line.
    """


@hookspec(firstresult=True)
def gateway_handle_error(ctx: RequestContext, error: GatewayError) -> web.StreamResponse | None:
    """Render a gateway error as an HTTP response.

    :param ctx: the request (``ctx.record`` already says the error's status).
    :param error: the error; ``error.status``, ``error.body()`` give OpenAI's shape.

    Mode: first result.  Async: yes.  Returns: a response, or None to let the
    next implementation (ultimately the built-in OpenAI-shaped JSON) answer.
    The core adds the ``x-portkey-*`` answer headers to it.
    """
