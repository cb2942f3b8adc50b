"""``strategy.mode = "single"``: always the first target."""
from __future__ import annotations

from gateway import hookimpl
from gateway.errors import ConfigError
from gateway.outcome import Outcome
from gateway.routing import RoutingStrategy

__version__ = "0.1.0"


class Single(RoutingStrategy):
    name = "single"

    def validate(self, node, source):  # noqa: ANN001, ANN201
        if not node.targets:
            raise ConfigError(f"Invalid config in {source}: `single` needs a target - at `$.targets`")

    async def route(self, ctx, node, router) -> Outcome:  # noqa: ANN001
        return await router.run(ctx, node.targets[0])


@hookimpl
def gateway_register_routing_strategies() -> list[type]:
    return [Single]
