"""``strategy.mode = "single"``: always the first target."""
from __future__ import annotations

from gateway.sdk import ConfigError, Outcome, RequestContext, Router, RoutingStrategy, Target, hookimpl

__version__ = "0.1.0"


class Single(RoutingStrategy):
    name = "single"

    def validate(self, node: Target, source: str) -> None:
        if not node.targets:
            raise ConfigError(f"Invalid config in {source}: `single` needs a target - at `$.targets`")

    async def route(self, ctx: RequestContext, node: Target, router: Router) -> Outcome:
        return await router.run(ctx, node.targets[0])


@hookimpl
def gateway_register_routing_strategies() -> list[type]:
    return [Single]
