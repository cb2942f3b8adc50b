"""Per-request state: what came in, what the log line will say, and room for plugins.

A :class:`RequestContext` is what every request hook receives as ``ctx``.  It
holds three typed parts and two results of the chain:

* ``ctx.inbound`` (:class:`Inbound`): the request as it arrived, read and decoded
  once by the core (method, path, headers, body, the unified parameters);
* ``ctx.record`` (:class:`Record`): what the ``request.finished`` log line says;
  written by the core only (plugins add fields through ``gateway_log_fields``);
* ``ctx.stash`` (:class:`Stash`): per-request state of plugins, under typed
  :class:`StashKey` keys each plugin owns;
* ``ctx.principal`` (from ``gateway_authenticate``) and ``ctx.config`` (from
  ``gateway_resolve_config``).

Nothing here reaches the app's services: a plugin that needs them gets them
at start-up from ``gateway_configure``.
"""
from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from gateway import json_decode
from gateway import headers as h
from gateway.errors import BadRequest

if TYPE_CHECKING:  # pragma: no cover
    from multidict import CIMultiDictProxy

    from gateway.targets import Target

IMAGES_GENERATIONS = "images.generations"
IMAGES_EDITS = "images.edits"
PROXY = "proxy"
IMAGES_FILES = "images.files"

_decode_metadata = json_decode.Decoder(dict[str, str]).decode
T = TypeVar("T")


class Inbound:
    """The request as the client sent it.  The core fills it before config resolve
    and never changes it after; hooks and providers only read it."""

    __slots__ = (
        "endpoint", "method", "path", "raw_path", "query_string", "raw_query_string", "headers",
        "content_length", "origin", "trace_id", "body", "body_stream", "params", "form", "metadata", "timeout_ms",
        "strict_params", "custom_host",
    )

    def __init__(self, endpoint: str, method: str, path: str, headers: CIMultiDictProxy[str], *,
                 raw_path: str = "", query_string: str = "", raw_query_string: str = "",
                 content_length: int | None = None, origin: str = "http://localhost") -> None:
        #: ``images.generations``, ``images.edits``, ``proxy``, ``images.files``.
        self.endpoint = endpoint
        self.method = method
        #: The path below ``/v1`` (``/images/generations``, ``/v2beta/stable-image/...``).
        self.path = path
        #: The full path as sent, percent-encoding kept (``/v1/model/arn%3Aaws.../invoke``).
        self.raw_path = raw_path
        self.query_string = query_string
        self.raw_query_string = raw_query_string
        self.headers = headers
        self.content_length = content_length
        #: The base of the image URLs answered to this request (``images.public_url``, an allowed
        #: Host, or the gateway's own address: never a Host the operator did not allow).
        self.origin = origin
        # One the gateway cannot echo or log is replaced (and the request refused:
        # ``headers.check_values``).
        sent = headers.get(h.TRACE_ID)
        self.trace_id: str = sent if sent and h.valid_trace_id(sent) else new_trace_id()
        #: The request body, when the core read it whole (unified routes; passthrough
        #: when it is sent more than once or keyed on).
        self.body: bytes | None = None
        #: The passthrough body as a stream, when it is relayed as it arrives.
        self.body_stream: Any = None
        #: The unified request body, decoded once ({} for passthrough).
        self.params: dict[str, Any] = {}
        #: images.edits: the multipart form's parts in the order sent, ``(name, text or
        #: InputImage)``; ``params`` holds its text fields, typed.
        self.form: list[tuple[str, Any]] = []
        #: The control headers, parsed once by :meth:`read_control_headers`.
        self.metadata: dict[str, str] = {}
        self.timeout_ms: int | None = None
        self.strict_params: bool | None = None
        #: ``x-portkey-custom-host``: wins over every target's ``custom_host``.
        self.custom_host: str | None = headers.get(h.CUSTOM_HOST)

    def read_control_headers(self) -> None:
        """Parse ``x-portkey-metadata``, ``-request-timeout`` and ``-strict-params`` once;
        a bad one is a 400 naming it before any work."""
        headers = self.headers
        self.metadata = parse_metadata(headers.get(h.METADATA))
        raw = headers.get(h.REQUEST_TIMEOUT)
        if raw is not None:
            self.timeout_ms = parse_timeout(raw)
        raw = headers.get(h.STRICT_PARAMS)
        if raw is not None:
            self.strict_params = h.truthy(raw)


