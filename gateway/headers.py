"""Header names and the filters applied in both directions."""
from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import BadRequest

PREFIX = "x-portkey-"
PROVIDER = "x-portkey-provider"
CONFIG = "x-portkey-config"
VIRTUAL_KEY = "x-portkey-virtual-key"
API_KEY = "x-portkey-api-key"
CUSTOM_HOST = "x-portkey-custom-host"
TRACE_ID = "x-portkey-trace-id"
METADATA = "x-portkey-metadata"
CACHE_FORCE_REFRESH = "x-portkey-cache-force-refresh"
REQUEST_TIMEOUT = "x-portkey-request-timeout"
FORWARD_HEADERS = "x-portkey-forward-headers"
#: ``true``: a parameter value the model does not support is a 400, not mapped to the nearest.
STRICT_PARAMS = "x-portkey-strict-params"

RESP_PROVIDER = "x-portkey-provider"
RESP_LAST_USED = "x-portkey-last-used-option-index"
RESP_RETRY_COUNT = "x-portkey-retry-attempt-count"
RESP_CACHE_STATUS = "x-portkey-cache-status"
#: Milliseconds the gateway itself took before the answer's headers: everything but the
#: time spent waiting on providers.
RESP_OVERHEAD = "x-gateway-overhead-ms"
#: USD the request cost (``0.040000``), when known (docs/costs.md).
RESP_COST = "x-gateway-cost"
#: On a cache hit (whose ``x-gateway-cost`` is 0): USD the cached answer cost when it was made,
#: when known (docs/costs.md).
RESP_COST_SAVED = "x-gateway-cost-saved"
#: What lenient mode changed: ``size=1792x1024->16:9; n=12->10; style=vivid->(dropped)``.
RESP_ADJUSTED = "x-portkey-adjusted-params"

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    }
)
#: Client headers never sent upstream on passthrough: hop-by-hop, framing the
#: client session computes, the caller's credentials (provider auth is added by
#: the provider), and what would reveal the internal network to a provider.
REQUEST_DROP = HOP_BY_HOP | {
    "host", "authorization", "expect", "content-length", "forwarded", "x-forwarded-for",
    "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
}
#: Upstream headers never relayed: hop-by-hop and framing (set again by the server).
RESPONSE_DROP = HOP_BY_HOP | {"content-length", "server", "date"}


#: Longest time limit an attempt may be given (``x-portkey-request-timeout``, a config's
#: ``request_timeout``), in ms: a day; beyond, a number only overflows the event loop's clock.
MAX_TIMEOUT_MS = 86_400_000
#: Longest ``x-portkey-trace-id`` taken: it is echoed back and goes on every log line.
MAX_TRACE_ID = 256


def valid_trace_id(value: str) -> bool:
    """A trace id the gateway echoes and logs: printable ASCII, at most MAX_TRACE_ID characters."""
    return 0 < len(value) <= MAX_TRACE_ID and value.isascii() and value.isprintable()


def check_values(headers: CIMultiDictProxy[str]) -> None:
    """A 400 (``invalid_header_value``) naming the first header whose value is not UTF-8 text,
    or a trace id that is not printable ASCII.

    The HTTP parser hands bytes that are not UTF-8 on as surrogates, which nothing after it
    (JSON, a log line, a header sent upstream) can encode: refused here, once."""
    for name, value in headers.items():
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(f"The {name} header is not UTF-8 text", param=name.lower(),
                                 code="invalid_header_value") from None
    trace_id = headers.get(TRACE_ID)
    if trace_id is not None and not valid_trace_id(trace_id):
        raise BadRequest(f"Invalid {TRACE_ID}: expected printable ASCII of at most {MAX_TRACE_ID} characters",
                         param=TRACE_ID, code="invalid_header_value")


def passthrough_headers(incoming: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The client's headers as they go upstream on passthrough."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        low = name.lower()
        if low in REQUEST_DROP or low.startswith(PREFIX):
            continue
        out.add(name, value)
    return out


def relay_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The provider's response headers as they go back to the client."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        low = name.lower()
        if low in RESPONSE_DROP or low.startswith(PREFIX):
            continue
        out.add(name, value)
    return out


def bearer(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (or the raw value)."""
    if not value:
        return None
    if value[:7].lower() == "bearer ":
        value = value[7:]
    value = value.strip()
    return value or None


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")
