"""Cache keys: provider, endpoint, the canonical provider-shaped request, and the caller's scope."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:  # pragma: no cover
    from gateway.provider import Call

_canonical_json = msgspec.json.Encoder(order="sorted").encode
#: Request headers that change what a provider answers.
_VARY = ("accept", "accept-encoding", "openai-organization", "openai-project")


def canonical_body(body: bytes, content_type: str) -> bytes:
    """The body with meaningless differences removed: JSON key order and
    spacing, multipart field order and boundary."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            return _canonical_json(msgspec.json.decode(body))
        except msgspec.DecodeError:
            return body
    if ctype == "multipart/form-data" and "boundary=" in content_type:
        parts = _multipart_parts(body, content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"'))
        if parts is not None:
            return _canonical_json(sorted(parts))
    return body


def _multipart_parts(body: bytes, boundary: str) -> list[list[str]] | None:
    """``[name, filename, content type, sha256 of content]`` per part, or None if malformed."""
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        return None
    out = []
    for chunk in chunks[1:-1]:
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            return None
        if content.endswith(b"\r\n"):
            content = content[:-2]
        name = filename = ctype = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            low = line.lower()
            if low.startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    k, _, v = item.strip().partition("=")
                    if k == "name":
                        name = v.strip('"')
                    elif k == "filename":
                        filename = v.strip('"')
            elif low.startswith("content-type:"):
                ctype = line.split(":", 1)[1].strip()
        out.append([name, filename, ctype, hashlib.sha256(content).hexdigest()])
    return out


def cache_key(call: Call, body: bytes) -> str:
    """The key of ``call``'s upstream request for the caller who sent it.

    The scope keeps tenants apart: the gateway principal and a hash of the
    provider credential and options both go in, so two callers with different
    keys never share an entry.
    """
    req = call.upstream
    assert req is not None
    h = hashlib.sha256()
    for part in (call.provider.name, call.endpoint, req.method, req.url):
        h.update(part.encode())
        h.update(b"\0")
    for name in _VARY:
        h.update(name.encode() + b"=" + req.headers.get(name, "").encode() + b"\0")
    h.update(canonical_body(body, req.headers.get("content-type", "")))
    if call.generation is not None:  # n split over calls, response_format: not all in the first request
        h.update(b"\0generation\0" + call.generation.cache_material())
    h.update(b"\0scope\0")
    h.update(str(call.ctx.principal).encode())
    h.update(b"\0")
    h.update(hashlib.sha256((call.api_key or "").encode()).digest())
    h.update(msgspec.json.encode(call.target.options, order="sorted"))
    return h.hexdigest()
