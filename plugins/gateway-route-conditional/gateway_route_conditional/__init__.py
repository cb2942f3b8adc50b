"""``strategy.mode = "conditional"``: the first condition that matches picks a target by name."""
from __future__ import annotations

from typing import Any

from gateway.sdk import (
    BadRequest,
    ConfigError,
    Outcome,
    RequestContext,
    Router,
    RoutingStrategy,
    StrategyConfig,
    Target,
    hookimpl,
)
from gateway_route_conditional import query

__version__ = "0.1.0"


class ConditionalConfig(StrategyConfig):
    """``strategy`` of a conditional node."""

    #: ``[{"query": {...}, "then": "<target name>"}]``, tried in order.
    conditions: list[dict[str, Any]] | None = None
    #: The target name when no condition matches.
    default: str | None = None


class Conditional(RoutingStrategy):
    """``strategy.conditions = [{query, then}]`` over ``metadata.*`` (the
    ``x-portkey-metadata`` header), ``params.*`` (the request body as sent, before
    ``override_params``) and ``url.pathname``; ``strategy.default`` when none matches."""

    name = "conditional"
    Config = ConditionalConfig
    # The condition names the target: an open circuit does not change it (Portkey's rule too).
    circuit_breaker = False

    def validate(self, node: Target, source: str) -> None:
        assert isinstance(node.strategy, ConditionalConfig)
        where = node.json_path
        names = {t.name for t in node.targets if t.name}
        conditions = node.strategy.conditions
        if not conditions:
            raise ConfigError(f"Invalid config in {source}: `conditional` needs `conditions` - at `{where}.strategy`")
        for i, cond in enumerate(conditions):
            at = f"{where}.strategy.conditions[{i}]"
            if not isinstance(cond, dict) or "query" not in cond or "then" not in cond:
                raise ConfigError(f"Invalid config in {source}: a condition needs `query` and `then` - at `{at}`")
            try:
                query.check(cond["query"])
            except query.QueryError as e:
                raise ConfigError(f"Invalid config in {source}: {e} - at `{at}.query{e.path}`") from None
            if cond["then"] not in names:
                raise ConfigError(
                    f"Invalid config in {source}: no target is named {cond['then']!r} - at `{at}.then`"
                )
        default = node.strategy.default
        if default is not None and default not in names:
            raise ConfigError(f"Invalid config in {source}: no target is named {default!r} - at `{where}.strategy.default`")

    async def route(self, ctx: RequestContext, node: Target, router: Router) -> Outcome:
        assert isinstance(node.strategy, ConditionalConfig)
        inbound = ctx.inbound
        context = {"metadata": inbound.metadata, "params": inbound.params, "url": {"pathname": "/v1" + inbound.path}}
        chosen = node.strategy.default
        for cond in node.strategy.conditions or ():
            if query.matches(cond["query"], context):
                chosen = cond["then"]
                break
        if chosen is None:
            raise BadRequest(
                "Conditional routing matched no condition and the config has no `strategy.default`",
                param="x-portkey-config", code="no_route",
            )
        target = next(t for t in node.targets if t.name == chosen)
        return await router.run(ctx, target)


@hookimpl
def gateway_register_routing_strategies() -> list[type]:
    return [Conditional]
