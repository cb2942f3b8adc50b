"""fal's queue API: endpoint ids, the URLs of a queued request, and the queue's answers.

A request is submitted to the endpoint's full id (``POST {base}/fal-ai/flux/dev``); its
status, result and cancel live under the *app* id, the endpoint id without its sub-path
(``{base}/fal-ai/flux/requests/{request_id}/status``): fal's queue documentation ("the
subpath should be used when making the request, but not when getting request status or
results") and both clients (``fal_client``'s ``AppId.from_endpoint_id``, @fal-ai/client's
``parseEndpointId``), which also keep a leading ``workflows/`` or ``comfy/`` namespace.

The gateway builds these URLs from its own base URL and never follows the ``status_url``,
``response_url`` or ``cancel_url`` an answer carries: a custom host or proxy stays in the
path, and the key goes nowhere an answer names.
"""
from __future__ import annotations

import re

import msgspec

from gateway.sdk import BadParam, MalformedAnswer

PROVIDER = "fal-ai"
#: Endpoint id namespaces whose app id has three segments (``workflows/owner/app``).
NAMESPACES = frozenset({"workflows", "comfy"})
RUNNING = frozenset({"IN_QUEUE", "IN_PROGRESS"})
COMPLETED = "COMPLETED"
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: A request id goes into a URL path: fal's are UUIDs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class Endpoint(msgspec.Struct, frozen=True):
    """A model string as fal addresses it."""

    #: The full endpoint id, where requests are submitted (``fal-ai/flux/dev``).
    id: str
    #: The app id, where a request is polled, read and cancelled (``fal-ai/flux``).
    app: str

    def submit_url(self, base_url: str) -> str:
        return f"{base_url}/{self.id}"

    def request_url(self, base_url: str, request_id: str) -> str:
        """The result's URL; ``/status`` and ``/cancel`` are below it."""
        return f"{base_url}/{self.app}/requests/{request_id}"


def endpoint(model: str) -> Endpoint:
    """``owner/app`` or ``owner/app/sub/path`` (``workflows/owner/app/...``); else a 400."""
    parts = model.split("/")
    size = 3 if parts[0] in NAMESPACES else 2
    if len(parts) < size or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise BadParam("model", f"Invalid fal model {model!r}: expected an endpoint id such as fal-ai/flux/dev "
                                "(owner/app, then an optional sub-path)")
    return Endpoint(model, "/".join(parts[:size]))


def read_object(body: bytes, what: str) -> dict[str, object]:
    """A 2xx answer's JSON object, or a 502 naming ``what`` was not one."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise MalformedAnswer(PROVIDER, f"the {what} is not JSON", body) from None
    if not isinstance(doc, dict):
        raise MalformedAnswer(PROVIDER, f"the {what} is not a JSON object", body)
    return doc


def read_submitted(body: bytes) -> str:
    """The request id of a 2xx answer to a submit, or a 502 saying what is wrong with it."""
    request_id = read_object(body, "answer to the submit").get("request_id")
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise MalformedAnswer(PROVIDER, "the queue's answer has no valid `request_id`", body)
    return request_id


def read_status(body: bytes) -> str:
    """``IN_QUEUE``, ``IN_PROGRESS`` or ``COMPLETED`` from a 2xx status answer."""
    status = read_object(body, "request status").get("status")
    if status not in RUNNING and status != COMPLETED:
        raise MalformedAnswer(PROVIDER, f"the request status is unknown: {status!r}", body)
    assert isinstance(status, str)
    return status
