"""Reading Segmind's error answers.

Segmind documents its failures by status (401 bad key, 404 unknown model, 406
not enough credits, 422 invalid parameters, 429, 500) and answers them with
``{"error": "<message>"}``; a validation failure may carry FastAPI's
``{"detail": [...]}``, and a failure in front of the API (a proxy, a gateway
timeout) an HTML or text page.  Segmind documents no code for a content
refusal: a model's filter says so in the message ("NSFW content detected",
...), which :func:`is_content_refusal` recognises.
"""
from __future__ import annotations

import html
import re
from typing import Any

import msgspec

__all__ = ["error_message", "is_content_refusal", "json_message"]

_REFUSAL = re.compile(
    r"\bnsfw\b|not safe for work|content[ -](moderation|policy|filter)|moderation (filter|check|system)"
    r"|safety (filter|checker|check|system)|inappropriate (content|image|prompt)|explicit content|sexual",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SKIP = re.compile(r"<(script|style|head)\b.*?</\1>", re.IGNORECASE | re.DOTALL)
_MAX_TEXT = 300


def is_content_refusal(message: str) -> bool:
    """Whether a Segmind message says the prompt or the image was refused on content grounds."""
    return bool(_REFUSAL.search(message))


def error_message(body: bytes, content_type: str) -> str | None:
    """The message of a Segmind error body, or None when it carries none."""
    if not body.strip() or content_type.startswith(("image/", "video/", "audio/")):
        return None
    if "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            doc = None
        message = json_message(doc) if doc is not None else None
        if message:
            return message
    text = body[:64 * 1024].decode("utf-8", "replace")
    if "html" in content_type or text.lstrip()[:1] == "<":
        return _html_text(text)
    return _clip(" ".join(text.split()))


def json_message(doc: Any) -> str | None:
    """The message of a decoded Segmind error document."""
    if not isinstance(doc, dict):
        return None
    for key in ("error", "message", "detail"):
        text = _text(doc.get(key))
        if text:
            return text
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):  # {"error": {"message": ...}}
        return _text(value.get("message")) or _text(value.get("msg"))
    if isinstance(value, list):  # FastAPI: [{"loc": ["body", "samples"], "msg": "..."}]
        parts = []
        for item in value:
            msg = _text(item)
            if msg and isinstance(item, dict) and isinstance(item.get("loc"), list):
                where = ".".join(str(p) for p in item["loc"] if p != "body")
                msg = f"{where}: {msg}" if where else msg
            if msg:
                parts.append(msg)
        return "; ".join(parts) or None
    return None


def _html_text(page: str) -> str | None:
    title = _TITLE.search(page)
    if title:
        text = " ".join(html.unescape(_TAG.sub(" ", title.group(1))).split())
        if text:
            return _clip(text)
    text = " ".join(html.unescape(_TAG.sub(" ", _SKIP.sub(" ", page))).split())
    return _clip(text) if text else None


def _clip(text: str) -> str | None:
    if not text:
        return None
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."
