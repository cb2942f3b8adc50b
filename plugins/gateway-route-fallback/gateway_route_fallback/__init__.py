"""``strategy.mode = "fallback"``: targets in order until one answers well."""
from __future__ import annotations

from gateway import hookimpl
from gateway.outcome import Outcome
from gateway.routing import CannotServe, RoutingStrategy

__version__ = "0.1.0"


class Fallback(RoutingStrategy):
    """Tries each target in turn.  Moves on after a non-2xx answer, or, with
    ``strategy.on_status_codes``, only after one of those statuses.  A target that
    cannot serve the request at all (provider not installed, endpoint not
    supported) is skipped.  When every target fails, the last answer is returned."""

    name = "fallback"

    async def route(self, ctx, node, router) -> Outcome:  # noqa: ANN001
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
