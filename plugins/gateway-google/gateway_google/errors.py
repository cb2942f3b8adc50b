"""Google's error answers as gateway errors, the provider's status kept.

Both APIs answer errors as ``{"error": {"code", "message", "status", "details"?}}`` (Vertex AI
sometimes as a one-item list of it).  The gRPC ``status`` (``RESOURCE_EXHAUSTED``,
``INVALID_ARGUMENT``) becomes the error's ``code`` in lower case; a ``google.rpc.RetryInfo``
detail becomes a ``Retry-After`` header (Google sends no such header), so a retry or a client
waits as long as Google asked.
"""
from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from gateway.sdk import ProviderError

__all__ = ["google_error", "retry_after"]

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 429: "rate_limit_error"}
_DELAY = re.compile(r"(\d+(?:\.\d+)?)s")
_json = msgspec.json.Decoder()


def _error_object(body: bytes, content_type: str) -> dict[str, Any] | None:
    if not body or "json" not in content_type:
        return None
    try:
        doc = _json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(doc, list) and len(doc) == 1:
        doc = doc[0]
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else None


def google_error(provider: str, status: int, body: bytes, content_type: str) -> ProviderError:
    """The error answer as a ``ProviderError`` with Google's status, message and gRPC status."""
    err = _error_object(body, content_type)
    message = err.get("message") if err is not None else None
    grpc = err.get("status") if err is not None else None
    if not isinstance(message, str) or not message:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    return ProviderError(f"{provider} error: {message}", status=status, type=_TYPES.get(status),
                         code=grpc.lower() if isinstance(grpc, str) and grpc else None, provider=provider)


def retry_after(body: bytes, content_type: str) -> str | None:
    """Whole seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "23.5s"``), if any."""
    err = _error_object(body, content_type)
    details = err.get("details") if err is not None else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DELAY.fullmatch(str(detail.get("retryDelay", "")))
            if match:
                return str(math.ceil(float(match.group(1))))
    return None
