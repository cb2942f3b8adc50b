"""Bedrock's error answers as gateway errors.

Bedrock runtime answers an error with its HTTP status, the exception name in the
``x-amzn-ErrorType`` header (``ValidationException:http://internal.amazon.com/...``)
and ``{"message": "..."}`` (``"Message"`` from the authentication layer).  A
prompt or image refused by Amazon's content filters is a ValidationException
saying "blocked by our content filters".
"""
from __future__ import annotations

from typing import Any

import msgspec

from gateway.sdk import ContentPolicyViolation, GatewayError, ProviderError

__all__ = ["bedrock_error", "error_type"]


def error_type(header: str | None) -> str | None:
    """``ValidationException:http://...`` -> ``ValidationException``."""
    if not header:
        return None
    return header.split(":", 1)[0].strip() or None


def bedrock_error(provider: str, status: int, body: bytes, kind: str | None) -> GatewayError:
    """The upstream status and message kept; content-filter refusals get the one code."""
    message = None
    data: Any = None
    if body:
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            data = None
    if isinstance(data, dict):
        for key in ("message", "Message"):
            if isinstance(data.get(key), str):
                message = data[key]
                break
        if kind is None and isinstance(data.get("__type"), str):
            kind = error_type(data["__type"].rpartition("#")[2])
    if not message:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    if kind in (None, "ValidationException") and "content filters" in message.lower():
        return ContentPolicyViolation(provider, message, status=status if 400 <= status < 500 else 400)
    return ProviderError(f"{provider} error: {message}", status=status, type=kind, provider=provider)