class Record:
    """The facts of the ``request.finished`` line, kept by the core as it learns them."""

    __slots__ = ("key", "provider", "model", "status", "bytes_in", "bytes_out", "upstream_ms", "attempts",
                 "cache_status", "target_path", "retry_count", "error", "error_code", "usage", "stream", "images",
                 "cost", "cost_exact", "cost_saved", "cost_calls")

    def __init__(self) -> None:
        #: The caller's gateway key by name (``[gateway_keys.<name>]``, or ``key:<fingerprint>``
        #: for a key of the ``security.gateway_keys`` list); never the key itself.
        self.key: str | None = None
        #: Images the answer carries from a provider (0 for an error or a cache hit).
        self.images = 0
        self.provider: str | None = None
        self.model: str | None = None
        self.status: int = 0
        self.bytes_in = 0
        self.bytes_out = 0
        #: Milliseconds spent waiting on providers, summed over attempts.
        self.upstream_ms = 0.0
        #: One dict per upstream attempt (target path, provider, attempt, status, ms).
        self.attempts: list[dict[str, Any]] = []
        #: ``HIT``, ``MISS``, ``REFRESH`` or ``DISABLED`` (None until a cache stage says).
        self.cache_status: str | None = None
        self.target_path: str | None = None
        #: Retries made on the answering leaf (``x-portkey-retry-attempt-count``); -1 when
        #: its retries ran out still failing (Portkey's value); None when no leaf ran.
        self.retry_count: int | None = None
        #: Why the request failed, as the client was told; None on success.
        self.error: str | None = None
        #: The error's code (``error.code``, else its type) as the client was told; None on success.
        self.error_code: str | None = None
        #: Token usage the provider reported (OpenAI's ``usage``), summed over the calls of a split.
        self.usage: dict[str, Any] | None = None
        #: A streamed answer: how it was made and how it went (:class:`StreamRecord`).
        self.stream: StreamRecord | None = None
        #: USD the providers billed for this request, summed over the calls they bill
        #: (:mod:`gateway.pricing`); 0.0 for a cache hit; None when unknown (a price not
        #: published, the passthrough, prices off).
        self.cost: float | None = None
        #: Every billed call's cost came from the provider's ``usage`` (not a price table).
        self.cost_exact = False
        #: A cache hit: what the cached answer cost when it was made, when known.
        self.cost_saved: float | None = None
        #: Upstream calls billed (a 2xx answer each).
        self.cost_calls = 0


class StreamRecord:
    """What the log line says of a ``stream: true`` answer."""

    __slots__ = ("mode", "events", "keepalives", "first_event_ms", "last_event_ms", "end")

    def __init__(self, mode: str) -> None:
        #: ``native`` (the provider's events relayed), ``synthesized`` (the gateway's own
        #: events from a whole answer) or ``cache`` (a cached answer as events).
        self.mode = mode
        #: Events sent (keep-alive comments not counted).
        self.events = 0
        self.keepalives = 0
        #: Milliseconds from the request's start to the first and to the last event.
        self.first_event_ms: float | None = None
        self.last_event_ms: float | None = None
        #: ``completed``, ``error`` (an ``event: error`` was sent), ``upstream_reset`` or
        #: ``client_left``.
        self.end: str | None = None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "events": self.events, "end": self.end}
        if self.keepalives:
            out["keepalives"] = self.keepalives
        if self.first_event_ms is not None:
            out["first_event_ms"] = round(self.first_event_ms, 2)
            out["last_event_ms"] = round(self.last_event_ms or self.first_event_ms, 2)
        return out


