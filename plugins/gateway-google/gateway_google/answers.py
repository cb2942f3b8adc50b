"""A ``generateContent`` answer read as one image, a content-policy refusal, or a malformed answer.

``{"candidates": [{"content": {"parts": [...]}, "finishReason"}], "promptFeedback"?, "usageMetadata"}``:
the image is the first ``inlineData`` part of ``candidates[0]`` that is not a thought (Gemini 3
models think in interim images marked ``thought: true``; text parts may come along).  A prompt
blocked before generation has ``promptFeedback.blockReason`` and no candidates; an image filtered
after it has a content-policy ``finishReason`` and no image.  ``usageMetadata`` becomes OpenAI's
``usage`` (``input_tokens``, ``output_tokens``, ``total_tokens`` and the per-modality details).
"""
from __future__ import annotations

from typing import Any

import msgspec

from gateway.sdk import ContentPolicyViolation, GenerationResult, Image, MalformedAnswer

__all__ = ["CONTENT_POLICY_REASONS", "read_answer", "usage_of"]

#: ``finishReason`` values that mean the output was withheld on content grounds (the SDK's
#: FinishReason enum: safety, prohibited content, a blocklist term, personal data, in text or image).
CONTENT_POLICY_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
                                    "BLOCKLIST", "SPII"})
_NULL = msgspec.Raw(b"null")


class _Blob(msgspec.Struct, rename="camel"):
    mime_type: str | None = None
    # Raw: megabytes of base64 are copied into the answer, not decoded and encoded again.
    data: msgspec.Raw = _NULL


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool | None = None
    inline_data: _Blob | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] | None = None


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    finish_message: str | None = None


class _Feedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None
    block_reason_message: str | None = None


class _Answer(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] | None = None
    prompt_feedback: _Feedback | None = None
    usage_metadata: dict[str, Any] | None = None


_decoder = msgspec.json.Decoder(_Answer)


def read_answer(provider: str, body: bytes) -> GenerationResult:
    """The one image of a 2xx answer; ``ContentPolicyViolation`` for a block, ``MalformedAnswer``
    (a 502 naming what came back) for an answer without an image and without a block."""
    try:
        doc = _decoder.decode(body)
    except msgspec.ValidationError as e:
        raise MalformedAnswer(provider, f"not a generateContent answer ({e})", body) from None
    except msgspec.DecodeError:
        raise MalformedAnswer(provider, "the body is not JSON", body) from None
    feedback = doc.prompt_feedback
    if feedback is not None and feedback.block_reason and feedback.block_reason != "BLOCKED_REASON_UNSPECIFIED":
        raise ContentPolicyViolation(provider, _said(f"the prompt was blocked ({feedback.block_reason})",
                                                     feedback.block_reason_message))
    if not doc.candidates:
        raise MalformedAnswer(provider, "no `candidates` and no `promptFeedback.blockReason`", body)
    candidate = doc.candidates[0]
    parts = candidate.content.parts if candidate.content is not None and candidate.content.parts else []
    for part in parts:
        blob = part.inline_data
        if part.thought or blob is None:
            continue
        if memoryview(blob.data)[:1].tobytes() != b'"':
            raise MalformedAnswer(provider, "an `inlineData` part has no base64 `data` string")
        usage = usage_of(doc.usage_metadata)
        return GenerationResult(images=[Image(b64=blob.data, content_type=blob.mime_type)],
                                extra={"usage": usage} if usage else {})
    reason = candidate.finish_reason
    if reason in CONTENT_POLICY_REASONS:
        raise ContentPolicyViolation(provider, _said(f"the image was blocked ({reason})", candidate.finish_message))
    text = " ".join(p.text for p in parts if p.text and not p.thought).strip()
    what = f"no image in the answer (finishReason {reason or 'absent'}"
    if candidate.finish_message:
        what += f": {candidate.finish_message}"
    if text:
        what += f"; the model said: {text[:300]!r}"
    raise MalformedAnswer(provider, what + ")")


def _said(what: str, message: str | None) -> str:
    return f"{what}: {message}" if message else what


def usage_of(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """``usageMetadata`` in OpenAI's image ``usage`` shape; thinking tokens count as output
    (they are billed as output) and show as ``output_tokens_details.reasoning_tokens``."""
    if not isinstance(meta, dict):
        return None
    prompt = _count(meta.get("promptTokenCount"))
    candidates = _count(meta.get("candidatesTokenCount"))
    thoughts = _count(meta.get("thoughtsTokenCount"))
    total = _count(meta.get("totalTokenCount"))
    if prompt is None and candidates is None and total is None:
        return None
    output = (candidates or 0) + (thoughts or 0)
    out: dict[str, Any] = {"input_tokens": prompt or 0, "output_tokens": output,
                           "total_tokens": total if total is not None else (prompt or 0) + output}
    details = _by_modality(meta.get("promptTokensDetails"))
    if details:
        out["input_tokens_details"] = details
    details = _by_modality(meta.get("candidatesTokensDetails"))
    if thoughts:
        details["reasoning_tokens"] = thoughts
    if details:
        out["output_tokens_details"] = details
    return out


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _by_modality(items: Any) -> dict[str, int]:
    """``[{"modality": "IMAGE", "tokenCount": 1120}, ...]`` as ``{"image_tokens": 1120, ...}``."""
    out: dict[str, int] = {}
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("modality"), str):
            continue
        count = _count(item.get("tokenCount"))
        if count is not None:
            key = f"{item['modality'].lower()}_tokens"
            out[key] = out.get(key, 0) + count
    return out
