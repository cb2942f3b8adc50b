"""``strategy.mode = "fallback"``: targets in order until one answers well."""
from __future__ import annotations

from gateway.sdk import (
    CannotServe,
    Outcome,
    RequestContext,
    Router,
    RoutingStrategy,
    StrategyConfig,
    Target,
    hookimpl,
)

__version__ = "0.1.0"


class FallbackConfig(StrategyConfig):
    """``strategy`` of a fallback node."""

    #: Statuses that move on to the next target; by default every non-2xx does.
    on_status_codes: list[int] | None = None


class Fallback(RoutingStrategy):
    """Tries each target in turn.  Moves on after a non-2xx answer, or, with
    ``strategy.on_status_codes``, only after one of those statuses.  A target that
    cannot serve the request at all (provider not installed, endpoint not
    supported) is skipped.  When every target fails, the last answer is returned."""

    name = "fallback"
    Config = FallbackConfig

    async def route(self, ctx: RequestContext, node: Target, router: Router) -> Outcome:
        assert isinstance(node.strategy, FallbackConfig)
        codes = node.strategy.on_status_codes
        outcome: Outcome | None = None
        skipped: CannotServe | None = None
        for child in node.targets:
            try:
                nxt = await router.run(ctx, child)
            except CannotServe as e:
                skipped = e
                continue
            if outcome is not None:
                outcome.release()
            outcome = nxt
            done = outcome.status not in codes if codes is not None else outcome.ok
            if done:
                break
        if outcome is None:
            assert skipped is not None
            raise skipped
        return outcome


@hookimpl
def gateway_register_routing_strategies() -> list[type]:
    return [Fallback]
