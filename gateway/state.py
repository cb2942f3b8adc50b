"""The app object of the HTTP layer: the services plus the plugin manager, the hook
chain and the HTTP client.  Only handlers and the app factory hold it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver

from gateway import __version__
from gateway.services import Services
from gateway.ssrf import GuardedResolver

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
        self._guarded: aiohttp.ClientSession | None = None
        #: The name resolver under the guarded pool (None: the system's, in a thread).
        #: Tests put a stub here before the app starts, standing in for DNS.
        self.resolver: AbstractResolver | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The one upstream HTTP client of this app (created at start-up)."""
        if self._session is None:
            raise RuntimeError("the gateway's HTTP client exists only while the app runs")
        return self._session

    @property
    def guarded_session(self) -> aiohttp.ClientSession:
        """The HTTP client of every connection a caller can influence (custom hosts, URLs a
        provider answered with): its resolver lets through only addresses the
        :class:`~gateway.ssrf.AddressPolicy` allows.  A pool of its own, so no connection or
        cached DNS answer of the operator's own (trusted) hosts is ever reused for one."""
        if self._guarded is None:
            raise RuntimeError("the gateway's HTTP client exists only while the app runs")
        return self._guarded

    def open_session(self) -> aiohttp.ClientSession:
        up = self.settings.upstream
        # total=None: a generation may take minutes.  Silence (upstream.read_timeout) is bounded
        # per exchange by the Upstream client: see gateway/upstream.py.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=up.connect_timeout)
        self.relay_timeout = aiohttp.ClientTimeout(total=None, sock_connect=up.connect_timeout, sock_read=up.read_timeout)
        self._session = self._client(aiohttp.TCPConnector(
            limit=up.max_connections, limit_per_host=up.max_connections_per_host, ttl_dns_cache=up.dns_cache_ttl,
        ), timeout)
        self._guarded = self._client(aiohttp.TCPConnector(
            limit=up.max_connections, limit_per_host=up.max_connections_per_host, ttl_dns_cache=up.dns_cache_ttl,
            resolver=GuardedResolver(self.address_policy, self.resolver),
        ), timeout)
        return self._session

    @staticmethod
    def _client(connector: aiohttp.TCPConnector, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout,
            # A shared cookie jar would hand one caller's provider cookies to the next.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True, trust_env=False, headers={"User-Agent": f"gateway/{__version__}"},
        )

    async def close_session(self) -> None:
        for session in (self._session, self._guarded):
            if session is not None:
                await session.close()
        self._session = self._guarded = None
