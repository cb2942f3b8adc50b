"""Replicate's predictions API behind ``/v1/images/generations``, and passthrough to api.replicate.com.

One generation is one prediction: created with ``Prefer: wait`` (Replicate holds
the request until the model finishes, up to 60 s), then, if it is still
running, polled at ``GET /predictions/{id}`` until it ends.  A prediction the
gateway gives up on (client gone, request timeout, ``max_wait`` passed, an
error while polling) is cancelled with ``POST /predictions/{id}/cancel`` so it
stops running and billing.
"""
from __future__ import annotations

import asyncio
import math
from typing import Annotated

import aiohttp
import msgspec
import structlog

from gateway.sdk import (
    MAX_ERROR_BODY,
    Attempt,
    BadParam,
    Capabilities,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    MalformedAnswer,
    Provider,
    ProviderSettings,
    Upstream,
    UpstreamError,
    UpstreamRequest,
)
from gateway_replicate.models import ANY_MODEL, DEFAULT_MODEL, MODELS, build_input, resolve
from gateway_replicate.predictions import Prediction, error_from_problem, outcome, read_prediction

_encode = msgspec.json.Encoder().encode
_log = structlog.get_logger("gateway.replicate")

#: Seconds between polls: the first wait, and the most it grows to (x1.5 each time).
FIRST_POLL = 0.5
MAX_POLL = 2.0
#: Failed polls in a row (429, 5xx, connection errors) tolerated before giving up.
POLL_RETRIES = 3
#: Seconds a cancel request may take; it runs after the client's answer is gone.
CANCEL_TIMEOUT = 10.0
#: Replicate's shortest ``Cancel-After``.
MIN_CANCEL_AFTER = 5
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


class ReplicateSettings(ProviderSettings):
    """``[providers.replicate]`` settings."""

    #: Seconds a create request lets Replicate wait for the result (``Prefer: wait=N``, 1 to 60);
    #: 0 creates without waiting and polls from the start.
    sync_wait: Annotated[int, msgspec.Meta(ge=0, le=60)] = 60
    #: Seconds the gateway waits for one prediction in all; then it is cancelled (504).  Also sent
    #: as ``Cancel-After`` so Replicate stops it even if the gateway cannot.
    max_wait: Annotated[float, msgspec.Meta(gt=0)] = 600.0


