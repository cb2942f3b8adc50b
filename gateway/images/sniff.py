"""An image's media type from its first bytes: the one source of truth for what the gateway
stores and serves (a provider's claimed content type is never trusted)."""
from __future__ import annotations

#: The image types the gateway stores and serves, with the file extension each is served under.
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def image_type(data: bytes | bytearray | memoryview) -> str | None:
    """``image/png``, ``image/jpeg``, ``image/webp`` or ``image/gif`` from the magic numbers,
    else None (HTML, SVG, anything else)."""
    head = bytes(data[:12])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def sniff(data: bytes | bytearray | memoryview, default: str | None = None) -> str:
    """:func:`image_type`, else ``default`` (a label for bytes that are no image), else
    ``application/octet-stream``."""
    return image_type(data) or default or "application/octet-stream"


def output_media_type(fmt: object) -> str | None:
    """The media type of OpenAI's ``output_format`` (``png``, ``jpeg``, ``webp``), else None."""
    return _OUTPUT_TYPES.get(fmt) if isinstance(fmt, str) else None


_OUTPUT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
