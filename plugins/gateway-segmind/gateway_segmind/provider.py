"""Segmind's serverless API: ``POST https://api.segmind.com/v1/<model>`` and passthrough."""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import msgspec

from gateway.sdk import (
    Answer,
    Attempt,
    BadParam,
    Capabilities,
    ContentPolicyViolation,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    Image,
    MalformedAnswer,
    ModelCapabilities,
    Provider,
    ProviderError,
    UpstreamRequest,
    decode_json,
    sniff,
)
from gateway_segmind.errors import error_message, is_content_refusal, json_message
from gateway_segmind.models import DEFAULT_MODEL, MODELS, Dialect, dialect_of
from gateway_segmind.prices import PRICES

_encode = msgspec.json.Encoder().encode
#: A Segmind model slug (``sdxl1.0-txt2img``): it becomes a URL path segment, so no ``/``.
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Codes for the statuses Segmind documents, in OpenAI's words where OpenAI has one.
_CODES = {401: "invalid_api_key", 404: "model_not_found", 406: "insufficient_credits",
          429: "rate_limit_exceeded"}
_BINARY = ("application/octet-stream", "binary/octet-stream")


class SegmindProvider(Provider):
    name = "segmind"
    default_base_url = "https://api.segmind.com/v1"
    capabilities = Capabilities(
        default_model=DEFAULT_MODEL,
        models={name: listed.caps for name, listed in MODELS.items()},
        # Models not listed: one image per call (many newer models have no `samples`),
        # any size, parameters checked by Segmind.
        any_model=ModelCapabilities(max_n=1),
        parameters=frozenset({
            "prompt", "model", "n", "size", "response_format",
            "negative_prompt", "scheduler", "steps", "num_inference_steps", "guidance_scale", "seed", "strength",
            "refiner", "high_noise_fraction", "control_scale", "control_start", "control_end", "qr_text", "invert",
            "qr_size", "sampler_name", "denoise",
        }),
        # Each model has its own native parameters; Segmind validates them.
        passes_unknown_parameters=True,
    )
    #: None: the listed models are billed by GPU time (gateway_segmind/prices.py).
    prices = PRICES

    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        return {"x-api-key": attempt.api_key} if attempt.api_key else {}

    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        """``/v1/<model>`` goes to ``<base>/<model>``; ``/v1/v2/...`` to Segmind's async
        API at ``https://api.segmind.com/v2/...``."""
        base = attempt.base_url
        if (path == "/v2" or path.startswith("/v2/")) and base.endswith("/v1"):
            url = base[: -len("/v1")] + path
        else:
            url = base + path
        return f"{url}?{query_string}" if query_string else url

    # -- images.generations --------------------------------------------------------
    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        model = req.model or DEFAULT_MODEL
        if not _SLUG.fullmatch(model):
            raise BadParam("model", f"Invalid `model` {model!r}: a Segmind model slug such as {DEFAULT_MODEL!r}")
        headers = {"Content-Type": "application/json"}
        headers.update(attempt.forwarded_headers())
        headers.update(self.auth_headers(attempt))
        return UpstreamRequest("POST", f"{attempt.base_url}/{model}", headers,
                               _encode(generation_body(req, dialect_of(model))))

    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        body = answer.body
        ctype = answer.content_type
        if ctype.startswith("image/") or (ctype in _BINARY and sniff(body).startswith("image/")):
            # The image itself: a model without `base64`, or one that ignored it.
            if not body:
                raise MalformedAnswer(self.name, f"an empty {ctype} body")
            if req.n != 1:
                raise MalformedAnswer(self.name, f"asked for {req.n} images, got one {ctype} body")
            return GenerationResult(images=[Image(data=body, content_type=sniff(body, ctype))])
        doc = decode_json(self, body)
        value = doc.get("image") if isinstance(doc, dict) else None
        if value is None:
            message = json_message(doc)
            if message and is_content_refusal(message):
                raise ContentPolicyViolation(self.name, message)
            raise MalformedAnswer(self.name, "no `image` in the answer", body)
        items = value if isinstance(value, list) else [value]
        images = [self._image(item, body) for item in items]
        if len(images) != req.n:
            raise MalformedAnswer(self.name, f"asked for {req.n} images, got {len(images)}")
        return GenerationResult(images=images)

    def _image(self, item: Any, body: bytes) -> Image:
        if not isinstance(item, str) or not item:
            raise MalformedAnswer(self.name, "an `image` is not a base64 string", body)
        if item.startswith("data:"):
            return Image(url=item)  # the core decodes data: URIs
        text = "".join(item.split())
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedAnswer(self.name, "an `image` is not valid base64") from None
        if not data:
            raise MalformedAnswer(self.name, "an `image` is empty")
        return Image(b64=text, data=data)

    # -- errors --------------------------------------------------------------------
    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        message = error_message(body, content_type) or f"HTTP {status}"
        if is_content_refusal(message):
            # A refusal is the client's to fix, whatever status carried it: never retried as a 5xx.
            return ContentPolicyViolation(self.name, message, status=status if 400 <= status < 500 else 400)
        return ProviderError(f"{self.name} error: {message}", status=status, code=_CODES.get(status),
                             provider=self.name)


def generation_body(req: GenerationRequest, dialect: Dialect) -> dict[str, Any]:
    """The JSON body for one upstream call: native parameters as sent, mapped ones over them."""
    extra = dict(req.extra)
    mapped: dict[str, Any] = {}
    steps = extra.pop("steps", None)
    if steps is not None:
        mapped[dialect.steps_field] = steps
    qr_size = extra.pop("qr_size", None)
    if qr_size is not None:  # QR-code models call the code's size `size`, which OpenAI's `size` took
        mapped["size"] = qr_size
    if dialect.samples_field:
        mapped[dialect.samples_field] = req.n
    if req.width and req.height and dialect.size_fields:
        mapped[dialect.size_fields[0]], mapped[dialect.size_fields[1]] = req.width, req.height
    if req.aspect_ratio is not None:
        mapped["aspect_ratio"] = req.aspect_ratio
    if dialect.base64:
        # The answer as {"image": <base64>}: one shape for any number of samples.
        mapped["base64"] = True
    return {"prompt": req.prompt, **extra, **mapped}