class ReplicateProvider(Provider):
    name = "replicate"
    default_base_url = "https://api.replicate.com/v1"
    #: Output files are served from replicate.delivery and its subdomains.
    image_hosts = ("replicate.delivery", "*.replicate.delivery")
    Settings = ReplicateSettings
    capabilities = Capabilities(
        default_model=DEFAULT_MODEL,
        models={name: spec.caps for name, spec in MODELS.items()},
        any_model=ANY_MODEL,
        parameters=frozenset({"prompt", "model", "n", "size", "style", "response_format"}),
        # Every model has its own inputs: the client's native ones go into `input` as they are.
        passes_unknown_parameters=True,
    )
    settings: ReplicateSettings

    # -- the create request ------------------------------------------------------------
    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        model = req.model or DEFAULT_MODEL
        if not isinstance(model, str):
            raise BadParam("model", f"Invalid `model` {model!r}: expected a string")
        target = resolve(model)
        headers = {"Content-Type": "application/json"}
        headers.update(attempt.forwarded_headers())
        headers.update(self.wait_headers(attempt))
        headers.update(self.auth_headers(attempt))
        return UpstreamRequest("POST", attempt.base_url + target.path(), headers,
                               _encode(target.body(build_input(target.spec, req))))

    def wait_headers(self, attempt: Attempt) -> dict[str, str]:
        """``Prefer: wait=N`` and ``Cancel-After`` within the attempt's own deadline.

        The create request must answer before the attempt times out: only then is
        the prediction's id known and the prediction can be cancelled.
        """
        budget = self.settings.max_wait
        timeout_ms = attempt.timeout_ms
        if timeout_ms is not None:
            budget = min(budget, timeout_ms / 1000.0)
        headers = {"Cancel-After": f"{max(MIN_CANCEL_AFTER, math.ceil(budget))}s"}
        wait = min(self.settings.sync_wait, math.floor(budget - 1))
        if wait >= 1:
            headers["Prefer"] = f"wait={wait}"
        return headers

    # -- running a prediction ----------------------------------------------------------
    async def generate(self, attempt: Attempt, req: GenerationRequest, upstream: Upstream) -> GenerationResult:
        """Create the prediction (``attempt.upstream``), poll it until it ends, and cancel
        it when the gateway gives up on it; every request goes through ``upstream``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.max_wait
        assert attempt.upstream is not None
        pred = read_prediction(await self._exchange(upstream, attempt.upstream))
        try:
            delay, failures = FIRST_POLL, 0
            while pred.running:
                if loop.time() >= deadline:
                    raise UpstreamError(
                        f"{self.name} prediction {pred.id} did not finish within {self.settings.max_wait:g} s",
                        status=504, code="prediction_timeout", provider=self.name)
                await upstream.sleep(delay)
                delay = min(delay * 1.5, MAX_POLL)
                try:
                    body = await self._exchange(upstream, self._get(attempt, pred.id))
                    pred = _same(pred, read_prediction(body))
                    failures = 0
                except GatewayError as e:
                    if isinstance(e, MalformedAnswer) or e.status not in _TRANSIENT or failures >= POLL_RETRIES:
                        raise
                    failures += 1
        except BaseException:
            # Client gone, timeout or error: nobody will take this prediction's images.
            if pred.running:
                upstream.spawn(self._cancel(attempt, upstream, pred.id))
            raise
        return outcome(pred)

    async def _exchange(self, upstream: Upstream, req: UpstreamRequest) -> bytes:
        """One request; the body of a 2xx answer, else the provider's error raised."""
        answer = await upstream.exchange(req)
        if not answer.ok:
            raise self.upstream_error(answer)
        return answer.body

    def _get(self, attempt: Attempt, prediction_id: str) -> UpstreamRequest:
        # Built from the attempt's base URL, not the answer's `urls.get`: a custom host
        # or proxy stays in the path, and the gateway never follows a URL it was handed.
        return UpstreamRequest("GET", f"{attempt.base_url}/predictions/{prediction_id}", self.auth_headers(attempt))

    async def _cancel(self, attempt: Attempt, upstream: Upstream, prediction_id: str) -> None:
        """Cancel a prediction (runs as an app task: the request that made it is gone)."""
        url = f"{attempt.base_url}/predictions/{prediction_id}/cancel"
        trace_id = attempt.inbound.trace_id
        try:
            resp = await upstream.send(UpstreamRequest("POST", url, self.auth_headers(attempt)),
                                       timeout=CANCEL_TIMEOUT)
            try:
                await upstream.read_body(resp, MAX_ERROR_BODY)
            finally:
                resp.release()
        except (GatewayError, aiohttp.ClientError, TimeoutError, RuntimeError) as e:
            # GatewayError: Upstream's 502s (unreachable, disconnected, reset); RuntimeError:
            # the app's session closed at shutdown.
            _log.warning("replicate.cancel_failed", prediction=prediction_id, error=f"{type(e).__name__}: {e}",
                         trace_id=trace_id)
            return
        _log.info("replicate.prediction_cancelled", prediction=prediction_id, status=resp.status,
                  trace_id=trace_id)

    # -- errors --------------------------------------------------------------------------
    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        return error_from_problem(status, body, content_type)


def _same(before: Prediction, now: Prediction) -> Prediction:
    if now.id != before.id:
        raise MalformedAnswer(ReplicateProvider.name, f"asked for prediction {before.id}, got {now.id}")
    return now
