"""fal.ai's queue API behind ``/v1/images/generations`` and ``/v1/images/edits``, and
passthrough to queue.fal.run.

One generation is one queued request: submitted to the endpoint
(``POST {base}/{endpoint id}``, ``Authorization: Key <key>``), its status polled under the
endpoint's app id (``GET {base}/{owner}/{app}/requests/{id}/status``) with the SDK's
shared poller until ``COMPLETED``, then its result read (``GET .../requests/{id}``).  A
request the gateway gives up on (client gone, request timeout, ``max_wait`` passed, a
failed poll, another part of the same request failed) is cancelled with
``PUT .../requests/{id}/cancel``, so it stops running and billing.
"""
from __future__ import annotations

import asyncio
import math
from typing import Annotated

import msgspec

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Attempt,
    BadParam,
    Capabilities,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    PerImage,
    Poll,
    Provider,
    ProviderSettings,
    Upstream,
    UpstreamRequest,
    drop_size,
    headers,
    poll,
)
from gateway_fal_ai.answers import error_from_answer, read_result
from gateway_fal_ai.models import (
    ANY_MODEL,
    DEFAULT_EDIT_MODEL,
    DEFAULT_MODEL,
    EDIT_FAMILIES,
    EDIT_MODELS,
    FAMILIES,
    MODELS,
    build_edit_input,
    build_input,
    spec_for,
)
from gateway_fal_ai.queue import COMPLETED, Endpoint, endpoint, read_status, read_submitted

_encode = msgspec.json.Encoder().encode

#: Seconds between status polls: the first wait, and the most it grows to (x1.5 each time).
FIRST_POLL = 0.5
MAX_POLL = 2.0
#: Failed polls in a row (429, 5xx, connection errors) tolerated before giving up.
POLL_RETRIES = 3
#: fal's ``X-Fal-Request-Timeout`` must be more than one second (fal_client refuses less).
MIN_REQUEST_TIMEOUT = 2


class FalSettings(ProviderSettings):
    """``[providers.fal-ai]`` settings."""

    #: Seconds the gateway waits for one queued request in all; then it is cancelled (504).
    #: Also sent as ``X-Fal-Request-Timeout``, so fal drops a request still queued by then.
    max_wait: Annotated[float, msgspec.Meta(gt=0)] = 600.0


