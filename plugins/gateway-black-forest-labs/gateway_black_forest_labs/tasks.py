"""Reading Black Forest Labs' answers: the submitted task, its result, and error bodies.

- ``POST /v1/{model}`` answers ``{"id", "polling_url", "cost"?, "input_mp"?, "output_mp"?}``.
- ``GET /v1/get_result?id=...`` (or the ``polling_url``) answers ``{"id", "status", "result",
  "progress", "details", "preview"}`` with ``status`` one of ``Pending`` (still running),
  ``Ready`` (``result.sample`` is a signed URL, valid about 10 minutes), ``Error``,
  ``Request Moderated`` (the prompt or an input image was refused), ``Content Moderated``
  (the output was), ``Task not found``.  BFL's own examples also end on ``Failed``; some
  clients see ``Reasoning`` / ``Generating`` while FLUX.2 works: both read as running.
- Errors are FastAPI's: ``{"detail": "..."}`` with the status (402 no credits, 429 too many
  active tasks, 403 a bad key), and 422 ``{"detail": [{"loc", "msg", "type"}, ...]}`` for a
  body that fails validation.
"""
from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway.sdk import ContentPolicyViolation, GatewayError, Image, MalformedAnswer, ProviderError

PROVIDER = "black-forest-labs"
READY = "Ready"
MODERATED = frozenset({"Request Moderated", "Content Moderated"})
FAILED = frozenset({"Error", "Failed"})
NOT_FOUND = "Task not found"
FINISHED = frozenset({READY, NOT_FOUND, *MODERATED, *FAILED})
RUNNING = frozenset({"Pending", "Reasoning", "Generating"})

#: How a refusal on content grounds reads in a message or an error's details.
_CONTENT_POLICY = re.compile(r"moderat|content.?policy|nsfw|safety (?:filter|system)", re.I)
#: A task id (it goes into a URL's query).
_TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: OpenAI error types by status, for clients that branch on ``error.type``.
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
          403: "permission_error", 404: "not_found_error", 422: "invalid_request_error", 429: "rate_limit_error"}
_CODES = {402: "insufficient_credits", 429: "rate_limit_exceeded"}


class Submitted(msgspec.Struct, frozen=True):
    """A created task: its id, and where BFL says to poll it."""

    id: str
    polling_url: str | None


class Task(msgspec.Struct, frozen=True):
    """The fields of a task's status the gateway reads."""

    id: str
    status: str
    result: Any = None
    details: Any = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise MalformedAnswer(PROVIDER, f"{what} is not JSON", body) from None
    if not isinstance(doc, dict):
        raise MalformedAnswer(PROVIDER, f"{what} is not a JSON object", body)
    return doc


def read_submitted(body: bytes) -> Submitted:
    """A 2xx answer to ``POST /v1/{model}``, or a 502 saying what is wrong with it."""
    doc = _json(body, "the task's answer")
    task_id, polling_url = doc.get("id"), doc.get("polling_url")
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        raise MalformedAnswer(PROVIDER, "the task has no valid `id`", body)
    if polling_url is not None and not isinstance(polling_url, str):
        raise MalformedAnswer(PROVIDER, "the task's `polling_url` is not a string", body)
    return Submitted(task_id, polling_url)


def read_task(body: bytes, task_id: str) -> Task:
    """A 2xx answer to a poll of task ``task_id``, or a 502 saying what is wrong with it."""
    doc = _json(body, "the task's status")
    status, got = doc.get("status"), doc.get("id")
    if got is not None and got != task_id and status != NOT_FOUND:
        raise MalformedAnswer(PROVIDER, f"asked for task {task_id}, got {str(got)[:80]!r}", body)
    if status not in FINISHED and status not in RUNNING:
        raise MalformedAnswer(PROVIDER, f"task {task_id} has an unknown `status` {str(status)[:80]!r}", body)
    return Task(id=task_id, status=status, result=doc.get("result"), details=doc.get("details"))


def outcome(task: Task, prompt: str) -> Image:
    """A finished task as its image (the signed ``result.sample`` URL), or the error it ended with.

    ``result.prompt`` (the prompt the model used: rewritten by ``prompt_upsampling``) becomes
    ``revised_prompt`` when it differs from the one sent."""
    if task.status == READY:
        result = task.result if isinstance(task.result, dict) else {}
        sample = result.get("sample")
        if not isinstance(sample, str) or not sample.startswith(("https://", "http://")):
            raise MalformedAnswer(PROVIDER, f"task {task.id} is Ready without a `result.sample` URL",
                                  msgspec.json.encode(task.result))
        used = result.get("prompt")
        revised = used if isinstance(used, str) and used and used != prompt else None
        return Image(url=sample, revised_prompt=revised)
    details = _details(task.details)
    if task.status in MODERATED:
        what = "the prompt or an input image" if task.status == "Request Moderated" else "the generated image"
        raise ContentPolicyViolation(PROVIDER, f"{what} was refused by moderation ({task.status})"
                                               + (f": {details}" if details else ""))
    if task.status == NOT_FOUND:
        raise ProviderError(f"{PROVIDER} error: task {task.id} was not found (it expired, or the region that "
                            "ran it did not answer the poll)", status=502, code="task_not_found", provider=PROVIDER)
    if details and _CONTENT_POLICY.search(details):
        raise ContentPolicyViolation(PROVIDER, f"task {task.id} failed: {details}")
    message = f"{PROVIDER} error: task {task.id} failed ({task.status})" + (f": {details}" if details else "")
    raise ProviderError(message, status=502, code="generation_failed", provider=PROVIDER)


def _details(details: Any) -> str:
    """``details`` as one short line (a string, or ``{"Moderation Reasons": [...]}`` and the like)."""
    if details is None or details == {} or details == []:
        return ""
    text = details if isinstance(details, str) else msgspec.json.encode(details).decode()
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def error_from_answer(status: int, body: bytes, content_type: str) -> GatewayError:
    """A non-2xx answer as a gateway error: the provider's status and ``detail`` kept, except a
    422 validation list, which is a 400 naming the first field (the request's parameters are
    what is wrong, as OpenAI clients expect to hear it)."""
    detail: Any = None
    if body and "json" in content_type:
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            doc = None
        if isinstance(doc, dict):
            detail = doc.get("detail")
            if detail is None:
                detail = doc.get("message") or doc.get("error")
    if status == 422 and isinstance(detail, list) and detail:
        field, message = _validation(detail)
        return ProviderError(f"{PROVIDER} error: {message}", status=400, type="invalid_request_error", param=field,
                             code="invalid_parameter", provider=PROVIDER)
    message = " ".join(detail.split()) if isinstance(detail, str) and detail.strip() else None
    if message is None:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    if _CONTENT_POLICY.search(message):
        return ContentPolicyViolation(PROVIDER, message, status=status if 400 <= status < 500 else 400)
    return ProviderError(f"{PROVIDER} error: {message}", status=status, type=_TYPES.get(status),
                         code=_CODES.get(status), provider=PROVIDER)


def _validation(errors: list[Any]) -> tuple[str | None, str]:
    """The first invalid field's name and every error as ``field: message``."""
    parts, first = [], None
    for err in errors[:5]:
        if not isinstance(err, dict):
            continue
        loc = err.get("loc")
        names = [str(p) for p in loc if p not in ("body", "query")] if isinstance(loc, list) else []
        field = ".".join(names) or None
        first = first or (names[0] if names else None)
        msg = err.get("msg") if isinstance(err.get("msg"), str) else "invalid"
        parts.append(f"{field}: {msg}" if field else msg)
    return first, "; ".join(parts) or "the request failed validation"
