"""The interface of routing strategies (``strategy.mode`` values), shipped as plugins.

A strategy decides which children of a config node run, in which order, and
which outcome stands.  It runs a child with ``await router.run(ctx, child)``
(a leaf is tried with its retries; a node with ``targets`` goes to its own
strategy), and must ``release()`` every outcome it drops: an outcome may hold
an open upstream answer.  A child that raises :class:`~gateway.errors.CannotServe`
could not serve the request at all (a fallback skips it).

A strategy with fields of its own under ``strategy`` declares them as a
:class:`StrategyConfig` subclass in ``Config``; the core checks them with the
field's path when the config is parsed.

Every strategy's ``strategy`` may carry ``cb_config`` (:mod:`gateway.circuit`): the core
leaves children whose circuit is open out of the node it hands to :meth:`RoutingStrategy.route`
(unless the strategy sets ``circuit_breaker = False``).
"""
from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import msgspec

from gateway.circuit import CircuitBreakerConfig

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.outcome import Outcome
    from gateway.targets import Target


class StrategyConfig(msgspec.Struct, frozen=True, kw_only=True, tag_field="mode"):
    """``strategy`` of a config node.  Unknown fields are ignored (configs written for
    Portkey's hosted product carry some); a subclass declares the fields it reads."""

    #: The circuit breaker of this node's targets (inherited by nodes below that set none).
    cb_config: CircuitBreakerConfig | None = None

    @property
    def mode(self) -> str:
        """The ``strategy.mode`` value."""
        return type(self).__struct_config__.tag  # type: ignore[return-value]


class Router(Protocol):
    """What a strategy may ask of the core's router."""

    async def run(self, ctx: RequestContext, node: Target) -> Outcome:
        """Run ``node``: a leaf with its retries, or a node through its own strategy."""
        ...


class RoutingStrategy:
    """Base class of routing strategies."""

    #: The ``strategy.mode`` value.
    name: ClassVar[str] = ""
    #: The fields this strategy reads under ``strategy`` (besides ``mode``).
    Config: ClassVar[type[StrategyConfig]] = StrategyConfig
    #: Whether the core leaves targets whose circuit is open out of the node ``route`` gets
    #: (off for a strategy whose rules name the target: ``conditional``).
    circuit_breaker: ClassVar[bool] = True

    def validate(self, node: Target, source: str) -> None:
        """Check a parsed node using this strategy; raise ``ConfigError`` naming the path
        (``node.json_path``) and ``source`` (where the config came from)."""

    async def route(self, ctx: RequestContext, node: Target, router: Router) -> Outcome:
        """Produce the node's outcome, calling ``router.run(ctx, child)`` for children."""
        raise NotImplementedError


def tagged_config(strategy: type[RoutingStrategy]) -> Any:
    """The strategy's ``Config`` tagged with its mode, for the registry's union."""
    name = "".join(part.capitalize() for part in strategy.name.replace("-", "_").split("_")) + "Strategy"
    return types.new_class(name, (strategy.Config,), {"tag": strategy.name})
