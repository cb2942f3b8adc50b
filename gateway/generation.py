"""The data of an image generation or edit, as providers and the core pass it around.

The core (:mod:`gateway.endpoints.generations`) maps the client's unified
(OpenAI) parameters onto a model's capabilities (:mod:`gateway.negotiation`)
and splits them into one :class:`GenerationRequest` per upstream call (a
:class:`GenerationPlan`).  A provider turns one GenerationRequest into an
upstream request (``build_generation``) and the upstream answer into a
:class:`GenerationResult` of :class:`Image` objects (``parse_generation``).

An edit is the same with input images: an :class:`EditRequest` (a
GenerationRequest with ``images`` and ``mask``, each an :class:`InputImage`)
goes to ``build_edit``; its answer is read by ``parse_generation`` too.
"""
from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

import msgspec
from multidict import CIMultiDict

from gateway import json_decode
from gateway.errors import MalformedAnswer

if TYPE_CHECKING:  # pragma: no cover
    from gateway.provider import Provider

#: Parameters the gateway itself understands (OpenAI's names).
UNIFIED = frozenset({"prompt", "model", "n", "size", "quality", "style", "response_format", "user"})
RESPONSE_FORMATS = ("url", "b64_json")


class Image(msgspec.Struct, kw_only=True):
    """One generated image as the provider gave it: base64 text, bytes, or a URL."""

    #: Base64 text; or, straight from a JSON answer, the encoded JSON string as
    #: ``msgspec.Raw`` (copied into the answer without decoding a megabyte string twice).
    b64: str | msgspec.Raw | None = None
    data: bytes | None = None
    url: str | None = None
    content_type: str | None = None
    revised_prompt: str | None = None


class GenerationResult(msgspec.Struct, kw_only=True):
    """What one upstream call produced."""

    images: list[Image]
    created: int | None = None
    #: The upstream answer's headers worth relaying (request ids, rate-limit state).
    headers: CIMultiDict[str] | None = None
    #: The answer's own bytes when they already are the unified shape (OpenAI-style APIs,
    #: checked by the parser): sent on with ``provider`` added when nothing else changes.
    raw: bytes | None = None
    #: Top-level fields of the answer worth keeping (OpenAI's ``usage``, ...).
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class GenerationRequest(msgspec.Struct, kw_only=True):
    """The unified parameters after capability mapping, for one upstream call."""

    prompt: str
    model: str | None = None
    #: Images this upstream call makes.
    n: int = 1
    #: ``WxH`` as the client sent it, or as mapped; None when not given.
    size: str | None = None
    width: int | None = None
    height: int | None = None
    #: ``W:H`` when the model takes aspect ratios.
    aspect_ratio: str | None = None
    quality: str | None = None
    style: str | None = None
    #: ``url``, ``b64_json``, or None (whatever the provider gives).
    response_format: str | None = None
    user: str | None = None
    #: Other parameters the provider accepts (native names: ``seed``, ``steps``, ...).
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Index of this call's first image in the whole answer.
    offset: int = 0
    #: Whether anything differs from what the client sent (the body cannot go as it is).
    changed: bool = False


class InputImage(msgspec.Struct, frozen=True, kw_only=True):
    """One image file the client uploaded (an edit's ``image``, ``image[]`` or ``mask``), as sent."""

    #: The form field it came in (``image``, ``image[]``, ``mask``).
    field: str
    #: The file's bytes, exactly as uploaded (never decoded or re-encoded).
    data: bytes
    #: The media type read from the bytes (``image/png``, ``image/jpeg``, ``image/webp``).
    media_type: str
    #: The client's file name and declared content type, kept for a rebuilt form.
    filename: str | None = None
    content_type: str | None = None
    #: SHA-256 of ``data`` (computed once, off the event loop, when the form is read).
    digest: bytes = b""

    @property
    def sha256(self) -> str:
        return (self.digest or hashlib.sha256(self.data).digest()).hex()

    def b64(self) -> str:
        """The bytes as base64 text (APIs that take images inside JSON)."""
        return base64.b64encode(self.data).decode("ascii")

    def data_uri(self) -> str:
        """``data:<media type>;base64,...`` (APIs that take an image as a URL)."""
        return f"data:{self.media_type};base64,{self.b64()}"


class EditRequest(GenerationRequest, kw_only=True):
    """An edit for one upstream call: the unified parameters plus the input images."""

    #: The images to edit, in the order sent (the first is the one a mask applies to).
    images: list[InputImage] = msgspec.field(default_factory=list)
    mask: InputImage | None = None
    #: Where the model's mask marks the area to edit (``ModelCapabilities.mask_edits``).
    mask_edits: str = "transparent"


#: Longest note one adjustment adds to ``x-portkey-adjusted-params``.
MAX_NOTE = 300


class GenerationPlan(msgspec.Struct, kw_only=True):
    """The whole request: one GenerationRequest per upstream call, and what was adjusted."""

    parts: list[GenerationRequest]
    n: int
    response_format: str | None
    adjusted: list[str] = msgspec.field(default_factory=list)

    def report(self, note: str, *, replacing: str | None = None) -> None:
        """Say in ``x-portkey-adjusted-params`` what lenient mode changed (once); with
        ``replacing``, earlier notes starting with it (``"size="``) go first."""
        if replacing is not None:
            self.adjusted[:] = [a for a in self.adjusted if not a.startswith(replacing)]
        if not (note.isascii() and note.isprintable()) or len(note) > MAX_NOTE:
            # A header value: printable ASCII only (a value a caller or a provider's answer chose
            # may be anything, a line break too), and not without end.
            note = "".join(c if " " <= c <= "~" else "?" for c in note[:MAX_NOTE])
        if note not in self.adjusted:
            self.adjusted.append(note)


def decode_json(provider: Provider, body: bytes) -> Any:
    """A 2xx JSON body, or a 502 saying it is not JSON."""
    try:
        return json_decode.decode(body)
    except msgspec.DecodeError:
        raise MalformedAnswer(provider.name, "the body is not JSON", body) from None
