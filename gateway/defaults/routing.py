"""Stage 4 default: run the resolved config through the router."""
from __future__ import annotations

from gateway import hookimpl
from gateway.context import RequestContext
from gateway.outcome import Outcome
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings


class Plugin:
    """Per app: the router comes from ``gateway_configure``."""

    services: Services

    @hookimpl(trylast=True)
    def gateway_configure(self, settings: Settings, registry: Registry, services: Services) -> None:
        self.services = services

    @hookimpl(trylast=True)
    async def gateway_route(self, ctx: RequestContext) -> Outcome:
        assert ctx.config is not None
        return await self.services.router.route(ctx, ctx.config)
