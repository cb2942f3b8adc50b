"""Per-request state shared by every stage of the hook chain."""
from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

import msgspec

from gateway import headers as h
from gateway.errors import BadRequest

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from gateway.state import GatewayState
    from gateway.targets import Target

IMAGES_GENERATIONS = "images.generations"
PROXY = "proxy"
IMAGES_FILES = "images.files"

_decode_dict = msgspec.json.Decoder(dict).decode
_decode_metadata = msgspec.json.Decoder(dict[str, str]).decode


class RequestContext:
    """What the gateway knows about one request; stages add to it as they learn."""

    __slots__ = (
        "request", "gateway", "endpoint", "path", "trace_id", "started", "principal", "config",
        "body", "body_stream", "view", "_params", "_metadata", "provider", "model", "status",
        "bytes_in", "bytes_out", "upstream_ms", "attempts", "cache_status", "target_path",
        "retry_count", "error", "extra",
    )

    def __init__(self, request: web.Request, gateway: GatewayState, endpoint: str, path: str) -> None:
        self.request = request
        self.gateway = gateway
        self.endpoint = endpoint
        #: The path below ``/v1`` (``/images/generations``, ``/v2beta/stable-image/...``).
        self.path = path
        # A trace id needs to be unique, not secret: no syscall for it.
        self.trace_id: str = request.headers.get(h.TRACE_ID) or f"{random.getrandbits(128):032x}"
        self.started = time.perf_counter()
        self.principal: Any = None
        self.config: Target | None = None
        #: The request body, for endpoints the gateway reads (unified image routes).
        self.body: bytes | None = None
        #: The request body as a stream, for passthrough.
        self.body_stream: Any = None
        #: A typed view of the unified request's few fields the gateway needs.
        self.view: Any = None
        self._params: dict[str, Any] | None = None
        self._metadata: dict[str, str] | None = None
        self.provider: str | None = None
        self.model: str | None = None
        self.status: int = 0
        self.bytes_in = 0
        self.bytes_out = 0
        #: Milliseconds spent waiting on providers, summed over attempts.
        self.upstream_ms = 0.0
        #: One dict per upstream attempt (target path, provider, status, ms).
        self.attempts: list[dict[str, Any]] = []
        self.cache_status: str | None = None
        self.target_path: str | None = None
        self.retry_count: int | None = None
        self.error: str | None = None
        #: Free room for plugins (namespaced keys, please).
        self.extra: dict[str, Any] = {}

    @property
    def headers(self) -> Any:
        return self.request.headers

    @property
    def params(self) -> dict[str, Any]:
        """The unified request body as a dict (decoded on first use; {} for passthrough)."""
        if self._params is None:
            self._params = _decode_dict(self.body) if self.body else {}
        return self._params

    @property
    def metadata(self) -> dict[str, str]:
        """``x-portkey-metadata``: a JSON object of strings (400 otherwise)."""
        if self._metadata is None:
            raw = self.request.headers.get(h.METADATA)
            if not raw:
                self._metadata = {}
            else:
                try:
                    self._metadata = _decode_metadata(raw)
                except msgspec.ValidationError as e:
                    raise BadRequest(
                        f"Invalid x-portkey-metadata header: expected a JSON object of string values ({e})",
                        param=h.METADATA, code="invalid_metadata",
                    ) from None
                except msgspec.DecodeError:
                    raise BadRequest("Invalid x-portkey-metadata header: not valid JSON", param=h.METADATA,
                                     code="invalid_metadata") from None
        return self._metadata

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0
