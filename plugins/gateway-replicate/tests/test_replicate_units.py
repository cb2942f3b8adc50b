"""The Replicate provider's translations and its create/poll/cancel loop, in process.

``make_attempt`` builds the attempt the router would; a :class:`StubUpstream`
stands in for the core's ``Upstream`` client and answers from a script, so the
loop's requests, waits and the spawned cancel are checked without a socket.
"""
from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import msgspec
import pytest

from gateway.sdk import Answer, UpstreamError, UpstreamRequest
from gateway.testing import answer, make_attempt
from gateway_replicate.models import SDXL_VERSION
from gateway.sdk import AFTERWARDS_TIMEOUT
from gateway_replicate.provider import ReplicateProvider

BASE = "https://api.replicate.com/v1"
RUNNING = {"id": "p1", "status": "processing", "output": None}
DONE = {"id": "p1", "status": "succeeded", "output": ["https://replicate.delivery/xezq/p1/out-0.webp"]}


class _Response:
    def __init__(self, status: int) -> None:
        self.status = status
        self.released = False

    def release(self) -> None:
        self.released = True


class StubUpstream:
    """What ``generate`` uses of the core's Upstream: ``exchange`` answers from ``script``
    (the last answer repeats), ``send`` (the cancel) answers ``cancel_status`` or raises
    ``cancel_error``; waits and spawned work are recorded, not run."""

    provider = "replicate"

    def __init__(self, *script: Answer, cancel_status: int = 200, cancel_error: Exception | None = None) -> None:
        self.script = list(script)
        self.sent: list[UpstreamRequest] = []
        self.send_timeouts: list[float | None] = []
        self.waited: list[float] = []
        self.spawned: list[Coroutine[Any, Any, Any]] = []
        self.responses: list[_Response] = []
        self.cancel_status = cancel_status
        self.cancel_error = cancel_error

    async def exchange(self, req: UpstreamRequest, *, timeout: float | None = None) -> Answer:
        self.sent.append(req)
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def send(self, req: UpstreamRequest, *, timeout: float | None = None) -> Any:
        self.sent.append(req)
        self.send_timeouts.append(timeout)
        if self.cancel_error is not None:
            raise self.cancel_error
        resp = _Response(self.cancel_status)
        self.responses.append(resp)
        return resp

    async def read_body(self, resp: Any, limit: int | None = None) -> bytes:
        return b"{}"

    async def sleep(self, seconds: float) -> None:
        self.waited.append(seconds)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.spawned.append(coro)


def attempt_for(body: dict[str, Any] | None = None, **kw: Any) -> Any:
    attempt = make_attempt(ReplicateProvider, body={"prompt": "a fox", **(body or {})}, api_key="r8_unit", **kw)
    assert attempt.plan is not None
    attempt.upstream = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    return attempt


async def run(attempt: Any, upstream: StubUpstream) -> Any:
    assert attempt.plan is not None
    return await attempt.provider.generate(attempt, attempt.plan.parts[0], upstream)


# -- translations -------------------------------------------------------------------------

def test_create_request_of_an_official_model():
    attempt = attempt_for({"model": "black-forest-labs/flux-dev", "size": "1024x1024", "n": 2, "seed": 3})
    req = attempt.upstream
    assert (req.method, req.url) == ("POST", f"{BASE}/models/black-forest-labs/flux-dev/predictions")
    assert msgspec.json.decode(req.body) == {"input": {"prompt": "a fox", "aspect_ratio": "1:1", "num_outputs": 2,
                                                       "seed": 3}}
    assert req.headers["Authorization"] == "Bearer r8_unit"
    assert req.headers["Prefer"] == "wait=60" and req.headers["Cancel-After"] == "600s"


def test_create_request_of_a_pinned_model_goes_to_predictions_with_its_version():
    attempt = attempt_for({"model": "stability-ai/sdxl", "size": "1000x700"})
    assert attempt.upstream.url == f"{BASE}/predictions"
    assert msgspec.json.decode(attempt.upstream.body) == {
        "version": SDXL_VERSION, "input": {"prompt": "a fox", "width": 1000, "height": 704}}


