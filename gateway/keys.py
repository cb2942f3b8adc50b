"""Every typed key the gateway stores on an aiohttp app."""
from __future__ import annotations

from aiohttp import web

from gateway.state import GatewayState

GATEWAY = web.AppKey("gateway.state", GatewayState)
