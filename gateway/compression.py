"""A request body sent with ``Content-Encoding``, decoded within the body limit.

The unified routes read their body whole and parse it, so a client may compress it
(``gzip``, ``deflate``; ``identity`` is no coding).  Decoding stops at the limit: a small
compressed body cannot grow into gigabytes of memory.  The passthrough never decodes:
its body goes upstream as the client encoded it, with its ``Content-Encoding``.
"""
from __future__ import annotations

import zlib

from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

#: Codings in one ``Content-Encoding`` header (``gzip, gzip`` is legal; more is abuse).
MAX_CODINGS = 2
#: zlib's ``wbits`` for each coding: gzip's header, and deflate as RFC 9110 means it (zlib
#: format), with the raw deflate stream some clients send instead tried second.
_WBITS = {"gzip": (16 + zlib.MAX_WBITS,), "x-gzip": (16 + zlib.MAX_WBITS,), "deflate": (zlib.MAX_WBITS, -zlib.MAX_WBITS)}


class UnsupportedEncoding(UnsupportedMediaType):
    code = "unsupported_content_encoding"


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``body`` with its ``Content-Encoding`` undone; a 415 for a coding the gateway does not
    decode, a 400 for bytes that are not what the coding says, a 413 past ``limit`` bytes."""
    if not content_encoding:
        return body
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if len(codings) > MAX_CODINGS:
        raise BadRequest(f"Content-Encoding names {len(codings)} codings; at most {MAX_CODINGS} are decoded",
                         param="content-encoding", code="invalid_content_encoding")
    for coding in reversed(codings):
        if coding not in _WBITS:
            raise UnsupportedEncoding(
                f"Unsupported Content-Encoding {coding!r}: send the body as is, or gzip or deflate",
                param="content-encoding")
        body = _inflate(body, coding, limit)
    return body


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    for wbits in _WBITS[coding]:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(data, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit:
            raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes once decoded ({coding})")
        if not inflater.eof or inflater.unused_data:
            break
        return out
    raise BadRequest(f"The request body is not valid {coding} data (Content-Encoding: {coding})",
                     param="content-encoding", code="invalid_content_encoding")
