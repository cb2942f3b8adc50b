"""A provider's native parameters as typed values, from an edit form's text.

An edit arrives as a multipart form, where every field is text: ``seed=7`` is ``"7"``, which
a provider whose schema wants an integer refuses.  A provider declares the types of its native
parameters; :func:`typed_natives` reads the text ones accordingly (JSON bodies keep their own
types), and moves an integer ``seed`` on for each call of a split as the core does for JSON.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from gateway.errors import BadParam

if TYPE_CHECKING:  # pragma: no cover
    from gateway.generation import GenerationRequest

__all__ = ["InputType", "typed_natives"]

InputType = Literal["int", "num", "bool"]
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?")
_EXPECTED = {"bool": "true or false", "int": "a whole number", "num": "a number"}


def typed_natives(req: GenerationRequest, types: Mapping[str, InputType], where: str) -> dict[str, Any]:
    """``req.extra`` with each text value of a typed parameter read as its type; a 400 naming
    the parameter and ``where`` (``"fal model 'fal-ai/flux/dev'"``) when the text is not one."""
    out: dict[str, Any] = {}
    for key, value in req.extra.items():
        kind = types.get(key)
        if kind is not None and isinstance(value, str):
            value = _parse(key, value, kind, where)
            if key == "seed" and value and req.offset:
                # The core moves an int seed on per call of a split; text it cannot: done here.
                value += req.offset
        out[key] = value
    return out


def _parse(key: str, text: str, kind: InputType, where: str) -> int | float | bool:
    word = text.strip().lower()
    if kind == "bool" and word in ("true", "1", "false", "0"):
        return word in ("true", "1")
    if kind == "int" and _INTEGER.fullmatch(word):
        return int(word)
    if kind == "num" and _NUMBER.fullmatch(word):
        return int(word) if _INTEGER.fullmatch(word) else float(word)
    raise BadParam(key, f"Invalid `{key}` {text[:40]!r}: {where} takes {_EXPECTED[kind]}")
