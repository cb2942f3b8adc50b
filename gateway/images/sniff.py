"""An image's media type from its first bytes."""
from __future__ import annotations


def sniff(data: bytes, default: str | None = None) -> str:
    """``image/png``, ``image/jpeg``, ``image/webp``, ``image/gif``, else ``default``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return default or "application/octet-stream"


def output_media_type(fmt: object) -> str | None:
    """The media type of OpenAI's ``output_format`` (``png``, ``jpeg``, ``webp``), else None."""
    return _OUTPUT_TYPES.get(fmt) if isinstance(fmt, str) else None


_OUTPUT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
