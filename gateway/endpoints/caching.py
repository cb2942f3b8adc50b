"""The cache as endpoint pipelines use it: which cache settings apply, and one lookup."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway import headers as h
from gateway.cache.lease import CacheHit, CacheLease, CacheQuery
from gateway.context import StashKey

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.endpoints import Hooks
    from gateway.settings import CacheSettings
    from gateway.targets import Target

#: The request-level lease of a unified request while its tree runs (core state).
REQUEST_LEASE: StashKey[CacheLease] = StashKey("gateway.cache.request_lease")


def target_cache(target: Target | None, settings: CacheSettings) -> tuple[str, int] | None:
    """``(mode, max_age)`` of the cache a target uses (its own, inherited, or
    ``[cache] default``), or None."""
    cfg: Any = target.cache if target is not None else None
    if cfg is None:
        cfg = settings.default
    if cfg is None:
        return None
    return cfg.mode, cfg.max_age if cfg.max_age is not None else settings.default_max_age


def tree_cache(node: Target, settings: CacheSettings) -> tuple[str, int] | None:
    """The cache of a whole tree: the top's (inherited by every target), else the
    first target's that sets one."""
    found = target_cache(node, settings)
    if found is not None:
        return found
    for child in node.targets:
        found = tree_cache(child, settings)
        if found is not None:
            return found
    return None


def query(ctx: RequestContext, key: str, cache: tuple[str, int]) -> CacheQuery:
    return CacheQuery(key=key, mode=cache[0], max_age=cache[1], endpoint=ctx.endpoint,
                      refresh=h.truthy(ctx.headers.get(h.CACHE_FORCE_REFRESH)))


async def lookup(hooks: Hooks, ctx: RequestContext, q: CacheQuery) -> CacheHit | CacheLease | None:
    """Ask the cache plugins; the answer's status goes on the record."""
    found = None
    if hooks.has_impls("gateway_cache_lookup"):
        found = await hooks.gateway_cache_lookup(ctx=ctx, query=q)
    ctx.record.cache_status = found.status if found is not None else "DISABLED"
    return found
