"""The core's HTTP client toward providers, one per attempt.

A provider never opens a connection itself.  The core hands an :class:`Upstream`
to the few provider methods that talk to the network (``generate`` of a
multi-step API such as Replicate's create/poll/cancel); everything else a
provider does is pure translation.  Every wait is added to the request's
``upstream_ms``; connection failures become 502s that name the provider.
"""
from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from gateway.errors import BadRequest, UpstreamError
from gateway.ssrf import AddressPolicy, BlockedAddress, literal_refusal

if TYPE_CHECKING:  # pragma: no cover
    from multidict import CIMultiDictProxy

    from gateway.context import Record
    from gateway.provider import UpstreamRequest

#: Largest error body read from a provider to build an error message.
MAX_ERROR_BODY = 256 * 1024
#: Request bodies above this are sent from a reader, in chunks (an edit's upload).
_LARGE_BODY = 1024 * 1024


def _blocked(provider: str, url: str, why: str, *, resolved: bool) -> BadRequest:
    """The 400 for a connection the address guard refused (nothing was sent)."""
    host = URL(url).host or ""
    return BadRequest(
        f"Refused to connect to {host} for {provider}: it {'resolves to' if resolved else 'is'} {why}; a host the "
        "request chose (or a provider's answer named) is reached only at public addresses, unless listed in "
        "security.trusted_hosts", param="x-portkey-custom-host", code="blocked_address")


class Answer:
    """A provider's answer, read whole: what ``parse_generation`` and ``error_from_response`` read."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: CIMultiDictProxy[str] | Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        """The media type without parameters (``application/json``)."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


