"""Stage 3 default: run the resolved config through the router."""
from __future__ import annotations

from gateway import hookimpl
from gateway.context import RequestContext
from gateway.outcome import Outcome


@hookimpl(trylast=True)
async def gateway_route(ctx: RequestContext) -> Outcome:
    return await ctx.gateway.router.run(ctx, ctx.config)
