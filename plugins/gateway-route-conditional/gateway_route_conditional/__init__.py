"""``strategy.mode = "conditional"``: the first condition that matches picks a target by name."""
from __future__ import annotations

from gateway import hookimpl
from gateway.errors import BadRequest, ConfigError
from gateway.outcome import Outcome
from gateway.routing import RoutingStrategy
from gateway_route_conditional import query

__version__ = "0.1.0"


class Conditional(RoutingStrategy):
    """``strategy.conditions = [{query, then}]`` over ``metadata.*`` (the
    ``x-portkey-metadata`` header), ``params.*`` (the request body as sent, before
    ``override_params``) and ``url.pathname``; ``strategy.default`` when none matches."""

    name = "conditional"

    def validate(self, node, source):  # noqa: ANN001, ANN201
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

    async def route(self, ctx, node, router) -> Outcome:  # noqa: ANN001
        context = {"metadata": ctx.metadata, "params": ctx.params, "url": {"pathname": ctx.request.path}}
        chosen = node.strategy.default
        for cond in node.strategy.conditions:
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
