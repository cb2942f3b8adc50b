"""Cache keys.

* :func:`request_key` (unified routes): the endpoint, the client's parameters
  (an edit's text fields in any order, and each image's and the mask's bytes by
  hash, in order; ``stream`` and ``partial_images`` left out, so a streamed
  request is answered from a whole answer and the other way round), the caller's scope and the config's identity (every target and what it sends),
  so the same request through the same config is one entry whichever target a
  strategy draws.
* :func:`attempt_key` (passthrough): the provider, the provider-shaped request
  (method, URL, the headers the provider says vary its answer, the canonical
  body) and the caller's scope.

The scope keeps tenants apart: the gateway principal and the provider credential
(as a hash) both go in, so two callers with different keys never share an entry.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import msgspec

from gateway import json_decode
from gateway import headers as h

if TYPE_CHECKING:  # pragma: no cover
    from gateway.attempt import Attempt
    from gateway.context import Inbound
    from gateway.provider import UpstreamRequest
    from gateway.targets import Target

_canonical_json = msgspec.json.Encoder(order="sorted").encode
#: How an answer is delivered, not what it holds: one entry serves both.
_STREAM_PARAMS = frozenset({"stream", "partial_images"})
# Secrets are strings to the digest (never stored: only the hash is kept).
_identity_json = msgspec.json.Encoder(order="sorted", enc_hook=str).encode


def canonical_body(body: bytes, content_type: str) -> bytes:
    """The body with meaningless differences removed: JSON key order and
    spacing, multipart field order and boundary."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            return _canonical_json(json_decode.decode(body))
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


def request_key(inbound: Inbound, principal: Any, config: Target) -> str:
    """The key of a unified request through ``config`` for the caller who sent it."""
    digest = hashlib.sha256()
    digest.update(inbound.endpoint.encode() + b"\0")
    params = inbound.params
    if "stream" in params or "partial_images" in params:
        params = {k: v for k, v in params.items() if k not in _STREAM_PARAMS}
    digest.update(_canonical_json(params))
    for name, value in inbound.form:
        if not isinstance(value, str):  # an uploaded image: its bytes, not its file name
            digest.update(b"\0file\0" + name.encode() + b"=" + (value.digest or hashlib.sha256(value.data).digest()))
    digest.update(b"\0config\0" + _identity_json(config))
    headers = inbound.headers
    # Request headers that change what any target sends or how the answer is mapped.
    for name in (h.CUSTOM_HOST, h.STRICT_PARAMS, h.FORWARD_HEADERS, *_forwarded(headers, config)):
        digest.update(name.encode() + b"=" + headers.get(name, "").encode() + b"\0")
    digest.update(b"\0scope\0" + str(principal).encode())
    return digest.hexdigest()


def attempt_key(attempt: Attempt, req: UpstreamRequest, body: bytes, principal: Any) -> str:
    """The key of one provider-shaped request (passthrough) for the caller who sent it."""
    digest = hashlib.sha256()
    for part in (attempt.provider.name, attempt.endpoint, req.method, req.url):
        digest.update(part.encode() + b"\0")
    for name in attempt.provider.cache_vary_headers:
        digest.update(name.encode() + b"=" + req.headers.get(name, "").encode() + b"\0")
    digest.update(canonical_body(body, req.headers.get("content-type", "")))
    digest.update(b"\0scope\0" + str(principal).encode() + b"\0")
    digest.update(hashlib.sha256((attempt.api_key or "").encode()).digest())
    digest.update(_identity_json(attempt.target.options))
    return digest.hexdigest()


def _forwarded(headers: Any, node: Target) -> list[str]:
    """Header names some target of ``node`` forwards (their values change what it sends)."""
    names = sorted({n.strip().lower() for n in headers.get(h.FORWARD_HEADERS, "").split(",") if n.strip()}
                   | set(_tree_forward_headers(node)))
    return names


def _tree_forward_headers(node: Target) -> set[str]:
    found = {n.lower() for n in node.forward_headers or ()}
    for child in node.targets:
        found |= _tree_forward_headers(child)
    return found