class StashKey(Generic[T]):
    """A typed key of :class:`Stash`; a plugin makes its own at module level."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StashKey({self.name!r})"


#: The body of a buffered 2xx answer as the gateway made it (a stored image as its host-free
#: path), set as it is sent: for plugins that look at the answer afterwards (the request log).
ANSWER_BODY: StashKey[bytes] = StashKey("gateway.answer_body")
#: A provider's own image URLs a 2xx answer handed on as they were (the gateway never had
#: their bytes), set as the answer is made: for the request log, which refers to them.
HANDED_ON_URLS: StashKey[list[str]] = StashKey("gateway.handed_on_urls")


class Stash:
    """Per-request state of plugins, by :class:`StashKey` (pytest's ``Stash``, aiohttp's ``RequestKey``)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[StashKey[Any], Any] = {}

    def __getitem__(self, key: StashKey[T]) -> T:
        return self._items[key]

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._items[key] = value

    def __contains__(self, key: StashKey[Any]) -> bool:
        return key in self._items

    def get(self, key: StashKey[T], default: T | None = None) -> T | None:
        return self._items.get(key, default)

    def setdefault(self, key: StashKey[T], default: T) -> T:
        return self._items.setdefault(key, default)


class RequestContext:
    """What every request hook receives as ``ctx`` (see the module docstring)."""

    __slots__ = ("inbound", "record", "stash", "principal", "config", "started")

    def __init__(self, inbound: Inbound) -> None:
        self.inbound = inbound
        self.record = Record()
        self.stash = Stash()
        self.started = time.perf_counter()
        #: Who the caller is (``gateway_authenticate``); the cache keys on it.
        self.principal: Any = None
        #: The routing tree (``gateway_resolve_config``).
        self.config: Target | None = None

    @property
    def trace_id(self) -> str:
        return self.inbound.trace_id

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.inbound.headers

    @property
    def endpoint(self) -> str:
        return self.inbound.endpoint

    @property
    def metadata(self) -> dict[str, str]:
        """``x-portkey-metadata`` as a dict of strings."""
        return self.inbound.metadata

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0


def new_trace_id() -> str:
    """A trace id for a request that sent none: 32 hex digits, milliseconds first (48 bits) then
    80 random bits.  Unique, not secret (no system call for it); ids made later sort later, so
    the request log's trace index grows at its end instead of taking inserts all over it."""
    return f"{(int(time.time() * 1000) & _MS_MASK) << 80 | random.getrandbits(80):032x}"


_MS_MASK = (1 << 48) - 1


def parse_metadata(raw: str | None) -> dict[str, str]:
    """``x-portkey-metadata`` as a dict, or a 400 naming the header."""
    if not raw:
        return {}
    try:
        return _decode_metadata(raw)
    except msgspec.ValidationError as e:
        raise BadRequest(
            f"Invalid x-portkey-metadata header: expected a JSON object of string values ({e})",
            param=h.METADATA, code="invalid_metadata",
        ) from None
    except msgspec.DecodeError:
        raise BadRequest("Invalid x-portkey-metadata header: not valid JSON", param=h.METADATA,
                         code="invalid_metadata") from None


def parse_timeout(raw: str) -> int:
    """``x-portkey-request-timeout``: a positive whole number of milliseconds, or a 400."""
    raw = raw.strip()
    value = int(raw) if raw.isascii() and raw.isdecimal() and len(raw) <= 12 else 0
    if not 0 < value <= h.MAX_TIMEOUT_MS:
        raise BadRequest(
            f"Invalid x-portkey-request-timeout {raw[:40]!r}: expected a positive whole number of milliseconds, "
            f"at most {h.MAX_TIMEOUT_MS}",
            param=h.REQUEST_TIMEOUT, code="invalid_request_timeout",
        )
    return value
