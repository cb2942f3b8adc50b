"""xAI's images API (Grok Imagine): ``POST https://api.x.ai/v1/images/generations`` and
``POST /v1/images/edits``, OpenAI-shaped, on the SDK's OpenAI-compatible base.

What differs from OpenAI: no ``size`` (xAI refuses it: "Argument not supported"), but
``aspect_ratio`` and ``resolution`` (``1k``/``2k``), which ``size`` maps onto; ``quality`` only on
grok-imagine-image-2.x; and edits are JSON, not multipart: the source image as
``image: {"url": ...}`` (one) or ``images: [{"url": ...}, ...]`` (up to three), each a URL or a
base64 data URI.
"""
from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Answer,
    Attempt,
    BadParam,
    Capabilities,
    ContentPolicyViolation,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    OpenAICompatibleProvider,
    PerImage,
    UpstreamRequest,
)
from gateway_x_ai.models import DEFAULT_MODEL, EDIT_FAMILIES, FAMILIES, IMAGINE, PARAMETERS, resolution_for

__all__ = ["XAIProvider"]

_encode = msgspec.json.Encoder().encode
_SIZE = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")
#: How xAI words a moderation refusal: "Generated image rejected by content moderation." (a 400
#: whose ``error`` is that text); a 200 marks a filtered image ``respect_moderation: false``.
_MODERATION_MARKERS = ("content moderation", "respect moderation", "moderation rules")


class XAIProvider(OpenAICompatibleProvider):
    name = "x-ai"
    default_base_url = "https://api.x.ai/v1"
    # URL answers point at xAI's image host (imgen.x.ai); stored files at files-cdn.x.ai.
    image_hosts = ("imgen.x.ai", "*.x.ai")
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL,
        families=FAMILIES,
        # xAI's image API is one API: a model of another name is taken to speak it too.
        any_model=IMAGINE,
        parameters=PARAMETERS,
        edit_families=EDIT_FAMILIES,
        any_edit_model=EDIT_FAMILIES[-1][1],
        default_edit_model=DEFAULT_MODEL,
    )
    #: Per image made: grok-imagine-image at $0.02; an edit's input images are billed too, at a
    #: price not published, so an edit's cost is unknown (docs.x.ai, README "Prices").
    prices = (PerImage(model="grok-imagine-image", usd=0.02, input_image=None),)

    # -- generations -------------------------------------------------------------------
    def body_fields(self, attempt: Attempt, req: GenerationRequest) -> dict[str, Any]:
        """The JSON body: OpenAI's names where xAI shares them, ``size`` as ``aspect_ratio`` and
        ``resolution``; a native ``aspect_ratio`` / ``resolution`` the client sent wins."""
        body: dict[str, Any] = {"prompt": req.prompt, "model": req.model}
        if req.n != 1 or "n" in attempt.params:
            body["n"] = req.n
        if req.response_format is not None:
            body["response_format"] = req.response_format
        if req.quality is not None:
            body["quality"] = req.quality
        if req.user is not None:
            body["user"] = req.user
        body.update(self.size_fields(attempt, req))
        body.update(req.extra)
        return body

    def size_fields(self, attempt: Attempt, req: GenerationRequest) -> dict[str, str]:
        """``aspect_ratio`` (the model's ratio nearest the asked ``size``, negotiated by the core) and
        the ``resolution`` nearest it in area; nothing for no size or ``auto`` (xAI's default)."""
        if req.aspect_ratio is None:
            return {}
        out = {"aspect_ratio": req.aspect_ratio}
        match = _SIZE.fullmatch(str(attempt.params.get("size", "")).lower())
        if match:
            out["resolution"] = resolution_for(int(match.group(1)), int(match.group(2)))
        return out

    def body_as_sent(self, attempt: Attempt, req: GenerationRequest) -> bool:
        # `size` is never xAI's (it refuses the field), and a body without `model` would leave
        # the choice to xAI rather than to the declared default.
        return super().body_as_sent(attempt, req) and "size" not in attempt.params and "model" in attempt.params

    # -- edits -----------------------------------------------------------------------------
    async def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """JSON with the uploaded files as data URIs: ``image`` for one, ``images`` for several.
        A one-image edit keeps the input's aspect ratio (xAI: "do not set" ``aspect_ratio``), so
        ``size`` is dropped there (reported; a 400 in strict mode)."""
        sources = [{"url": image.data_uri()} for image in req.images]
        if len(sources) == 1 and req.aspect_ratio is not None:
            req = self._without_size(attempt, req)
        body = self.body_fields(attempt, req)
        if len(sources) == 1:
            body["image"] = sources[0]
        else:
            body["images"] = sources
        return UpstreamRequest("POST", self.edit_url(attempt, req), self.generation_headers(attempt), _encode(body))

    def _without_size(self, attempt: Attempt, req: EditRequest) -> EditRequest:
        asked = attempt.params.get("size")
        if attempt.strict_params:
            raise BadParam("size", f"`size` {asked!r} is not supported by {self.name} for an edit of one image: "
                                   "the output keeps the input image's aspect ratio")
        assert attempt.plan is not None  # called while building from a negotiated plan
        attempt.plan.report(f"size={asked}->(dropped)", replacing="size=")
        return msgspec.structs.replace(req, aspect_ratio=None)

    # -- answers and errors -------------------------------------------------------------------
    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        # A withheld image has no `url` (or an empty one): `unusable` reads the answer's moderation flag.
        result = super().parse_generation(attempt, req, answer)
        for image in result.images:
            if image.url == "" and image.b64 is None:
                raise self.unusable(answer.body, "a `data` item has an empty `url`")
            if isinstance(image.b64, msgspec.Raw) and memoryview(image.b64)[:6].tobytes() == b'"data:':
                # Older answers put a data URI in `b64_json`; the gateway hands on bare base64.
                image.b64 = msgspec.json.decode(image.b64, type=str).partition("base64,")[2]
                result.raw = None
        return result

    def answer_refusal(self, doc: Any) -> str | None:
        """A 2xx answer whose images xAI's moderation withheld (``respect_moderation: false``)."""
        items = doc.get("data") if isinstance(doc, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and item.get("respect_moderation") is False:
                return "Generated image rejected by content moderation."
        return None

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        # xAI's errors are `{"code": "<gRPC status text>", "error": "<message>"}` (or OpenAI's
        # shape): the base reads both and keeps the status.
        err = super().error_from_response(status, body, content_type)
        if any(marker in err.message.lower() for marker in _MODERATION_MARKERS):
            return ContentPolicyViolation(self.name, err.message.removeprefix(f"{self.name} error: "),
                                          status=status if 400 <= status < 500 else 400)
        return err
