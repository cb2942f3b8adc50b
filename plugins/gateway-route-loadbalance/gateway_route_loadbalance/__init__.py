"""``strategy.mode = "loadbalance"``: one target, drawn by ``weight``."""
from __future__ import annotations

import bisect
import itertools
import random

from gateway.sdk import ConfigError, Outcome, RequestContext, Router, RoutingStrategy, Target, hookimpl

__version__ = "0.1.0"


class LoadBalance(RoutingStrategy):
    """Picks one target with probability ``weight / sum(weights)`` (weight 0 is
    never picked) and tries only that one: nest a fallback for failover."""

    name = "loadbalance"

    def __init__(self, rng: random.Random | None = None) -> None:
        #: Tests seed this for repeatable draws.
        self.rng = rng or random.Random()

    def validate(self, node: Target, source: str) -> None:
        if not any(t.weight > 0 for t in node.targets):
            where = node.json_path
            raise ConfigError(
                f"Invalid config in {source}: every target's weight is 0, so none can be picked - at `{where}.targets`"
            )

    async def route(self, ctx: RequestContext, node: Target, router: Router) -> Outcome:
        cumulative = list(itertools.accumulate(t.weight for t in node.targets))
        x = self.rng.random() * cumulative[-1]
        index = bisect.bisect_right(cumulative, x)
        return await router.run(ctx, node.targets[min(index, len(node.targets) - 1)])


@hookimpl
def gateway_register_routing_strategies() -> list[type]:
    return [LoadBalance]