class Upstream:
    """Sends one attempt's requests to ``provider`` over the app's connection pool."""

    __slots__ = ("provider", "_session", "_guarded", "_home", "_policy", "_record", "_silence", "_relay_timeout",
                 "spawn", "sleep")

    def __init__(self, session: aiohttp.ClientSession, record: Record, provider: str, *,
                 spawn: Callable[[Coroutine[Any, Any, Any]], Any],
                 sleep: Callable[[float], Awaitable[None]], read_timeout: float | None = None,
                 relay_timeout: aiohttp.ClientTimeout | None = None,
                 guarded: aiohttp.ClientSession | None = None, home: str | None = None,
                 policy: AddressPolicy | None = None) -> None:
        self.provider = provider
        self._session = session
        # Requests below ``home`` (the operator-set base URL's ``scheme://host:port/``) use the
        # plain pool; every other URL (a custom host, a URL from a provider's answer) goes
        # through the guarded pool, whose resolver checks every address.
        self._guarded = guarded
        self._home = home
        self._policy = policy
        self._record = record
        # ``upstream.read_timeout`` bounds a provider's silence.  An answer read whole arrives
        # all at once after the provider's work, so one deadline per exchange bounds it; a relay
        # keeps aiohttp's per-read timer (``sock_read``), which it re-arms on every chunk and
        # which costs about a tenth of a small request, so nothing else pays for it.
        self._silence = read_timeout
        self._relay_timeout = relay_timeout
        #: Run work that outlives the request (a cancel call after the client left).
        self.spawn = spawn
        #: How to wait between polls (a test seam: tests never sleep).
        self.sleep = sleep

    async def send(self, req: UpstreamRequest, *, timeout: float | None = None,
                   relay: bool = False) -> aiohttp.ClientResponse:
        """Send ``req``; the open response (the caller reads and releases it).  ``timeout``
        bounds the whole exchange; ``relay`` bounds the silence between chunks of an answer
        streamed on (``upstream.read_timeout``).  Failing to connect or to send is a 502
        naming the provider."""
        name = self.provider
        t0 = time.perf_counter()
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = aiohttp.ClientTimeout(total=timeout)
        elif relay and self._relay_timeout is not None:
            extra["timeout"] = self._relay_timeout
        session = self._session
        if self._guarded is not None and (self._home is None or not req.url.startswith(self._home)):
            session = self._guarded
            self._check_literal(req.url)
        body = req.body
        if isinstance(body, bytes) and len(body) > _LARGE_BODY:
            # Written in chunks (aiohttp's advice for large bodies); a fresh reader per send,
            # so a retry sends it again.  BytesIO shares the bytes, it does not copy them.
            body = io.BytesIO(body)
        try:
            return await session.request(
                req.method, req.url, headers=req.headers, data=body, allow_redirects=False,
                auto_decompress=req.decompress, **extra,
            )
        except aiohttp.ClientConnectorDNSError as e:
            if isinstance(e.os_error, BlockedAddress):
                raise _blocked(name, req.url, e.os_error.why, resolved=True) from None
            raise UpstreamError(f"Could not resolve {e.host} for {name}: {e.os_error.strerror or e.os_error}",
                                provider=name, code="upstream_unreachable") from None
        except aiohttp.ClientConnectorError as e:
            raise UpstreamError(
                f"Could not connect to {name} at {e.host}:{e.port}: {e.os_error.strerror or e.os_error}",
                provider=name, code="upstream_unreachable",
            ) from None
        except aiohttp.ServerDisconnectedError:
            raise UpstreamError(f"{name} closed the connection before answering", provider=name,
                                code="upstream_disconnected") from None
        except aiohttp.ClientPayloadError as e:
            raise UpstreamError(f"Sending the request body to {name} failed: {e}", provider=name,
                                code="upstream_error") from None
        except aiohttp.ClientError as e:
            raise UpstreamError(f"Request to {name} failed: {e.__class__.__name__}: {e}", provider=name,
                                code="upstream_error") from None
        except ValueError as e:
            # aiohttp refuses a header value with a control character (a key pasted with one):
            # the request's own input, and the message must not echo the value.
            if "header" not in str(e).lower():
                raise
            raise BadRequest(f"A header for {name} holds a control character HTTP does not allow (check the "
                             "provider key and the forwarded headers)", code="invalid_header_value") from None
        except TimeoutError:  # this request's own ``timeout`` (the attempt's limit cancels instead)
            raise UpstreamError(f"{name} did not answer within {timeout} s", status=504, provider=name,
                                code="upstream_timeout") from None
        finally:
            self._record.upstream_ms += (time.perf_counter() - t0) * 1000.0

    def _check_literal(self, url: str) -> None:
        if self._policy is not None:
            why = literal_refusal(url, self._policy)
            if why is not None:
                raise _blocked(self.provider, url, why, resolved=False)

    async def read_body(self, resp: aiohttp.ClientResponse, limit: int | None = None) -> bytes:
        """A whole upstream body (at most ``limit`` bytes); a reset mid-body is a 502."""
        t0 = time.perf_counter()
        try:
            if limit is None:
                return await resp.read()
            body = bytearray()
            while len(body) < limit:
                more = await resp.content.read(limit - len(body))
                if not more:
                    break
                body += more
            return bytes(body)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            raise UpstreamError(f"{self.provider} closed the connection mid-response: {e.__class__.__name__}",
                                provider=self.provider, code="upstream_reset") from None
        finally:
            self._record.upstream_ms += (time.perf_counter() - t0) * 1000.0

    async def exchange(self, req: UpstreamRequest, *, timeout: float | None = None) -> Answer:
        """Send ``req`` and read the answer whole (an error body up to MAX_ERROR_BODY), within
        ``timeout``, else within ``upstream.read_timeout``."""
        if timeout is not None or self._silence is None:
            return await self._exchange(req, timeout)
        try:
            async with asyncio.timeout(self._silence):
                return await self._exchange(req, None)
        except TimeoutError:
            raise UpstreamError(
                f"{self.provider} sent no answer within {self._silence:g} s (upstream.read_timeout); "
                "it may still be working on the request", status=504, provider=self.provider,
                code="upstream_timeout") from None

    async def _exchange(self, req: UpstreamRequest, timeout: float | None) -> Answer:
        resp = await self.send(req, timeout=timeout)
        try:
            ok = 200 <= resp.status < 300
            body = await self.read_body(resp, None if ok else MAX_ERROR_BODY)
        finally:
            resp.release()
        return Answer(resp.status, resp.headers, body)
