"""Access tokens kept until shortly before they expire, fetched once for every request that
needs one meanwhile, and the HTTP call that fetches them.

The cache holds a token per identity under a key that names the identity without its
secret (:attr:`gateway_azure_openai.identity.Source.key`).  A token is replaced
:data:`REFRESH_BEFORE` seconds before it expires (half its lifetime, for one that lives
less than twice that).  The fetch runs as its own task: a request that goes away does
not fail the others waiting for the same token, and the fetch stops when the last one
goes.  Tokens are never logged and never put in a message.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import aiohttp

from gateway.sdk import MAX_ERROR_BODY, Answer, UpstreamError, UpstreamRequest

__all__ = ["CONNECT_TIMEOUT", "MAX_IDENTITIES", "REFRESH_BEFORE", "Fetch", "TokenCache", "send"]

#: A cached token is replaced this many seconds before it expires.
REFRESH_BEFORE = 300.0
#: Tokens kept at most: one per identity in use.
MAX_IDENTITIES = 1024
#: Seconds to connect to an identity endpoint (IMDS does not answer at all off Azure).
CONNECT_TIMEOUT = 5.0

#: Fetches a token: ``(token, seconds it lives)``.
Fetch = Callable[[], Awaitable[tuple[str, float]]]


class _Token(NamedTuple):
    value: str
    #: On the cache's clock: when to fetch a new one.
    refresh_at: float


class _Flight:
    """A fetch under way, and how many requests wait for it."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Future[str]) -> None:
        self.task = task
        self.waiters = 0


class TokenCache:
    """Tokens by identity key; one fetch at a time per key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: The clock expiries are read on (tests move it on).
        self.clock = clock
        self._tokens: OrderedDict[str, _Token] = OrderedDict()
        self._flights: dict[str, _Flight] = {}

    async def get(self, key: str, fetch: Fetch) -> str:
        """The token for ``key``: the cached one while it is fresh, else the one ``fetch`` gets."""
        found = self._tokens.get(key)
        if found is not None and self.clock() < found.refresh_at:
            self._tokens.move_to_end(key)
            return found.value
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = _Flight(asyncio.ensure_future(self._fetch(key, fetch)))
            flight.task.add_done_callback(lambda _: self._settled(key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if not flight.waiters and not flight.task.done():
                flight.task.cancel()

    def forget(self, key: str) -> None:
        """Drop the token for ``key``: the next request fetches a new one."""
        self._tokens.pop(key, None)

    async def _fetch(self, key: str, fetch: Fetch) -> str:
        started = self.clock()
        token, lifetime = await fetch()
        margin = min(REFRESH_BEFORE, lifetime / 2)
        self._tokens[key] = _Token(token, started + lifetime - margin)
        self._tokens.move_to_end(key)
        while len(self._tokens) > MAX_IDENTITIES:
            self._tokens.popitem(last=False)
        return token

    def _settled(self, key: str, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved: a failure nobody awaits any more is not reported as lost


async def send(request: UpstreamRequest, provider: str, what: str, timeout: float) -> Answer:
    """Send a token request to an identity endpoint the operator configured (the authority
    host, IMDS, App Service's local endpoint) and read the answer whole.

    The core hands ``authorize`` no HTTP client, and its per-attempt client sends every host
    but the provider's own through the address guard, which (rightly) refuses IMDS's
    link-local address and App Service's loopback endpoint: these requests go through a
    short-lived client of their own (a token is fetched about once an hour per identity).
    ``what`` names the endpoint in the 502 when it cannot be reached.
    """
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, CONNECT_TIMEOUT))
    try:
        async with aiohttp.ClientSession(timeout=client_timeout, cookie_jar=aiohttp.DummyCookieJar(),
                                         trust_env=False) as session:
            async with session.request(request.method, request.url, headers=request.headers, data=request.body,
                                       allow_redirects=False) as resp:
                body = bytearray()
                while len(body) < MAX_ERROR_BODY:
                    more = await resp.content.read(MAX_ERROR_BODY - len(body))
                    if not more:
                        break
                    body += more
                return Answer(resp.status, resp.headers, bytes(body))
    except (aiohttp.ClientError, TimeoutError) as e:
        why = "it did not answer in time" if isinstance(e, TimeoutError) else e.__class__.__name__
        raise UpstreamError(f"{provider}: {what} could not be reached ({why})", provider=provider,
                            code="identity_endpoint_unreachable") from None
