"""What one routed request produced, before it is written to the client."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

if TYPE_CHECKING:  # pragma: no cover
    import aiohttp

    from gateway.errors import GatewayError


class Outcome:
    """The answer of one target: a buffered body, an open upstream stream, or an error.

    ``relay`` is an open upstream response whose body is copied to the client
    chunk by chunk (never buffered); ``body`` a finished body; ``error`` a
    gateway or provider error rendered by the error hook.
    """

    __slots__ = ("status", "headers", "body", "relay", "error", "provider", "target_path", "cache")

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
        #: A cache miss this answer fills (set by the router from the call).
        self.cache: Any = None

    @classmethod
    def from_error(cls, error: GatewayError, provider: str | None = None) -> Outcome:
        return cls(error.status, error=error, provider=provider or error.provider)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def release(self) -> None:
        """Drop an unread upstream stream (fallback moved on, or the client left)."""
        if self.relay is not None:
            self.relay.close()
            self.relay = None
