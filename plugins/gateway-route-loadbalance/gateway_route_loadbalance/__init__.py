"""``strategy.mode = "loadbalance"``: one target, drawn by ``weight``; sticky on request fields."""
from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from typing import Any

from gateway.sdk import (
    CacheUnavailable,
    CannotServe,
    ConfigError,
    Outcome,
    RequestContext,
    Router,
    RoutingStrategy,
    Services,
    StrategyConfig,
    Target,
    hookimpl,
)
from gateway_route_loadbalance.sticky import StickyConfig, sticky_key

__version__ = "0.1.0"


class LoadBalanceConfig(StrategyConfig):
    """``strategy`` of a loadbalance node."""

    #: Sticky routing (this gateway's spelling, as Portkey 2.x's issue describes it; ttl default 300 s).
    sticky: StickyConfig | None = None
    #: The same, as Portkey's load-balancing page spells it (ttl default 3600 s).
    sticky_session: StickyConfig | None = None

    def sticky_settings(self) -> tuple[str, StickyConfig] | None:
        """``(field name, settings)`` of the sticky routing in force, or None."""
        for name in ("sticky", "sticky_session"):
            value = getattr(self, name)
            if value is not None and value.enabled:
                return name, value
        return None


#: Default seconds a sticky choice holds, by the field that asked for it.
DEFAULT_TTL = {"sticky": 300, "sticky_session": 3600}


class LoadBalance(RoutingStrategy):
    """Picks one target with probability ``weight / sum(weights)`` (weight 0 is
    never picked) and tries only that one: nest a fallback for failover.

    With ``strategy.sticky`` (or ``sticky_session``), requests from one caller with the
    same values of ``hash_fields`` go to the target the first of them drew, for ``ttl``
    seconds; a target that answers an error is forgotten (the next request draws again).
    The choice lives in the cache backend (shared by instances on Redis); when the cache
    cannot be reached, targets are drawn by weight."""

    name = "loadbalance"
    Config = LoadBalanceConfig

    def __init__(self, rng: random.Random | None = None) -> None:
        #: Tests seed this for repeatable draws.
        self.rng = rng or random.Random()
        #: The app's services (``gateway_configure``): the cache sticky choices live in.
        self.services: Services | None = None

    def validate(self, node: Target, source: str) -> None:
        where = node.json_path
        if not any(t.weight > 0 for t in node.targets):
            raise ConfigError(
                f"Invalid config in {source}: every target's weight is 0, so none can be picked - at `{where}.targets`"
            )
        assert isinstance(node.strategy, LoadBalanceConfig)
        cfg = node.strategy
        if cfg.sticky is not None and cfg.sticky_session is not None:
            raise ConfigError(f"Invalid config in {source}: set `sticky` or `sticky_session`, not both "
                              f"- at `{where}.strategy`")
        for name in ("sticky", "sticky_session"):
            value = getattr(cfg, name)
            if value is not None:
                problem = value.problem()
                if problem is not None:
                    message, at = problem
                    raise ConfigError(f"Invalid config in {source}: {message} - at `{where}.strategy.{name}{at}`")

    async def route(self, ctx: RequestContext, node: Target, router: Router) -> Outcome:
        assert isinstance(node.strategy, LoadBalanceConfig)
        settings = node.strategy.sticky_settings()
        cache = self.services.cache if self.services is not None else None
        key = sticky_key(ctx, node, settings[1].hash_fields) if settings is not None and cache is not None else None
        if key is None:
            return await router.run(ctx, self.draw(node.targets))
        assert settings is not None and cache is not None
        ttl = settings[1].ttl or DEFAULT_TTL[settings[0]]
        target = await self._sticky_target(cache, key, node.targets, ttl)
        try:
            outcome = await router.run(ctx, target)
        except CannotServe:
            await self._forget(cache, key)
            raise
        if not outcome.ok:
            await self._forget(cache, key)
        return outcome

    def draw(self, targets: Sequence[Target]) -> Target:
        """One target, by weight."""
        cumulative = list(itertools.accumulate(t.weight for t in targets))
        x = self.rng.random() * cumulative[-1]
        return targets[min(bisect.bisect_right(cumulative, x), len(targets) - 1)]

    async def _sticky_target(self, cache: Any, key: str, targets: Sequence[Target], ttl: int) -> Target:
        """The target remembered under ``key``, or a new draw remembered for ``ttl`` seconds.
        A remembered target that is not among ``targets`` (its circuit is open) is replaced."""
        by_path = {t.path: t for t in targets if t.weight > 0}
        try:
            remembered = await cache.get(key)
            if remembered is not None and remembered.decode() in by_path:
                return by_path[remembered.decode()]
            drawn = self.draw(targets)
            if remembered is not None:
                await cache.set(key, drawn.path.encode(), ttl)
            elif not await cache.add(key, drawn.path.encode(), ttl):
                # Another request (maybe on another instance) chose first: follow it.
                theirs = await cache.get(key)
                if theirs is not None and theirs.decode() in by_path:
                    return by_path[theirs.decode()]
            return drawn
        except CacheUnavailable:  # logged once by the cache service; draw as if not sticky
            return self.draw(targets)

    @staticmethod
    async def _forget(cache: Any, key: str) -> None:
        try:
            await cache.delete(key)
        except CacheUnavailable:
            pass


@hookimpl
def gateway_register_routing_strategies() -> list[type]:
    return [LoadBalance]


@hookimpl
def gateway_configure(settings: Any, registry: Any, services: Services) -> None:
    for strategy in registry.strategies.values():
        if isinstance(strategy, LoadBalance):
            strategy.services = services