class FalProvider(Provider):
    name = "fal-ai"
    default_base_url = "https://queue.fal.run"
    #: Results are files on fal's CDN (fal.media, v3.fal.media, ...).
    image_hosts = ("fal.media", "*.fal.media")
    Settings = FalSettings
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL,
        models={name: spec.caps for name, spec in MODELS.items()},
        families=tuple((pattern, spec.caps) for pattern, spec in FAMILIES),
        any_model=ANY_MODEL,
        # Edits: the listed endpoints and families only (another one's image input is unknown).
        edit_models={name: spec.caps for name, spec in EDIT_MODELS.items()},
        edit_families=tuple((pattern, spec.caps) for pattern, spec in EDIT_FAMILIES),
        default_edit_model=DEFAULT_EDIT_MODEL,
        parameters=frozenset({"prompt", "model", "n", "size", "style", "response_format"}),
        # Every endpoint has its own inputs: the client's native ones go into the body as they are.
        passes_unknown_parameters=True,
    )
    #: fal prices each endpoint on its own page; the one confirmed: FLUX1.1 [pro] ultra per
    #: image (README, "Prices").  Set others in ``[prices.fal-ai."<endpoint>"]``.
    prices = (PerImage(model="fal-ai/flux-pro/v1.1-ultra", usd=0.06),)
    settings: FalSettings

    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        return {"Authorization": f"Key {attempt.api_key}"} if attempt.api_key else {}

    # -- the submit request --------------------------------------------------------------
    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        target = _endpoint_of(req)
        return self._submit(attempt, target, build_input(spec_for(target.id), req))

    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """A request to an edit endpoint with the uploaded files inline as data URIs."""
        target = _endpoint_of(req)
        spec = spec_for(target.id, edit=True)
        if spec is None:
            raise BadParam("model", f"fal model {target.id!r} cannot edit through the gateway: its input for images "
                                    f"is not known.  Edit models: {', '.join(EDIT_MODELS)}, or any `.../edit` endpoint")
        if spec.size_field is None:  # an endpoint without a size input
            req = drop_size(attempt, req, f"{self.name} model {target.id!r}", "its output has the input image's size")
        return self._submit(attempt, target, build_edit_input(spec, req))

    def _submit(self, attempt: Attempt, target: Endpoint, inp: dict[str, object]) -> UpstreamRequest:
        out = {"Content-Type": "application/json"}
        out.update(attempt.forwarded_headers())
        out.update(self.timeout_headers(attempt))
        out.update(self.auth_headers(attempt))
        return UpstreamRequest("POST", target.submit_url(attempt.base_url), out, _encode(inp))

    def timeout_headers(self, attempt: Attempt) -> dict[str, str]:
        """``X-Fal-Request-Timeout``: fal gives up on a request still waiting to start by then,
        so a request the gateway could not cancel (its id never came back) ends anyway."""
        budget = self.settings.max_wait
        if attempt.timeout_ms is not None:
            budget = min(budget, attempt.timeout_ms / 1000.0)
        seconds = math.ceil(budget)
        return {"X-Fal-Request-Timeout": str(seconds)} if seconds >= MIN_REQUEST_TIMEOUT else {}

    # -- running a queued request ----------------------------------------------------------
    async def generate(self, attempt: Attempt, req: GenerationRequest, upstream: Upstream) -> GenerationResult:
        """Submit (``attempt.upstream``), poll until ``COMPLETED`` and read the result; the
        shared poller cancels the request when the gateway gives up on it first."""
        assert attempt.upstream is not None
        started = asyncio.get_running_loop().time()
        request_id = read_submitted(await self._exchange(upstream, attempt.upstream))
        # Built from the attempt's base URL and the app id, not from the answer's URLs: a custom
        # host stays in the path, and the key never goes where an answer points.
        url = _endpoint_of(req).request_url(attempt.base_url, request_id)

        async def check() -> str | None:
            status = read_status(await self._exchange(upstream, self._request(attempt, "GET", url + "/status")))
            return status if status == COMPLETED else None

        await poll(upstream, self.name, Poll(
            check, what=f"request {request_id}", cancel=self._request(attempt, "PUT", url + "/cancel"),
            first=FIRST_POLL, most=MAX_POLL, max_wait=self.settings.max_wait, started=started,
            retries=POLL_RETRIES, timeout_code="queue_timeout",
            cancel_events=("request_cancelled", "cancel_failed")), trace_id=attempt.inbound.trace_id)
        answer = await upstream.exchange(self._request(attempt, "GET", url))
        if not answer.ok:
            raise self.upstream_error(answer)
        result, withheld = read_result(answer.body, request_id)
        if withheld and attempt.plan is not None:
            # The caller asked for more images than it gets: say so, as a mapped parameter is.
            attempt.plan.report(f"n={len(result.images) + withheld}->{len(result.images)} ({withheld} withheld "
                                "by fal's safety checker: has_nsfw_concepts)")
        result.headers = headers.relay_headers(answer.headers)
        return result

    def _request(self, attempt: Attempt, method: str, url: str) -> UpstreamRequest:
        return UpstreamRequest(method, url, self.auth_headers(attempt))

    async def _exchange(self, upstream: Upstream, req: UpstreamRequest) -> bytes:
        """One request; the body of a 2xx answer, else fal's error raised."""
        answer = await upstream.exchange(req)
        if not answer.ok:
            raise self.upstream_error(answer)
        return answer.body

    # -- errors --------------------------------------------------------------------------
    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        return error_from_answer(status, body, content_type)


def _endpoint_of(req: GenerationRequest) -> Endpoint:
    model = req.model or (DEFAULT_EDIT_MODEL if isinstance(req, EditRequest) else DEFAULT_MODEL)
    if not isinstance(model, str):
        raise BadParam("model", f"Invalid `model` {model!r}: expected a string")
    return endpoint(model)
