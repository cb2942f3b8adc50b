"""The app's services, as plugins see them: handed over once by ``gateway_configure``.

No request hook reaches the app through ``ctx``.  A plugin that needs a service
(the cache, the image store, a place to run work after the answer) keeps the
:class:`Services` it was given at start-up.  ``cache`` and ``images`` exist
while the app runs (they are opened at start-up, closed at clean-up).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from gateway.ssrf import AddressPolicy

if TYPE_CHECKING:  # pragma: no cover
    from gateway.cache.service import CacheService
    from gateway.images.store import ImageStore
    from gateway.images.urls import ImageUrls
    from gateway.metrics import Metrics
    from gateway.pricing import PriceBook
    from gateway.requestlog.admin import AdminKey
    from gateway.requestlog.store import LogStore
    from gateway.requestlog.writer import LogWriter
    from gateway.registry import Registry
    from gateway.router import Router
    from gateway.settings import Settings


class Services:
    """What one running app offers its plugins and endpoint pipelines."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        #: Named provider credentials and saved configs (from the settings file).
        self.virtual_keys: dict[str, Any] = {}
        self.saved_configs: dict[str, Any] = {}
        #: Where a caller-influenced connection may go (``security.trusted_hosts``).
        self.address_policy = AddressPolicy.from_settings(settings.security.trusted_hosts, settings.server.host)
        #: The response cache (opened at start-up).
        self.cache: CacheService | None = None
        #: The image store behind /v1/images/files/{id} (opened at start-up).
        self.images: ImageStore | Any = None
        #: Where image URLs point and the secret that signs them (its secret settled at start-up).
        self.image_urls: ImageUrls | Any = None
        #: The Prometheus metrics (``gateway.defaults.metrics``), or None when they are off.
        self.metrics: Metrics | None = None
        #: Every provider's prices and the settings' (``gateway.defaults.costs``), or None when off.
        self.prices: PriceBook | None = None
        #: The admin key of ``GET /v1/logs`` and the web UI (:class:`gateway.requestlog.admin.AdminKey`).
        self.admin: AdminKey | Any = None
        #: The request log's writer (``submit(record)`` never waits) and its store, while the
        #: request log is on and the app runs (``gateway.defaults.request_log``); else None.
        self.request_log: LogWriter | None = None
        self.log_store: LogStore | None = None
        #: Runs a config tree (set when the app is built).
        self.router: Router | Any = None
        #: How retries and polls wait; tests swap in a recorder so they never sleep.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        #: Work that outlives a request (cache stores, cancels); drained at shutdown.
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in a task the app keeps until it ends (and awaits at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def drain(self, timeout: float = 10.0) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
