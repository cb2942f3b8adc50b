"""Together AI's images API: ``POST https://api.together.xyz/v1/images/generations``.

OpenAI-like, with its own names: ``width``/``height`` instead of ``size``,
``response_format`` ``base64``/``url``, ``steps``; the answer is
``{"id", "model", "object": "list", "data": [{"index", "b64_json"|"url", "type"}]}``.

Edits go to the same endpoint: the models that take an input image read it from
``image_url`` (one, FLUX.1 Kontext) or ``reference_images`` (a list, FLUX.2); the
uploaded files go there as data URIs.
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
    Image,
    MalformedAnswer,
    ModelCapabilities,
    Provider,
    UpstreamRequest,
    decode_json,
)
from gateway_together_ai.prices import PRICES

_encode = msgspec.json.Encoder().encode

# Documented limits: FLUX.1 [schnell]/[dev] take 64-1792 px sides in steps of 16 and
# up to 4 images a call; the [pro] models 256-1440 in steps of 32, one image a call.
_FLUX_OPEN = ModelCapabilities(min_side=64, max_side=1792, side_multiple=16, max_n=4)
_FLUX_PRO = ModelCapabilities(min_side=256, max_side=1440, side_multiple=32, max_n=1)

#: Body fields of ``POST /images/generations`` the API reference documents.
_FIELDS = frozenset({"steps", "seed", "negative_prompt", "guidance_scale", "output_format", "image_url",
                     "image_loras", "disable_safety_checker"})
#: Edits: the files fill the image field themselves, so a text ``image_url`` is not taken.
_EDIT_FIELDS = _FIELDS - {"image_url"}
#: Edits, per model: the field the uploaded image(s) go in.  ``size`` goes as ``width``/``height``,
#: unchecked: Together documents no sizes for these models and its own examples send those.
#: ``image_url`` (one image): FLUX.1 Kontext [pro]/[max], which also take ``aspect_ratio`` (Together's
#: parameters page: it sets the Kontext models' output size).  ``reference_images`` (a list):
#: FLUX.2 [pro]/[flex] up to 8 images and [dev] up to 6 (Black Forest Labs' limits for these
#: models; Together documents none).
_KONTEXT = ModelCapabilities(parameters=_EDIT_FIELDS | {"aspect_ratio"})
EDIT_MODELS: dict[str, tuple[str, ModelCapabilities]] = {
    "black-forest-labs/FLUX.1-kontext-pro": ("image_url", _KONTEXT),
    "black-forest-labs/FLUX.1-kontext-max": ("image_url", _KONTEXT),
    "black-forest-labs/FLUX.2-pro": ("reference_images", ModelCapabilities(input_images=8, parameters=_EDIT_FIELDS)),
    "black-forest-labs/FLUX.2-flex": ("reference_images", ModelCapabilities(input_images=8, parameters=_EDIT_FIELDS)),
    "black-forest-labs/FLUX.2-dev": ("reference_images", ModelCapabilities(input_images=6, parameters=_EDIT_FIELDS)),
}
#: Documented body fields that are numbers or booleans, read from an edit form's text.
_TYPES: dict[str, type] = {"steps": int, "seed": int, "guidance_scale": float, "disable_safety_checker": bool}
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?")

#: Words in a Together error that mean the safety checker refused the prompt or image.
_SAFETY_MARKERS = ("nsfw", "safety checker", "content policy", "unsafe content")


class TogetherProvider(Provider):
    name = "together-ai"
    default_base_url = "https://api.together.xyz/v1"
    # URL answers point at Together's own short links.
    image_hosts = ("api.together.ai", "api.together.xyz", "*.together.ai", "*.together.xyz")
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model="black-forest-labs/FLUX.1-schnell",
        models={
            "black-forest-labs/FLUX.1-schnell": _FLUX_OPEN,
            "black-forest-labs/FLUX.1-schnell-Free": _FLUX_OPEN,
            "black-forest-labs/FLUX.1-dev": _FLUX_OPEN,
            "black-forest-labs/FLUX.1-pro": _FLUX_PRO,
            "black-forest-labs/FLUX.1.1-pro": _FLUX_PRO,
        },
        parameters=frozenset({"prompt", "model", "n", "size", "response_format", *_FIELDS}),
        # Only the listed models take an input image (each in its own field).
        edit_models={name: caps for name, (_, caps) in EDIT_MODELS.items()},
        default_edit_model="black-forest-labs/FLUX.1-kontext-pro",
    )
    #: Per megapixel of output, where the rate was confirmed (gateway_together_ai/prices.py).
    prices = PRICES

    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        return self._request(attempt, self._body(req, req.extra))

    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """A generation of an image-taking model with the uploaded files as data URIs in its
        image field (``image_url``: the first and only; ``reference_images``: all, in order)."""
        entry = EDIT_MODELS.get(req.model or "")
        if entry is None:
            raise BadParam("model", f"Together model {req.model!r} takes no input image the gateway knows of.  "
                                    f"Edit models: {', '.join(EDIT_MODELS)}")
        field = entry[0]
        body = self._body(req, _typed_natives(req))
        uris = [image.data_uri() for image in req.images]
        body[field] = uris[0] if field == "image_url" else uris
        return self._request(attempt, body)

    def _body(self, req: GenerationRequest, natives: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": req.model, "prompt": req.prompt, "n": req.n}
        if req.width is not None:
            body["width"], body["height"] = req.width, req.height
        if req.response_format is not None:
            body["response_format"] = "base64" if req.response_format == "b64_json" else "url"
        body.update(natives)
        return body

    def _request(self, attempt: Attempt, body: dict[str, Any]) -> UpstreamRequest:
        headers = {"Content-Type": "application/json", **self.auth_headers(attempt)}
        return UpstreamRequest("POST", attempt.base_url + "/images/generations", headers, _encode(body))

    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        body = answer.body
        doc = decode_json(self, body)
        items = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(items, list) or not items:
            raise MalformedAnswer(self.name, "no `data` list of images", body)
        images = []
        for item in sorted(items, key=lambda i: i.get("index", 0) if isinstance(i, dict) else 0):
            b64 = item.get("b64_json") if isinstance(item, dict) else None
            url = item.get("url") if isinstance(item, dict) else None
            if not isinstance(b64, str) and not isinstance(url, str):
                raise MalformedAnswer(self.name, "an image has neither `b64_json` nor `url`", body)
            images.append(Image(b64=b64 if isinstance(b64, str) else None, url=url if isinstance(url, str) else None))
        return GenerationResult(images=images)

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        err = super().error_from_response(status, body, content_type)  # Together uses OpenAI's error body
        if any(marker in err.message.lower() for marker in _SAFETY_MARKERS):
            return ContentPolicyViolation(self.name, err.message.removeprefix(f"{self.name} error: "),
                                          status=status if 400 <= status < 500 else 400)
        return err


def _typed_natives(req: GenerationRequest) -> dict[str, Any]:
    """The native parameters with the documented numbers and booleans read from an edit
    form's text (``seed=7`` comes as ``"7"``); others as sent."""
    out = {}
    for key, value in req.extra.items():
        kind = _TYPES.get(key)
        if kind is not None and isinstance(value, str):
            value = _parse(key, value, kind)
            if key == "seed" and value and req.offset:
                # The core moves an int seed on per call of a split; text it cannot: done here.
                value += req.offset
        out[key] = value
    return out


def _parse(key: str, text: str, kind: type) -> int | float | bool:
    word = text.strip().lower()
    if kind is bool and word in ("true", "1", "false", "0"):
        return word in ("true", "1")
    if kind is int and _INTEGER.fullmatch(word):
        return int(word)
    if kind is float and _NUMBER.fullmatch(word):
        return float(word)
    expected = {bool: "true or false", int: "a whole number", float: "a number"}[kind]
    raise BadParam(key, f"Invalid `{key}` {text!r}: expected {expected}")
