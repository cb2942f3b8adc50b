"""Default error renderer: OpenAI's error shape as JSON, with the error's status."""
from __future__ import annotations

from aiohttp import web

from gateway import hookimpl
from gateway.context import RequestContext
from gateway.errors import GatewayError


@hookimpl(trylast=True)
def gateway_handle_error(ctx: RequestContext, error: GatewayError) -> web.Response:
    return web.Response(status=error.status, body=error.encode(), content_type="application/json")
