"""Reading Azure OpenAI's refusals.

Azure answers errors in OpenAI's shape ``{"error": {"code", "message", "type",
"param"}}``, with Azure codes of its own (``DeploymentNotFound``, ``"401"``,
``"429"``).  A content refusal of the images API is documented as
``dalleErrorResponse``: a 400 with ``error.code`` ``content_policy_violation``
and ``error.inner_error`` = ``{"code": "ResponsibleAIPolicyViolation",
"content_filter_results": {<category>: {"filtered", "severity"}}, "revised_prompt"}``.
Older pages of the image guide show ``error.code`` ``contentFilter`` (also in a
``data`` item of a 2xx answer), and the chat API's filter answers with
``content_filter`` and ``innererror`` / ``content_filter_result``: all of them
are the same refusal.
"""
from __future__ import annotations

from typing import Any

__all__ = ["content_refusal", "filtered_categories", "item_refusal"]

#: ``error.code`` values Azure uses for a content refusal.
REFUSAL_CODES = frozenset({"content_policy_violation", "contentFilter", "content_filter", "moderation_blocked"})
#: ``inner_error.code`` of a Responsible AI refusal.
INNER_REFUSAL = "ResponsibleAIPolicyViolation"


def _inner(err: dict[str, Any]) -> dict[str, Any]:
    for key in ("inner_error", "innererror"):
        inner = err.get(key)
        if isinstance(inner, dict):
            return inner
    return {}


def filtered_categories(results: Any) -> list[str]:
    """The categories a ``content_filter_results`` object marks as filtered, in its order."""
    if not isinstance(results, dict):
        return []
    out = []
    for name, result in results.items():
        if isinstance(result, dict) and result.get("filtered") is True:
            out.append(name)
        elif name == "custom_blocklists" and isinstance(result, list) and any(  # the chat API's list form
                isinstance(r, dict) and r.get("filtered") is True for r in result):
            out.append(name)
    return out


def content_refusal(err: Any) -> str | None:
    """The message of an ``error`` object that is a content refusal, or None.

    The message names the filtered categories when Azure lists them.
    """
    if not isinstance(err, dict):
        return None
    inner = _inner(err)
    if err.get("code") not in REFUSAL_CODES and inner.get("code") != INNER_REFUSAL:
        return None
    message = err.get("message")
    if not isinstance(message, str) or not message.strip():
        message = "the request was rejected by Azure's content filter"
    results = inner.get("content_filter_results", inner.get("content_filter_result"))
    categories = filtered_categories(results)
    if categories:
        message = f"{message.rstrip()} (filtered: {', '.join(categories)})"
    return message


def item_refusal(item: dict[str, Any]) -> str | None:
    """Why a ``data`` item of a 2xx answer carries no image on content grounds, or None."""
    refusal = content_refusal(item.get("error"))
    if refusal is not None:
        return refusal
    categories = filtered_categories(item.get("content_filter_results"))
    categories += [c for c in filtered_categories(item.get("prompt_filter_results")) if c not in categories]
    if categories:
        return f"the image was filtered by Azure's content filter (filtered: {', '.join(categories)})"
    return None
