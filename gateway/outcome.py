"""What one routed request produced, before it is written to the client."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

if TYPE_CHECKING:  # pragma: no cover
    import aiohttp

    from gateway.cache.lease import CacheLease
    from gateway.errors import GatewayError
    from gateway.targets import Target


class Outcome:
    """The answer of one target: a buffered body, an open upstream stream, or an error.

    ``relay`` is an open upstream response whose body is copied to the client
    chunk by chunk (never buffered); ``body`` a finished body; ``error`` a
    gateway or provider error rendered by the error hook.
    """

    __slots__ = ("status", "headers", "body", "relay", "error", "provider", "target_path", "target", "lease",
                 "cacheable", "stream")

    def __init__(
        self,
        status: int,
        headers: CIMultiDict[str] | None = None,
        body: bytes | None = None,
        relay: aiohttp.ClientResponse | None = None,
        error: GatewayError | None = None,
        provider: str | None = None,
        target_path: str = "config",
    ) -> None:
        self.status = status
        self.headers = headers if headers is not None else CIMultiDict()
        self.body = body
        self.relay = relay
        self.error = error
        self.provider = provider
        self.target_path = target_path
        #: The leaf target that answered (set by the router; None for a cache hit).
        self.target: Target | None = None
        #: A per-target cache miss this answer fills (passthrough), entered around the relay.
        self.lease: CacheLease | None = None
        #: False when the answer must not be cached (it hands on URLs that will expire).
        self.cacheable = True
        #: A streamed answer's events (:class:`gateway.endpoints.streaming.EventStream`), written as they come.
        self.stream: Any = None

    @classmethod
    def from_error(cls, error: GatewayError, provider: str | None = None) -> Outcome:
        outcome = cls(error.status, error=error, provider=provider or error.provider)
        if error.upstream_headers is not None:
            outcome.headers = error.upstream_headers
        return outcome

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def release(self) -> None:
        """Drop an unread upstream stream (fallback moved on, or the client left)."""
        if self.relay is not None:
            self.relay.close()
            self.relay = None
