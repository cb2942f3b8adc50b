"""Stages 1 and 2b default: gateway keys — who is calling, what the key may use, how much.

Keys come from ``[gateway_keys.<name>]`` and the ``security.gateway_keys`` list; the
gateway is open when neither is set.  ``gateway_authenticate`` finds the key
(:class:`gateway.access.GatewayKey`, the principal); ``gateway_admit`` checks its
scope over the resolved config and takes its rate limits and budgets
(:mod:`gateway.limits`); ``gateway_request_finished`` gives back the images and
cost of a request that failed or was answered from the cache, and settles the cost taken
(``images x image_cost``, an estimate made before any work) to what the request cost when
its price is known (``ctx.record.cost``, docs/costs.md).
"""
from __future__ import annotations

import time
from typing import Any

import structlog

from gateway import hookimpl
from gateway.access import Access, GatewayKey, KeyTable, load_keys
from gateway.context import IMAGES_EDITS, IMAGES_GENERATIONS, PROXY, RequestContext, StashKey
from gateway.errors import AuthError, StartupError
from gateway.headers import API_KEY
from gateway.limits import Limiter, Taken, micros
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings

ANONYMOUS = "anonymous"
#: What a request took from its key's limits (given back when it fails).
TAKEN: StashKey[Taken] = StashKey("gateway_keys.taken")
#: The key's name bound to every log line of the request (structlog's context), reset at its end.
LOG_CONTEXT: StashKey[dict[str, Any]] = StashKey("gateway_keys.log_context")
#: The limits that count cost (settled to the request's cost once it is known).
COST_SETTINGS = frozenset({"cost_per_day", "cost_per_month"})
#: The most images one request is counted for (``n`` is checked later; counters stay small).
_MAX_COUNTED = 1_000_000


def images_asked(ctx: RequestContext) -> int:
    """The images a request counts for: ``n`` (default 1) of a generation or an edit, one
    for a passthrough ``POST`` (a provider's native generation call), else none."""
    endpoint = ctx.endpoint
    if endpoint in (IMAGES_GENERATIONS, IMAGES_EDITS):
        n = ctx.inbound.params.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return 1
        return min(n, _MAX_COUNTED)
    if endpoint == PROXY and ctx.inbound.method == "POST":
        return 1
    return 0


class Plugin:
    """Per app: the keys, the scope checker and the counters come from ``gateway_configure``."""

    keys = KeyTable([])
    access: Access
    limiter: Limiter

    @hookimpl(trylast=True)
    def gateway_configure(self, settings: Settings, registry: Registry, services: Services) -> None:
        errors: list[str] = []
        self.keys = load_keys(settings, services, errors=errors)
        if errors:
            raise StartupError("\n".join(errors))
        self.access = Access(services)
        self.limiter = Limiter(services, op_timeout=settings.cache.op_timeout,
                               when_down=settings.limits.when_store_down)

    @hookimpl(trylast=True)
    def gateway_authenticate(self, ctx: RequestContext) -> Any:
        if not len(self.keys):
            return ANONYMOUS
        given = ctx.headers.get(API_KEY)
        if not given:
            raise AuthError("Missing gateway key: send it in the x-portkey-api-key header", param=API_KEY,
                            code="missing_api_key")
        key = self.keys.match(given)
        if key is None:
            raise AuthError("Invalid gateway key in x-portkey-api-key", param=API_KEY, code="invalid_api_key")
        ctx.record.key = key.name
        # Every line logged while this request runs (a plugin's, a poll's) names the key, never the key.
        ctx.stash[LOG_CONTEXT] = structlog.contextvars.bind_contextvars(key=key.name)
        return key

    @hookimpl(trylast=True)
    async def gateway_admit(self, ctx: RequestContext) -> None:
        key = ctx.principal
        if not isinstance(key, GatewayKey):
            return
        if key.restricted:
            self.access.check(key, ctx)
        if key.limits.any():
            charges = key.limits.charges(key.name, images_asked(ctx), time.time())
            if charges:
                ctx.stash[TAKEN] = await self.limiter.take(key.name, charges)

    @hookimpl(trylast=True)
    async def gateway_request_finished(self, ctx: RequestContext, fields: dict[str, Any]) -> None:
        bound = ctx.stash.get(LOG_CONTEXT)
        if bound is not None:
            # The connection's next request (keep-alive, the same task) starts without it.
            structlog.contextvars.reset_contextvars(**bound)
        taken = ctx.stash.get(TAKEN)
        if taken is None:
            return
        record = ctx.record
        # A client who left may still be billed: what it took stays taken.
        if record.status == 499:
            return
        # Nothing was made: an error answer, or a cache hit.  The request itself still counts
        # against requests_per_minute.
        nothing = record.status >= 400 or (record.cache_status or "").endswith("HIT")
        known = record.cost is not None
        back = []
        if nothing:
            back = [c for c in taken.charges
                    if c.setting != "requests_per_minute" and not (known and c.setting in COST_SETTINGS)]
        if known:
            # The estimate settles to the request's cost (a failed split's answered calls
            # included): the difference goes back, or, when it cost more, is added (a
            # negative give-back; both counter stores subtract what they are given).
            cost = micros(record.cost) or 0
            back.extend(c._replace(amount=c.amount - cost) for c in taken.charges
                        if c.setting in COST_SETTINGS and c.amount != cost)
        await self.limiter.give_back(taken, back)
