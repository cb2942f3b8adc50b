"""Reading Replicate's answers: prediction objects, their outcome, and error bodies.

A prediction (``POST .../predictions``, ``GET /predictions/{id}``) is
``{"id", "status", "output", "error", "urls", ...}`` with ``status`` one of
``starting``, ``processing`` (still running), ``succeeded``, ``failed``,
``canceled``, ``aborted``.  Errors are RFC 7807 problem documents
``{"title", "detail", "status"}``; input validation adds ``invalid_fields``.
A file uploaded with ``POST /files`` is ``{"id", "urls": {"get"}, ...}``.
"""
from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.sdk import ContentPolicyViolation, GatewayError, GenerationResult, Image, MalformedAnswer, ProviderError

PROVIDER = "replicate"
RUNNING = frozenset({"starting", "processing"})
FINISHED = frozenset({"succeeded", "failed", "canceled", "aborted"})

#: How Replicate's image models word a safety refusal: Cog safety checkers ("NSFW content
#: detected", "All generated images contained NSFW content"), the FLUX API models
#: ("flagged as sensitive ... (E005)"), content moderation of other hosted models.
_CONTENT_POLICY = re.compile(r"nsfw|flagged as sensitive|\(E005\)|content moderat|safety (?:filter|system)", re.I)
#: A prediction's or file's id (it goes into a URL path).
_PREDICTION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: OpenAI error types by status, for clients that branch on ``error.type``.
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
          403: "permission_error", 404: "not_found_error", 422: "invalid_request_error", 429: "rate_limit_error"}


class Prediction(msgspec.Struct, kw_only=True):
    """The fields of a prediction the gateway reads."""

    id: str
    status: str
    output: Any = None
    error: Any = None

    @property
    def running(self) -> bool:
        return self.status in RUNNING


def read_prediction(body: bytes) -> Prediction:
    """A 2xx prediction body, or a 502 saying what is wrong with it."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise MalformedAnswer(PROVIDER, "the body is not JSON", body) from None
    if not isinstance(doc, dict):
        raise MalformedAnswer(PROVIDER, "the body is not a prediction object", body)
    pid, status = doc.get("id"), doc.get("status")
    if not isinstance(pid, str) or not _PREDICTION_ID.fullmatch(pid):
        raise MalformedAnswer(PROVIDER, "the prediction has no valid `id`", body)
    if status not in RUNNING and status not in FINISHED:
        raise MalformedAnswer(PROVIDER, f"the prediction has an unknown `status` {status!r}", body)
    return Prediction(id=pid, status=status, output=doc.get("output"), error=doc.get("error"))


class HostedFile(msgspec.Struct, frozen=True):
    """An uploaded input file: its id (to delete it) and the URL a prediction's input takes."""

    id: str
    url: str


def read_file(body: bytes) -> HostedFile:
    """A 2xx answer to ``POST /files``, or a 502 saying what is wrong with it."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise MalformedAnswer(PROVIDER, "the uploaded file's answer is not JSON", body) from None
    file_id = doc.get("id") if isinstance(doc, dict) else None
    urls = doc.get("urls") if isinstance(doc, dict) else None
    url = urls.get("get") if isinstance(urls, dict) else None
    if not isinstance(file_id, str) or not _PREDICTION_ID.fullmatch(file_id):
        raise MalformedAnswer(PROVIDER, "the uploaded file has no valid `id`", body)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise MalformedAnswer(PROVIDER, "the uploaded file has no `urls.get` URL", body)
    return HostedFile(file_id, url)


def outcome(pred: Prediction) -> GenerationResult:
    """A finished prediction as images, or the error it ended with."""
    if pred.status == "succeeded":
        return GenerationResult(images=[Image(url=url) for url in _output_urls(pred)])
    detail = pred.error if isinstance(pred.error, str) and pred.error.strip() else None
    if pred.status == "failed":
        message = detail or "no error message"
        if _CONTENT_POLICY.search(message):
            raise ContentPolicyViolation(PROVIDER, message)
        raise ProviderError(f"{PROVIDER} error: prediction {pred.id} failed: {message}", status=502,
                            code="prediction_failed", provider=PROVIDER)
    # canceled (by someone else, or its deadline) or aborted (the deadline passed before it started).
    raise ProviderError(f"{PROVIDER} error: prediction {pred.id} was {pred.status}" + (f": {detail}" if detail else ""),
                        status=502, code=f"prediction_{pred.status}", provider=PROVIDER)


def _output_urls(pred: Prediction) -> list[str]:
    """Image models answer with one file URL or a list of them (``data:`` URIs in some modes)."""
    out = pred.output
    if out is None:
        raise MalformedAnswer(PROVIDER, f"prediction {pred.id} succeeded without output (removed, or not an image model)")
    urls = [out] if isinstance(out, str) else out
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise MalformedAnswer(PROVIDER, f"prediction {pred.id} output is not a file URL or a list of them",
                              msgspec.json.encode(out))
    for url in urls:
        if not url.startswith(("https://", "http://", "data:")):
            raise MalformedAnswer(PROVIDER, f"prediction {pred.id} output is not a file URL: {url[:80]!r}")
    return urls


def error_from_problem(status: int, body: bytes, content_type: str) -> GatewayError:
    """A non-2xx answer as a gateway error keeping Replicate's status and ``detail``."""
    title = detail = param = None
    if body and "json" in content_type:
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            doc = None
        if isinstance(doc, dict):
            title = doc.get("title") if isinstance(doc.get("title"), str) else None
            detail = doc.get("detail") if isinstance(doc.get("detail"), str) else None
            param = _invalid_field(doc.get("invalid_fields"))
    message = _one_line(detail) or _one_line(title)
    if not message:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    if _CONTENT_POLICY.search(message):
        return ContentPolicyViolation(PROVIDER, message, status=status if 400 <= status < 500 else 400)
    return ProviderError(f"{PROVIDER} error: {message}", status=status, type=_TYPES.get(status), param=param,
                         provider=PROVIDER)


def _one_line(text: str | None) -> str | None:
    """``detail`` lists validation errors one per line (``- input.width: ...``)."""
    if not text:
        return None
    lines = [line.strip().removeprefix("- ").strip() for line in text.strip().splitlines()]
    return "; ".join(line for line in lines if line) or None


def _invalid_field(fields: Any) -> str | None:
    """The first invalid input field's name (``input.width`` -> ``width``)."""
    if isinstance(fields, list) and fields and isinstance(fields[0], dict):
        field = fields[0].get("field")
        if isinstance(field, str) and field:
            return field.removeprefix("input.")
    return None
