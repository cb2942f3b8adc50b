"""A :class:`~gateway.requestlog.record.LogRecord` from an answered request: what the core
recorded (``ctx.record``), the request as it came (``ctx.inbound``), nothing secret.

The request headers kept are an allow-list; of those that name something (a provider, a
virtual key, a saved config), a value that reads as a key is shown by its fingerprint; a
custom host keeps its scheme, host, port and path (never its query or user info).  No
API key, gateway key or credential is read at all: the gateway key by its name only.
"""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from gateway import headers as h
from gateway.context import IMAGES_EDITS, IMAGES_GENERATIONS, PROXY, RequestContext
from gateway.redact import looks_like_a_name, shown
from gateway.requestlog.record import LogRecord, new_id

#: Headers kept as they are.
PLAIN_HEADERS = ("user-agent", "content-type", "content-length", "content-encoding", "accept",
                 h.CACHE_FORCE_REFRESH, h.REQUEST_TIMEOUT, h.STRICT_PARAMS, h.FORWARD_HEADERS)
#: Headers holding a name: kept when the value reads as one, else by fingerprint.
NAME_HEADERS = (h.PROVIDER, h.VIRTUAL_KEY, h.CONFIG)
#: The endpoints whose requests are logged: the unified routes and the passthrough.
LOGGED = frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY})
#: Longest header value kept.
MAX_HEADER = 512


def safe_headers(headers: Any) -> dict[str, str]:
    """The allow-listed request headers (``headers``: the request's, case-insensitive), made safe
    (see the module docstring)."""
    out: dict[str, str] = {}
    # The allow-list is shorter than an SDK's headers (a dozen x-stainless-* and more): look up each name.
    get = headers.get
    for low, kind in _KINDS:
        value = get(low)
        if value is None:
            continue
        if kind is _PLAIN:
            if not (low == h.FORWARD_HEADERS and _has_credential_name(value)):
                out[low] = value[:MAX_HEADER]
        elif kind is _NAME:
            # An inline config (JSON, maybe with an api_key) or a key pasted here: a fingerprint.
            out[low] = value if _is_name(value) else shown(value)
        else:
            out[low] = custom_host(value)
    return out


_PLAIN, _NAME, _HOST = "plain", "name", "host"
_KINDS = (*((n, _PLAIN) for n in PLAIN_HEADERS), *((n, _NAME) for n in NAME_HEADERS), (h.CUSTOM_HOST, _HOST))
#: Values seen that read as names (a provider, a virtual key): most requests repeat a few.
_NAMES: set[str] = set()
_MAX_NAMES = 4096


def _is_name(value: str) -> bool:
    if value in _NAMES:
        return True
    if not looks_like_a_name(value):
        return False
    if len(_NAMES) < _MAX_NAMES:
        _NAMES.add(value)
    return True


def _has_credential_name(value: str) -> bool:
    return any(part.strip().lower() in ("authorization", "proxy-authorization", "cookie") for part in value.split(","))


def custom_host(value: str) -> str:
    """A custom host without what may carry a credential: its query, fragment and user info."""
    try:
        parts = urlsplit(value.strip())
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return shown(value)
    if not parts.scheme or not parts.hostname:
        return shown(value)
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"[:MAX_HEADER]


def build_record(ctx: RequestContext, fields: dict[str, Any]) -> LogRecord:
    """The record of an answered request (``params`` and ``images`` are filled by the writer)."""
    inbound, rec = ctx.inbound, ctx.record
    # The log line's figures (gateway.defaults.log_canonical), so the two agree: timed when the
    # request finished, not after the hooks before this one ran.
    ms, upstream_ms, overhead_ms = fields.get("ms"), fields.get("upstream_ms"), fields.get("overhead_ms")
    if ms is None or upstream_ms is None or overhead_ms is None:
        ms = _hundredths(ctx.elapsed_ms())
        upstream_ms = _hundredths(rec.upstream_ms)
        overhead_ms = _hundredths(max(0.0, ms - rec.upstream_ms))
    arrived = time.time() - ms / 1000.0
    status = rec.status
    error_code = rec.error_code
    if error_code is None and status == 499:
        error_code = "client_disconnected"
    return LogRecord(
        id=new_id(arrived),
        trace_id=inbound.trace_id,
        time=arrived,
        key=rec.key,
        endpoint=inbound.endpoint,
        method=inbound.method,
        path="/v1" + inbound.path,
        provider=rec.provider,
        model=rec.model,
        status=status,
        error_code=error_code if status >= 400 else None,
        error=rec.error if status >= 400 else None,
        ms=ms,
        upstream_ms=upstream_ms,
        overhead_ms=overhead_ms,
        bytes_in=rec.bytes_in,
        bytes_out=rec.bytes_out,
        # The request is over: its lists and dicts change no more, so the record takes them as they are.
        attempts=rec.attempts,
        cache=rec.cache_status or "DISABLED",
        metadata=inbound.metadata,
        usage=rec.usage,
        # The core's cost (gateway.pricing) and a cache hit's saving, as the log line says them.
        cost=rec.cost,
        cost_exact=rec.cost_exact,
        cost_saved=rec.cost_saved,
        headers=safe_headers(inbound.headers),
    )


def _hundredths(ms: float) -> float:
    """``ms`` (not negative) to two decimals: round(ms, 2) but for a tie, at a twentieth of
    round()'s cost (which works out the exact decimal expansion)."""
    return int(ms * 100.0 + 0.5) / 100.0


def is_logged(ctx: RequestContext) -> bool:
    """Requests the log keeps: the unified routes and the passthrough (not image files, not 404s)."""
    return ctx.inbound.endpoint in LOGGED


