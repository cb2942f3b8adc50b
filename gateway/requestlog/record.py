"""One request as the request log keeps it (no secret: a gateway key's name, never a key)."""
from __future__ import annotations

import random
import time
from typing import Any

import msgspec

#: Crockford's base32, the alphabet of ULIDs: ids sort as their time does.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class LogImage(msgspec.Struct, kw_only=True, gc=False):
    """An image of a 2xx answer, kept in the gateway's image store for the log's retention."""

    #: Id in the image store (full size), served at ``/v1/images/files/{id}``.
    image_id: str
    #: Id of a thumbnail (at most 256 px a side) when the original is large, else None.
    thumbnail_id: str | None = None
    content_type: str
    width: int | None = None
    height: int | None = None
    #: Size of the full-size image.
    bytes: int
    #: When the image store lets both go (unix seconds): the expiry of their signed URLs.
    expires: float | None = None


class LogRecord(msgspec.Struct, kw_only=True, gc=False):
    """One request through a unified route or the passthrough.

    Plain data, never part of a reference cycle: not tracked by the garbage collector
    (``gc=False``), so the records the writer's queue holds add nothing to its passes.
    """

    #: Unique, and sorts as the arrival time does (:func:`new_id`: 26 characters, a ULID's
    #: layout); the detail page's URL.  Stores order and bound records by it.
    id: str
    trace_id: str
    #: Arrival, unix seconds.
    time: float
    #: The gateway key's NAME (never the key), None without gateway keys.
    key: str | None
    #: ``images.generations``, ``images.edits``, ``proxy``, ...
    endpoint: str
    method: str
    path: str
    provider: str | None
    #: The model sent upstream.
    model: str | None
    status: int
    error_code: str | None
    #: The error message (scrubbed of credentials by the core).
    error: str | None
    ms: float
    upstream_ms: float
    overhead_ms: float
    bytes_in: int
    bytes_out: int
    #: ``{"target", "provider", "model", "attempt", "status", "ms", "error"?}`` per try.
    attempts: list[dict[str, Any]] = msgspec.field(default_factory=list)
    #: ``x-portkey-cache-status``'s value, or ``DISABLED``.
    cache: str = "DISABLED"
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    #: The request's parameters with the prompt; base64 strings and files replaced by
    #: ``{"omitted": "base64"|"file", "bytes": n, "sha256": hex}``.
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    usage: dict[str, Any] | None = None
    #: The request's cost (None when unknown), and whether it came from ``usage``.
    cost: float | None = None
    cost_exact: bool = False
    #: A cache hit (``cost`` 0): what the cached answer cost when it was made; None for any
    #: other request, or when that cost was unknown.
    cost_saved: float | None = None
    #: The answer's images kept for the log.
    images: list[LogImage] = msgspec.field(default_factory=list)
    #: The provider's own image URLs the answer handed on as they were (the gateway never had
    #: the bytes: a provider whose URLs expire soon declares it, and those are kept instead);
    #: they work as long as the provider keeps the files.
    provider_urls: list[str] = msgspec.field(default_factory=list)
    #: Request headers that matter, from an allow-list (no credential; a custom host without
    #: its query; a value that reads as a key shown by its fingerprint).
    headers: dict[str, str] = msgspec.field(default_factory=dict)


def new_id(now: float | None = None) -> str:
    """A 26-character id: 48 bits of milliseconds then 80 random bits, in Crockford base32
    (a ULID's layout), so ids sort by time (to the millisecond) and never collide in practice.
    Unique, not secret: no system call for the random part."""
    ms = int((time.time() if now is None else now) * 1000) & _MS_MASK
    # Many records share a millisecond under load: its ten characters are made once.
    last = _last_ms[0]
    if last[0] != ms:
        last = _last_ms[0] = (ms, _ms_chars(ms))
    bits, pairs = random.getrandbits, _PAIRS
    return (last[1] + pairs[bits(10)] + pairs[bits(10)] + pairs[bits(10)] + pairs[bits(10)]
            + pairs[bits(10)] + pairs[bits(10)] + pairs[bits(10)] + pairs[bits(10)])


def id_floor(when: float) -> str:
    """The smallest id of a record that arrived at ``when`` (unix seconds): ids of records that
    arrived at or after it (to the millisecond) sort at or after it."""
    return _ms_chars(max(0, int(when * 1000)) & _MS_MASK) + "0" * 16


def _ms_chars(ms: int) -> str:
    """The ten characters of a 48-bit millisecond count (the id's top 50 bits: 2 always 0)."""
    return "".join([_PAIRS[(ms >> shift) & 1023] for shift in (40, 30, 20, 10, 0)])


_MS_MASK = (1 << 48) - 1
#: Two base32 digits per 10 bits: five lookups make the time, eight the random part.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
#: The last millisecond an id was made in and its characters, as one tuple (read whole).
_last_ms: list[tuple[int, str]] = [(-1, "")]


_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(LogRecord)


def to_json(record: LogRecord) -> bytes:
    return _encode.encode(record)


def from_json(data: bytes | str) -> LogRecord:
    return _decode.decode(data)
