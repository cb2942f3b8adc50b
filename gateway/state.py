"""Everything one running app holds: settings, plugins, registries, the HTTP client."""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway import __version__

if TYPE_CHECKING:  # pragma: no cover
    from gateway.chain import Chain
    from gateway.plugins import GatewayPluginManager
    from gateway.registry import Registry
    from gateway.routing import Router
    from gateway.settings import Settings


class LRU(OrderedDict):
    """A small bounded mapping (parsed config headers by their exact value)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            self.move_to_end(key)
            return self[key]
        except KeyError:
            return default

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        if len(self) > self.maxsize:
            self.popitem(last=False)


class GatewayState:
    """The per-app object request handlers and plugins reach through ``ctx.gateway``."""

    def __init__(
        self, settings: Settings, pm: GatewayPluginManager, registry: Registry, chain: Chain, router: Router
    ) -> None:
        self.settings = settings
        self.pm = pm
        self.registry = registry
        self.chain = chain
        self.router = router
        self.trusted_hosts = frozenset(x.lower() for x in settings.security.trusted_hosts)
        self.config_cache = LRU(1024)
        #: Named provider credentials and saved configs (filled by create_app).
        self.virtual_keys: dict[str, Any] = {}
        self.saved_configs: dict[str, Any] = {}
        #: How retries wait; tests swap in a recorder so they never sleep.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.ready = False
        #: The response cache (created at start-up; None when no backend is set).
        self.cache: Any = None
        #: The image store behind /v1/images/files/{id} (created at start-up).
        self.images: Any = None
        #: Work that outlives a request (cache stores); drained at shutdown.
        self.tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The one upstream HTTP client of this app (created at start-up)."""
        if self._session is None:
            raise RuntimeError("the gateway's HTTP client exists only while the app runs")
        return self._session

    def open_session(self) -> aiohttp.ClientSession:
        up = self.settings.upstream
        connector = aiohttp.TCPConnector(
            limit=up.max_connections, limit_per_host=up.max_connections_per_host, ttl_dns_cache=up.dns_cache_ttl,
        )
        # total=None: a generation may take minutes; sock_read bounds silence instead.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=up.connect_timeout, sock_read=up.read_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout,
            # A shared cookie jar would hand one caller's provider cookies to the next.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True, trust_env=False, headers={"User-Agent": f"gateway/{__version__}"},
        )
        return self._session

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` in a task the app keeps until it ends (and awaits at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def drain(self, timeout: float = 10.0) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)

    async def close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
