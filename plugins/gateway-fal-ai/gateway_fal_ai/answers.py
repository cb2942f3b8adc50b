"""Reading what a fal endpoint answers: its images, its safety flags, and its errors.

A completed request's result is the endpoint's output, for image endpoints
``{"images": [{"url", "width", "height", "content_type"}], "seed", ...}``; the toolkit
models add ``has_nsfw_concepts`` (one boolean per image: its safety checker flagged it
and sent a black image in its place).  ``url`` is on fal's CDN (``fal.media``,
``v3.fal.media``), or a ``data:`` URI with ``sync_mode: true``.

Errors come in two shapes (docs.fal.ai "Model errors" and "Request errors"): a model's
``{"detail": [{"loc", "msg", "type", "url", "ctx"?, "input"?}]}`` (FastAPI's validation
shape, 422; ``type: content_policy_violation`` when a content checker refused an input),
and the platform's ``{"detail": "<text>", "error_type": "<category>"}``.
"""
from __future__ import annotations

from typing import Any

import msgspec

from gateway.sdk import ContentPolicyViolation, GatewayError, GenerationResult, Image, MalformedAnswer, ProviderError
from gateway_fal_ai.queue import PROVIDER, read_object

#: fal's error type for an input a content checker refused.
CONTENT_POLICY = "content_policy_violation"
#: OpenAI error types by status, for clients that branch on ``error.type``.
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
          403: "permission_error", 404: "not_found_error", 422: "invalid_request_error", 429: "rate_limit_error"}


def read_result(body: bytes, request_id: str) -> tuple[GenerationResult, int]:
    """A completed request's images less those its safety checker flagged, and how many it
    flagged; all of them flagged is a content-policy refusal.  Anything else is a 502 naming
    what came back."""
    doc = read_object(body, f"result of request {request_id}")
    items = doc.get("images")
    if not isinstance(items, list):
        one = doc.get("image")  # a few endpoints answer one `image`
        items = [one] if isinstance(one, dict) else None
    if items is None:
        raise MalformedAnswer(PROVIDER, f"the result of request {request_id} has no `images` list", body)
    flags = doc.get("has_nsfw_concepts")
    flags = flags if isinstance(flags, list) else []
    images, flagged = [], 0
    for i, item in enumerate(items):
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:")):
            raise MalformedAnswer(PROVIDER, f"image {i} of request {request_id} has no file `url`", body)
        if i < len(flags) and flags[i] is True:
            # The safety checker's black stand-in, not the image asked for.
            flagged += 1
            continue
        ctype = item.get("content_type")
        images.append(Image(url=url, content_type=ctype if isinstance(ctype, str) else None))
    if images:
        return GenerationResult(images=images), flagged
    if flagged:
        which = "the image" if flagged == 1 else f"all {flagged} images"
        raise ContentPolicyViolation(PROVIDER, f"the safety checker flagged {which} of request {request_id} "
                                               "(has_nsfw_concepts)")
    raise MalformedAnswer(PROVIDER, f"request {request_id} completed without images", body)


def error_from_answer(status: int, body: bytes, content_type: str) -> GatewayError:
    """A non-2xx answer as a gateway error: a content checker's refusal is the policy code,
    a validation error (422) a 400 naming the field, anything else keeps fal's status."""
    doc: Any = None
    if body and "json" in content_type:
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            doc = None
    detail = doc.get("detail") if isinstance(doc, dict) else None
    problems = [p for p in detail if isinstance(p, dict)] if isinstance(detail, list) else []
    if isinstance(detail, dict):
        problems = [detail]
    refused = [p for p in problems if CONTENT_POLICY in (p.get("type"), p.get("error"))]
    if refused:
        return ContentPolicyViolation(PROVIDER, "; ".join(_line(p) for p in refused))
    error_type = doc.get("error_type") if isinstance(doc, dict) else None
    code = error_type if isinstance(error_type, str) else None
    if problems:
        message = "; ".join(_line(p) for p in problems)
        param = _field(problems[0])
        kind = problems[0].get("type")
        code = code or (kind if isinstance(kind, str) else None)
        if status == 422:
            # FastAPI's validation error: the request's own fault, as OpenAI answers it.
            status = 400
        return ProviderError(f"{PROVIDER} error: {message}", status=status, type=_TYPES.get(status), param=param,
                             code=code, provider=PROVIDER)
    if isinstance(detail, str) and detail.strip():
        message = detail.strip()
    else:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    return ProviderError(f"{PROVIDER} error: {message}", status=status, type=_TYPES.get(status), code=code,
                         provider=PROVIDER)


def _field(problem: dict[str, Any]) -> str | None:
    """The input a problem names (``["body", "image_size", "width"]`` -> ``image_size.width``)."""
    loc = problem.get("loc")
    if not isinstance(loc, list):
        return None
    parts = [str(p) for p in loc if isinstance(p, (str, int)) and not isinstance(p, bool)]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def _line(problem: dict[str, Any]) -> str:
    msg = problem.get("msg") if isinstance(problem.get("msg"), str) else problem.get("message")
    text = msg.strip() if isinstance(msg, str) and msg.strip() else str(problem.get("type") or "invalid input")
    field = _field(problem)
    return f"{field}: {text}" if field else text
