"""Stability's answers read as the gateway's results and errors.

Success: v1 ``{"artifacts": [{"base64", "seed", "finishReason"}]}``; v2beta
(with ``Accept: application/json``) ``{"image", "finish_reason", "seed"}``.
``finishReason``/``finish_reason`` ``CONTENT_FILTERED`` means the image was
blurred by Stability's moderation: a content-policy refusal here.

Errors: v1 ``{"id", "name", "message"}``; v2beta ``{"id", "name", "errors": [...]}``.
Refusals on content grounds: ``content_moderation`` (v2beta 403),
``invalid_prompts`` (v1 400, filtered words), ``public_figure`` (v2beta 422).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from gateway.sdk import (
    ContentPolicyViolation,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    Image,
    MalformedAnswer,
    ProviderError,
    decode_json,
)

if TYPE_CHECKING:  # pragma: no cover
    from gateway.sdk import Provider

#: Error ``name`` values that are refusals on content grounds.
CONTENT_POLICY_NAMES = frozenset({"content_moderation", "invalid_prompts", "public_figure"})
_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def parse_v1(provider: Provider, req: GenerationRequest, body: bytes) -> GenerationResult:
    name = provider.name
    doc = decode_json(provider, body)
    artifacts = doc.get("artifacts") if isinstance(doc, dict) else None
    if not isinstance(artifacts, list):
        raise MalformedAnswer(name, "no `artifacts` list", body)
    images = []
    for item in artifacts:
        if not isinstance(item, dict) or not isinstance(item.get("base64"), str):
            raise MalformedAnswer(name, "an artifact has no `base64` image", body)
        _check_finish(name, item.get("finishReason"), body)
        images.append(Image(b64=item["base64"], content_type="image/png"))
    if len(images) != req.n:
        raise MalformedAnswer(name, f"asked for {req.n} images, got {len(images)}")
    return GenerationResult(images=images)


def parse_v2(provider: Provider, req: GenerationRequest, content_type: str, body: bytes) -> GenerationResult:
    name = provider.name
    doc = decode_json(provider, body)
    if not isinstance(doc, dict) or not isinstance(doc.get("image"), str):
        raise MalformedAnswer(name, "no `image` in the answer", body)
    _check_finish(name, doc.get("finish_reason"), body)
    # ``application/json; type=image/jpeg``: the image's own type rides on the content type.
    kind = content_type.partition("type=")[2].split(";")[0].strip() or None
    if kind is None:
        kind = _IMAGE_TYPES.get(str(req.extra.get("output_format", "png")))
    return GenerationResult(images=[Image(b64=doc["image"], content_type=kind)])


def _check_finish(provider: str, reason: Any, body: bytes) -> None:
    if reason in (None, "SUCCESS"):
        return
    if reason == "CONTENT_FILTERED":
        raise ContentPolicyViolation(
            provider, "the image was filtered by Stability's content moderation (finish reason CONTENT_FILTERED)")
    if reason == "ERROR":
        raise ProviderError(f"{provider} error: the generation failed (finish reason ERROR)", status=502,
                            code="generation_failed", provider=provider)
    raise MalformedAnswer(provider, f"unknown finish reason {reason!r}", body)


def error(provider: str, status: int, body: bytes, content_type: str) -> GatewayError | None:
    """Stability's error body as a gateway error keeping its status and message;
    None when the body is not Stability's error shape."""
    if not body or "json" not in content_type:
        return None
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(data, dict):
        return None
    name = data.get("name") if isinstance(data.get("name"), str) else None
    message = data.get("message") if isinstance(data.get("message"), str) else None
    errors = data.get("errors")
    if message is None and isinstance(errors, list):
        message = "; ".join(str(e) for e in errors) or None
    if message is None:
        return None
    if name in CONTENT_POLICY_NAMES:
        return ContentPolicyViolation(provider, message, status=status)
    return ProviderError(f"{provider} error: {message}", status=status, code=name, provider=provider)
