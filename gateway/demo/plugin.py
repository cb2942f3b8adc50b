"""The demo's plugin: registers the demo provider and runs its service for the app's lifetime.

It is handed to the app by ``gateway demo`` only (no entry point), so ``x-portkey-provider:
demo`` exists in the demo and nowhere else.
"""
from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from aiohttp import web

from gateway.demo.api import DemoApi
from gateway.demo.provider import DemoProvider
from gateway.sdk import Provider, hookimpl


class DemoPlugin:
    """The demo provider, and its service (``api``) served on ``sock`` (bound by the caller, so
    the provider's base URL is known before the app is built) while the app runs."""

    def __init__(self, api: DemoApi, sock: socket.socket) -> None:
        self.api = api
        self.sock = sock

    @property
    def base_url(self) -> str:
        """The service's API base URL, for ``[providers.demo] base_url``."""
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}/v1"

    @hookimpl
    def gateway_register_providers(self) -> list[type[Provider]]:
        return [DemoProvider]

    @hookimpl
    def gateway_lifespan(self, app: web.Application) -> AbstractAsyncContextManager[None]:
        return self._serve()

    @asynccontextmanager
    async def _serve(self) -> AsyncIterator[None]:
        runner = web.AppRunner(self.api.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, self.sock).start()
        try:
            yield
        finally:
            await runner.cleanup()
