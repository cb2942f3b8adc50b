"""The passthrough path, checked once before any provider sees it.

A provider appends the path below ``/v1`` to its base URL (after mapping a prefix of its
own: Azure's ``/openai/...``, Stability's ``/v2beta/...``), and the HTTP client under it,
or the provider's server, resolves dot segments and decodes percent escapes again.  So
the check reads the path as the client sent it (percent-encoding kept) and every form it
decodes to, and refuses:

* a dot segment (``.`` or ``..``) in any encoding (``%2e%2e``, ``..%2f``, ``%2f..``,
  backslashes, encoded twice): it could climb out of the base URL's path, and no HTTP
  client sends one (they resolve them before sending);
* an encoded ``?`` or ``#``, NUL or another control character: a ``%3F`` would become the
  query of the upstream URL, a ``%0d%0a`` a header line.
"""
from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from gateway.errors import BadRequest

#: Percent-decodings looked through; a path still encoded after these is refused.
MAX_DECODINGS = 3
_SEGMENT_SEPARATORS = re.compile(rb"[/\\]")
_FORBIDDEN = re.compile(rb"[\x00-\x1f\x7f?#]")


def check_passthrough_path(raw_path: str) -> None:
    """A 400 (``invalid_path``) when ``raw_path`` (as sent, ``/v1/...``) holds a dot segment,
    an encoded ``?`` or ``#``, or a control character, in any of its decoded forms."""
    current = raw_path.encode("utf-8", "surrogateescape")
    for _ in range(MAX_DECODINGS):
        data = unquote_to_bytes(current)
        if _FORBIDDEN.search(data):
            raise BadRequest(
                "Invalid passthrough path: an encoded `?` or `#`, NUL and other control characters are not "
                "allowed in the path (send a query after a literal `?`)", code="invalid_path",
            )
        if any(segment in (b".", b"..") for segment in _SEGMENT_SEPARATORS.split(data)):
            raise BadRequest(
                "Invalid passthrough path: a `.` or `..` dot segment (in any encoding) is not allowed; "
                "send the path below /v1 as the provider's API names it", code="invalid_path",
            )
        if data == current:
            return
        current = data
    raise BadRequest(f"Invalid passthrough path: percent-encoded more than {MAX_DECODINGS} times",
                     code="invalid_path")
