"""The ``generateContent`` request body of an image generation or edit, the same on both APIs.

``{"contents": [{"role": "user", "parts": [{"text": prompt}, {"inlineData": {mimeType, data}}...]}],
"generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {aspectRatio, imageSize}, ...}}``:
the prompt first, then an edit's input images in the order sent.  ``size`` arrives mapped to the
model's nearest aspect ratio (the core's negotiation); its pixel count picks the ``imageSize`` tier.
"""
from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.sdk import Attempt, BadParam, EditRequest, GenerationRequest, InputImage

from gateway_google.models import ImageModel, model_spec, nearest_ratio, tier_for_pixels, tier_for_quality

__all__ = ["GEMINI_NATIVES", "VERTEX_NATIVES", "checked_model", "request_body"]

#: Native parameters both APIs take (snake_case, as an OpenAI client sends extra fields).
GEMINI_NATIVES = frozenset({"seed", "temperature", "safety_settings", "aspect_ratio", "image_size"})
#: Vertex AI's image config has more (the Gemini API refuses these: the SDK says so).
VERTEX_NATIVES = GEMINI_NATIVES | {"person_generation", "output_mime_type", "output_compression_quality"}
PERSON_GENERATION = ("ALLOW_ALL", "ALLOW_ADULT", "ALLOW_NONE")
#: A model id as it goes into the URL path (``.../models/{model}:generateContent``).
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", re.I)
_json = msgspec.json.Decoder()


def checked_model(model: str | None) -> str:
    """The model id, safe in a URL path (a 400 naming ``model`` otherwise)."""
    if model is None or not _MODEL.fullmatch(model):
        raise BadParam("model", f"Invalid `model` {model!r}: expected a Gemini model id such as gemini-3-pro-image")
    return model


def request_body(attempt: Attempt, req: GenerationRequest, images: list[InputImage], where: str) -> dict[str, Any]:
    """The JSON body for one ``generateContent`` call making one image."""
    spec = model_spec(req.model)
    natives = {key: _typed(key, value, req) for key, value in req.extra.items()}
    image_config: dict[str, Any] = {}
    ratio = _ratio(req, spec)
    if ratio is not None:
        image_config["aspectRatio"] = ratio
    tier = _tier(attempt, req, spec)
    if tier is not None:
        image_config["imageSize"] = tier
    if "aspect_ratio" in natives:
        image_config["aspectRatio"] = _choice("aspect_ratio", natives["aspect_ratio"],
                                              spec.aspect_ratios if spec else None, where)
    if "image_size" in natives:
        if spec is not None and not spec.image_sizes:
            raise BadParam("image_size", f"`image_size` is not supported by {where}: it makes 1K images only")
        image_config["imageSize"] = _choice("image_size", natives["image_size"],
                                            spec.image_sizes if spec else None, where)
    if "person_generation" in natives:
        image_config["personGeneration"] = _choice("person_generation", natives["person_generation"],
                                                   PERSON_GENERATION, where)
    output: dict[str, Any] = {}
    if "output_mime_type" in natives:
        output["mimeType"] = natives["output_mime_type"]
    if "output_compression_quality" in natives:
        output["compressionQuality"] = natives["output_compression_quality"]
    if output:
        image_config["imageOutputOptions"] = output

    generation: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    if image_config:
        generation["imageConfig"] = image_config
    for key, wire in (("seed", "seed"), ("temperature", "temperature")):
        if key in natives:
            generation[wire] = natives[key]
    parts: list[dict[str, Any]] = [{"text": req.prompt}]
    parts.extend({"inlineData": {"mimeType": image.media_type, "data": image.b64()}} for image in images)
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}], "generationConfig": generation}
    if "safety_settings" in natives:
        body["safetySettings"] = natives["safety_settings"]
    return body


def _ratio(req: GenerationRequest, spec: ImageModel | None) -> str | None:
    if req.aspect_ratio is not None:
        return req.aspect_ratio
    if spec is None and req.width is not None and req.height is not None:
        # A model the table does not know: the size as the nearest ratio every Gemini image model takes.
        return nearest_ratio(req.width, req.height)
    return None


def _tier(attempt: Attempt, req: GenerationRequest, spec: ImageModel | None) -> str | None:
    """``imageSize`` from the size's pixel count, else from ``quality``; the size wins over
    ``quality`` (reported when they disagree)."""
    if spec is None or not spec.image_sizes:
        return None
    dims = _dims(attempt.params.get("size"))
    by_size = tier_for_pixels(dims[0], dims[1], spec.image_sizes) if dims else None
    if req.quality is None:
        return by_size
    by_quality = tier_for_quality(req.quality, spec.image_sizes)
    if by_size is None:
        return by_quality
    if by_quality != by_size and attempt.plan is not None:
        attempt.plan.report(f"quality={attempt.params.get('quality', req.quality)}->(dropped)")
    return by_size


def _dims(size: Any) -> tuple[int, int] | None:
    """``WxH`` as two numbers (the core has checked the form); None for ``auto`` or no size."""
    if not isinstance(size, str) or "x" not in size.lower():
        return None
    w, _, h = size.lower().partition("x")
    return (int(w), int(h)) if w.isdecimal() and h.isdecimal() and int(w) and int(h) else None


def _choice(key: str, value: Any, allowed: tuple[str, ...] | None, where: str) -> str:
    if not isinstance(value, str) or (allowed is not None and value not in allowed):
        listed = f"; allowed: {', '.join(allowed)}" if allowed else ""
        raise BadParam(key, f"`{key}` {value!r} is not supported by {where}{listed}")
    return value


def _typed(key: str, value: Any, req: GenerationRequest) -> Any:
    """A native parameter checked for its type; an edit form's text read as the number or JSON
    it holds (``seed=7`` arrives as ``"7"``)."""
    form = isinstance(req, EditRequest) and isinstance(value, str)
    if key in ("seed", "output_compression_quality"):
        if form and _INTEGER.fullmatch(value.strip()):
            value = int(value.strip())
            if key == "seed" and value and req.offset:
                # The core moves an int seed on per call of a split; text it cannot: done here.
                value += req.offset
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadParam(key, f"Invalid `{key}` {value!r}: expected a whole number")
        if key == "output_compression_quality" and not 0 <= value <= 100:
            raise BadParam(key, f"Invalid `{key}` {value!r}: expected 0 to 100")
        return value
    if key == "temperature":
        if form and _NUMBER.fullmatch(value.strip()):
            value = float(value.strip())
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BadParam(key, f"Invalid `{key}` {value!r}: expected a number")
        return value
    if key == "safety_settings":
        if form:
            try:
                value = _json.decode(value)
            except msgspec.DecodeError:
                raise BadParam(key, f"Invalid `{key}`: expected a JSON list of safety settings") from None
        if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
            raise BadParam(key, f"Invalid `{key}`: expected a list of {{\"category\", \"threshold\"}} objects")
        return value
    if not isinstance(value, str):
        raise BadParam(key, f"Invalid `{key}` {value!r}: expected a string")
    return value
