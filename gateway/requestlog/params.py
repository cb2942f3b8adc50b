"""A request's parameters as the log keeps them: the prompt and every setting, without the
bulk or the secrets.

A base64 string (a data: URI, or a long run of base64 characters) and an uploaded file
become ``{"omitted": "base64"|"file", "bytes": n, "sha256": hex}``; a field whose name
reads as a credential (``api_key``, ``token``, ...) becomes ``"[redacted]"``; a very long
text is cut.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from gateway import json_decode
from gateway.generation import InputImage
from gateway.redact import REDACTED, is_credential_name

#: A string at least this long made only of base64 characters is taken for base64 (a prompt
#: of that length has spaces).
MIN_BASE64 = 256
#: Characters of text kept of one string.
MAX_TEXT = 65_536
#: Nesting followed; deeper values are dropped.
MAX_DEPTH = 16
#: Largest passthrough JSON body whose fields are logged.
MAX_PASSTHROUGH_BODY = 1024 * 1024
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(?:;[\w=.+-]+)*;base64,", re.ASCII)


def safe_params(params: dict[str, Any], form: Iterable[tuple[str, Any]] = ()) -> dict[str, Any]:
    """``params`` (a request body's fields) and the files of an edit's ``form``, made safe to keep."""
    out = _value(params, 0)
    assert isinstance(out, dict)
    if not form:
        return out
    files: dict[str, list[dict[str, Any]]] = {}
    for name, value in form:
        if isinstance(value, InputImage):
            files.setdefault(name, []).append({"omitted": "file", "bytes": len(value.data), "sha256": value.sha256,
                                               "content_type": value.media_type})
    for name, parts in files.items():
        out[name] = parts[0] if len(parts) == 1 and not name.endswith("[]") else parts
    return out


def passthrough_params(body: bytes | None, content_type: str | None) -> dict[str, Any]:
    """The fields of a passthrough JSON body (a provider's native request), made safe; {} for
    another type, a body not read whole, or one too large."""
    if body is None or not body or len(body) > MAX_PASSTHROUGH_BODY:
        return {}
    if content_type is None or not content_type.split(";", 1)[0].strip().lower().endswith("json"):
        return {}
    try:
        doc = json_decode.decode(body)
    except msgspec.DecodeError:
        return {}
    return safe_params(doc) if isinstance(doc, dict) else {}


def _value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return {"omitted": "depth"}
        # Most values are strings: _text at once, one call fewer.
        return {str(k): REDACTED if v is not None and _credential(k) else
                _text(v) if type(v) is str else _value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            return [{"omitted": "depth"}]
        return [_value(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)[:MAX_TEXT]


def _credential(name: Any) -> bool:
    """Whether a field's name reads as a credential's (the answers for names seen, kept)."""
    if not isinstance(name, str):
        return False
    found = _CREDENTIAL_NAMES.get(name)
    if found is None:
        found = is_credential_name(name)
        if len(_CREDENTIAL_NAMES) < 4096:
            _CREDENTIAL_NAMES[name] = found
    return found


_CREDENTIAL_NAMES: dict[str, bool] = {}


def _text(value: str) -> Any:
    if len(value) >= MIN_BASE64 or value.startswith("data:"):
        m = _DATA_URI.match(value)
        payload = value[m.end():] if m is not None else value
        if m is not None or _BASE64.fullmatch(payload):
            out = {"omitted": "base64", **_digest(payload)}
            if m is not None and m.group(1):
                out["content_type"] = m.group(1)
            return out
    if len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + f"… [{len(value) - MAX_TEXT} more characters]"
    return value


def _digest(payload: str) -> dict[str, Any]:
    """The decoded size and SHA-256 (of the text itself when it does not decode)."""
    raw = payload.encode("ascii", "replace")
    try:
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_" if b"-" in raw or b"_" in raw else None)
    except (binascii.Error, ValueError):
        data = raw
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
