"""JSON from outside the gateway (callers, providers), decoded with one failure for every
way it can be bad.

msgspec raises :class:`msgspec.DecodeError` for malformed JSON, but a
``UnicodeDecodeError`` for a string that is not UTF-8 and a ``RecursionError`` for a
document nested deeper than its stack allows (``[[[[...`` ten thousand deep fits in a
request body or a header).  Here both are a ``DecodeError`` too, so a caller's ``except msgspec.DecodeError`` answers a 4xx (or a
provider's a 502) instead of a 500.
"""
from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Decoder", "decode"]


class Decoder:
    """:class:`msgspec.json.Decoder` of ``type`` whose :meth:`decode` raises only
    ``DecodeError`` (``ValidationError``, its subclass, for the wrong shape)."""

    __slots__ = ("_decode",)

    def __init__(self, type: Any = Any) -> None:  # noqa: A002 - msgspec's own name
        self._decode = msgspec.json.Decoder(type).decode

    def decode(self, data: bytes | str) -> Any:
        try:
            return self._decode(data)
        except RecursionError:
            raise msgspec.DecodeError("JSON is nested too deeply") from None
        except UnicodeDecodeError as e:
            raise msgspec.DecodeError(f"JSON text is not UTF-8 (byte {e.start})") from None


decode = Decoder().decode
