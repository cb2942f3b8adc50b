"""What an uploaded image's header says: its size and whether it has an alpha channel.

Stability's edit routes refuse images outside their pixel limits, and derive the
inpaint/erase mask from the image's alpha channel when no mask is sent: both are
read here from the file's header (PNG ``IHDR``/``tRNS``, JPEG ``SOFn``, WebP
``VP8 ``/``VP8L``/``VP8X``), without decoding any pixel.
"""
from __future__ import annotations

import struct

import msgspec

_PNG = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (the ones carrying the frame's size): C0-CF but DHT, JPG and DAC.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers without a length field (RSTn, SOI, EOI, TEM).
_STANDALONE = frozenset({*range(0xD0, 0xDA), 0x01})


class ImageInfo(msgspec.Struct, frozen=True):
    """An image's size in pixels and whether it carries transparency."""

    width: int
    height: int
    alpha: bool


def probe(data: bytes) -> ImageInfo | None:
    """The header facts of a PNG, JPEG or WebP file; None when the header cannot be read."""
    try:
        if data.startswith(_PNG):
            return _png(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except (struct.error, IndexError):
        return None
    return None


def _png(data: bytes) -> ImageInfo | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    color_type = data[25]
    # Gray+alpha and RGBA carry an alpha channel; any other type is transparent only with a tRNS chunk.
    return ImageInfo(width, height, color_type in (4, 6) or _png_has_trns(data))


def _png_has_trns(data: bytes) -> bool:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):  # tRNS must come before the image data
            return False
        pos += 12 + length
    return False


def _jpeg(data: bytes) -> ImageInfo | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return ImageInfo(width, height, False)  # JPEG has no alpha channel
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length
    return None


def _webp(data: bytes) -> ImageInfo | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        flags = data[20]
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo(width, height, bool(flags & 0x10))
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return ImageInfo((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1))
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return ImageInfo(width & 0x3FFF, height & 0x3FFF, False)  # simple lossy WebP has no alpha
    return None
