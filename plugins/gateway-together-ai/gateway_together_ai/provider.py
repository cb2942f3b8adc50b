"""Together AI's images API: ``POST https://api.together.xyz/v1/images/generations``.

OpenAI-like, with its own names: ``width``/``height`` instead of ``size``,
``response_format`` ``base64``/``url``, ``steps``; the answer is
``{"id", "model", "object": "list", "data": [{"index", "b64_json"|"url", "type"}]}``.
"""
from __future__ import annotations

from typing import Any

import msgspec

from gateway.sdk import (
    Answer,
    Attempt,
    Capabilities,
    ContentPolicyViolation,
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

_encode = msgspec.json.Encoder().encode

# Documented limits: FLUX.1 [schnell]/[dev] take 64-1792 px sides in steps of 16 and
# up to 4 images a call; the [pro] models 256-1440 in steps of 32, one image a call.
_FLUX_OPEN = ModelCapabilities(min_side=64, max_side=1792, side_multiple=16, max_n=4)
_FLUX_PRO = ModelCapabilities(min_side=256, max_side=1440, side_multiple=32, max_n=1)

#: Words in a Together error that mean the safety checker refused the prompt or image.
_SAFETY_MARKERS = ("nsfw", "safety checker", "content policy", "unsafe content")


class TogetherProvider(Provider):
    name = "together-ai"
    default_base_url = "https://api.together.xyz/v1"
    # URL answers point at Together's own short links.
    image_hosts = ("api.together.ai", "api.together.xyz", "*.together.ai", "*.together.xyz")
    capabilities = Capabilities(
        default_model="black-forest-labs/FLUX.1-schnell",
        models={
            "black-forest-labs/FLUX.1-schnell": _FLUX_OPEN,
            "black-forest-labs/FLUX.1-schnell-Free": _FLUX_OPEN,
            "black-forest-labs/FLUX.1-dev": _FLUX_OPEN,
            "black-forest-labs/FLUX.1-pro": _FLUX_PRO,
            "black-forest-labs/FLUX.1.1-pro": _FLUX_PRO,
        },
        parameters=frozenset({
            "prompt", "model", "n", "size", "response_format", "steps", "seed", "negative_prompt",
            "guidance_scale", "output_format", "image_url", "image_loras", "disable_safety_checker",
        }),
    )

    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        body: dict[str, Any] = {"model": req.model, "prompt": req.prompt, "n": req.n}
        if req.width is not None:
            body["width"], body["height"] = req.width, req.height
        if req.response_format is not None:
            body["response_format"] = "base64" if req.response_format == "b64_json" else "url"
        body.update(req.extra)
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
