"""Every typed key the gateway stores on an aiohttp app or request."""
from __future__ import annotations

from aiohttp import web

from gateway.context import RequestContext
from gateway.state import GatewayState

GATEWAY = web.AppKey("gateway.state", GatewayState)
CTX = web.RequestKey("gateway.ctx", RequestContext)