@pytest.mark.parametrize(("timeout", "prefer", "after"), [("10500", "wait=9", "11s"), ("200", None, "5s")])
def test_wait_headers_stay_inside_the_request_timeout(timeout, prefer, after):  # noqa: ANN001
    attempt = attempt_for(headers={"x-portkey-request-timeout": timeout})
    assert attempt.provider.wait_headers(attempt) == {"Cancel-After": after, **({"Prefer": prefer} if prefer else {})}


def test_error_answer_keeps_replicates_status_detail_and_retry_after():
    provider = make_attempt(ReplicateProvider).provider
    err = provider.upstream_error(answer(429, {"title": "Request was throttled", "status": 429,
                                               "detail": "Request was throttled. Expected available in 7 seconds."},
                                         {"Retry-After": "7"}, content_type="application/problem+json"))
    assert err.status == 429 and str(err).startswith("replicate error: Request was throttled.")
    assert err.upstream_headers["Retry-After"] == "7"


# -- the create/poll/cancel loop ----------------------------------------------------------

async def test_polls_go_through_upstream_with_backoff_to_the_attempts_host():
    attempt = attempt_for(custom_host="https://proxy.example/replicate/v1")
    upstream = StubUpstream(answer(201, RUNNING), answer(200, RUNNING), answer(200, RUNNING), answer(200, DONE))
    result = await run(attempt, upstream)
    assert [image.url for image in result.images] == DONE["output"]
    assert [r.url for r in upstream.sent] == [
        "https://proxy.example/replicate/v1/models/black-forest-labs/flux-schnell/predictions",
        *["https://proxy.example/replicate/v1/predictions/p1"] * 3]
    assert all(r.headers["Authorization"] == "Bearer r8_unit" for r in upstream.sent)
    assert upstream.waited == [0.5, 0.75, 1.125]
    assert upstream.spawned == []


async def test_a_failed_poll_spawns_the_cancel_which_logs_the_trace_id(log_capture):  # noqa: ANN001
    attempt = attempt_for(headers={"x-portkey-trace-id": "trace-unit-1"})
    upstream = StubUpstream(answer(201, RUNNING), answer(404, {"title": "Not found", "detail": "Prediction not found"},
                                                         content_type="application/problem+json"))
    with pytest.raises(Exception, match="Prediction not found"):
        await run(attempt, upstream)
    [cancel] = upstream.spawned
    await cancel
    req = upstream.sent[-1]
    assert (req.method, req.url) == ("POST", f"{BASE}/predictions/p1/cancel")
    assert req.headers["Authorization"] == "Bearer r8_unit" and req.body is None
    assert upstream.send_timeouts == [AFTERWARDS_TIMEOUT]
    assert [r.released for r in upstream.responses] == [True]
    [line] = log_capture.events("replicate.prediction_cancelled")
    assert (line["task"], line["status"], line["trace_id"]) == ("prediction p1", 200, "trace-unit-1")


async def test_a_cancel_that_fails_is_logged_not_raised(log_capture):  # noqa: ANN001
    attempt = attempt_for(headers={"x-portkey-trace-id": "trace-unit-2"})
    upstream = StubUpstream(answer(201, RUNNING), answer(200, {"id": "p1", "status": "queued"}),
                            cancel_error=UpstreamError("Could not connect to replicate", provider="replicate"))
    with pytest.raises(Exception, match="unknown `status`"):
        await run(attempt, upstream)
    await upstream.spawned[0]
    [line] = log_capture.events("replicate.cancel_failed")
    assert line["task"] == "prediction p1" and "Could not connect" in line["error"]
    assert line["trace_id"] == "trace-unit-2"


async def test_a_finished_prediction_is_not_cancelled():
    attempt = attempt_for()
    upstream = StubUpstream(answer(201, {"id": "p1", "status": "failed", "error": "CUDA out of memory"}))
    with pytest.raises(Exception, match="failed: CUDA out of memory"):
        await run(attempt, upstream)
    assert upstream.spawned == [] and upstream.waited == []
