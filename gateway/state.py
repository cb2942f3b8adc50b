"""The app object of the HTTP layer: the services plus the plugin manager, the hook
chain and the HTTP client.  Only handlers and the app factory hold it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

from gateway import __version__
from gateway.services import Services

if TYPE_CHECKING:  # pragma: no cover
    from gateway.chain import Chain
    from gateway.plugins import GatewayPluginManager
    from gateway.registry import Registry
    from gateway.settings import Settings


class GatewayState(Services):
    """One running app: what plugins are offered (:class:`Services`), and what only the
    core touches (the plugin manager, the hook chain, the upstream HTTP client)."""

    def __init__(self, settings: Settings, pm: GatewayPluginManager, registry: Registry, chain: Chain) -> None:
        super().__init__(settings, registry)
        self.pm = pm
        self.chain = chain
        #: The endpoint pipelines by name (set when the app is built).
        self.endpoints: dict[str, Any] = {}
        self.ready = False
        #: The client timeouts of an answer relayed chunk by chunk (silence bounded per read).
        self.relay_timeout: aiohttp.ClientTimeout | None = None
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
        # total=None: a generation may take minutes.  Silence (upstream.read_timeout) is bounded
        # per exchange by the Upstream client: see gateway/upstream.py.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=up.connect_timeout)
        self.relay_timeout = aiohttp.ClientTimeout(total=None, sock_connect=up.connect_timeout, sock_read=up.read_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout,
            # A shared cookie jar would hand one caller's provider cookies to the next.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True, trust_env=False, headers={"User-Agent": f"gateway/{__version__}"},
        )
        return self._session

    async def close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
