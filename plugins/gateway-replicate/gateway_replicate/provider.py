"""Replicate's predictions API behind ``/v1/images/generations`` and ``/v1/images/edits``,
and passthrough to api.replicate.com.

One generation is one prediction: created with ``Prefer: wait`` (Replicate holds
the request until the model finishes, up to 60 s), then, if it is still
running, polled at ``GET /predictions/{id}`` until it ends.  A prediction the
gateway gives up on (client gone, request timeout, ``max_wait`` passed, an
error while polling) is cancelled with ``POST /predictions/{id}/cancel`` so it
stops running and billing.

An edit is a prediction of an edit model with the uploaded files in its input:
as data URIs up to :data:`INLINE_LIMIT` bytes, larger ones uploaded first with
the Files API (``POST /files``, their URL in the input) and deleted once the
prediction is over.
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
    InputImage,
    MalformedAnswer,
    Poll,
    Provider,
    ProviderSettings,
    Upstream,
    UpstreamRequest,
    build_form,
    drop_size,
    poll,
    send_afterwards,
)
from gateway_replicate.models import (
    ANY_MODEL,
    DEFAULT_EDIT_MODEL,
    DEFAULT_MODEL,
    EDIT_MODELS,
    MODELS,
    Target,
    build_edit_input,
    build_input,
    resolve,
    resolve_edit,
)
from gateway_replicate.predictions import Prediction, error_from_problem, outcome, read_file, read_prediction
from gateway_replicate.prices import PRICES

_encode = msgspec.json.Encoder().encode

#: Seconds between polls: the first wait, and the most it grows to (x1.5 each time).
FIRST_POLL = 0.5
MAX_POLL = 2.0
#: Failed polls in a row (429, 5xx, connection errors) tolerated before giving up.
POLL_RETRIES = 3
#: Replicate's shortest ``Cancel-After``.
MIN_CANCEL_AFTER = 5
#: Bytes of an input file sent inline as a data URI; larger files go through the Files API
#: (Replicate: "use a data URL when you have a small file <= 256kb", an HTTP URL above).
INLINE_LIMIT = 256_000


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
    #: Replicate deletes an API prediction's output files after an hour: a URL answer gets the
    #: gateway's own URL (kept for ``images.ttl``), and the request log keeps the images.
    result_urls_expire = True
    Settings = ReplicateSettings
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL,
        models={name: spec.caps for name, spec in MODELS.items()},
        any_model=ANY_MODEL,
        # Edits: the listed models only (another model's image input field is unknown).
        edit_models={name: spec.caps for name, spec in EDIT_MODELS.items()},
        default_edit_model=DEFAULT_EDIT_MODEL,
        parameters=frozenset({"prompt", "model", "n", "size", "style", "response_format"}),
        # Every model has its own inputs: the client's native ones go into `input` as they are.
        passes_unknown_parameters=True,
    )
    #: Official models per output image; others are billed by run time, not priced
    #: (gateway_replicate/prices.py).
    prices = PRICES
    settings: ReplicateSettings

    # -- the create request ------------------------------------------------------------
    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        target = resolve(_model_name(req.model or DEFAULT_MODEL))
        return self._create(attempt, target, build_input(target.spec, req))

    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """A prediction of an edit model with the uploaded files inline as data URIs (those
        over :data:`INLINE_LIMIT` are swapped for uploaded files when it runs)."""
        target = resolve_edit(_model_name(req.model or DEFAULT_EDIT_MODEL))
        assert target.spec is not None and target.name is not None
        if target.spec.size_field is None:  # a model without a size input
            req = drop_size(attempt, req, f"{self.name} model {target.name!r}", "it sets the output size itself")
        return self._create(attempt, target, build_edit_input(target.spec, req))

    def _create(self, attempt: Attempt, target: Target, inp: dict[str, object]) -> UpstreamRequest:
        headers = {"Content-Type": "application/json"}
        headers.update(attempt.forwarded_headers())
        headers.update(self.wait_headers(attempt))
        headers.update(self.auth_headers(attempt))
        return UpstreamRequest("POST", attempt.base_url + target.path(), headers, _encode(target.body(inp)))

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
        """Create the prediction (``attempt.upstream``, after uploading an edit's large files),
        poll it until it ends, and cancel it when the gateway gives up on it; every request
        goes through ``upstream``.  Uploaded files are deleted once it is over."""
        assert attempt.upstream is not None
        started = asyncio.get_running_loop().time()
        uploaded: list[str] = []
        try:
            create = attempt.upstream
            if isinstance(req, EditRequest):
                create = await self._host_large_files(attempt, req, upstream, create, uploaded)
            pred = read_prediction(await self._exchange(upstream, create))
            return await self._run(attempt, upstream, pred, started)
        finally:
            for file_id in uploaded:
                upstream.spawn(self._delete_file(attempt, upstream, file_id))

    async def _run(self, attempt: Attempt, upstream: Upstream, pred: Prediction,
                   started: float) -> GenerationResult:
        """Poll a created prediction until it ends (``max_wait`` from ``started``, on the loop's
        clock); the shared poller cancels it if the gateway gives up first."""
        if pred.running:
            created = pred

            async def check() -> Prediction | None:
                now = _same(created, read_prediction(await self._exchange(upstream, self._get(attempt, created.id))))
                return None if now.running else now

            cancel = UpstreamRequest("POST", f"{attempt.base_url}/predictions/{pred.id}/cancel",
                                     self.auth_headers(attempt))
            pred = await poll(upstream, self.name, Poll(
                check, what=f"prediction {pred.id}", cancel=cancel, first=FIRST_POLL, most=MAX_POLL,
                max_wait=self.settings.max_wait, started=started, retries=POLL_RETRIES,
                timeout_code="prediction_timeout", cancel_events=("prediction_cancelled", "cancel_failed")),
                trace_id=attempt.inbound.trace_id)
        return outcome(pred)

    async def _host_large_files(self, attempt: Attempt, req: EditRequest, upstream: Upstream,
                                create: UpstreamRequest, uploaded: list[str]) -> UpstreamRequest:
        """The create request with each input file over :data:`INLINE_LIMIT` uploaded and its
        data URI replaced by the file's URL (each file once; ids added to ``uploaded``)."""
        large = {image.data_uri(): image for image in (*req.images, req.mask)
                 if image is not None and len(image.data) > INLINE_LIMIT}
        if not large:
            return create
        body = msgspec.json.decode(create.body)
        inp = body.get("input") if isinstance(body, dict) else None
        if not isinstance(inp, dict):  # a transform plugin rewrote it: sent as it is
            return create
        urls: dict[str, str] = {}

        async def hosted(value: object) -> object:
            if not isinstance(value, str) or value not in large:
                return value
            if value not in urls:
                urls[value] = await self._upload(attempt, upstream, large[value], uploaded)
            return urls[value]

        for key, value in inp.items():
            inp[key] = [await hosted(v) for v in value] if isinstance(value, list) else await hosted(value)
        return UpstreamRequest(create.method, create.url, create.headers, _encode(body))

    async def _upload(self, attempt: Attempt, upstream: Upstream, image: InputImage, uploaded: list[str]) -> str:
        """``POST /files`` (multipart, the file in ``content``): the file's URL for the input."""
        body, content_type = await build_form([("content", image)])
        headers = {"Content-Type": content_type, **self.auth_headers(attempt)}
        hosted = read_file(await self._exchange(upstream, UpstreamRequest(
            "POST", f"{attempt.base_url}/files", headers, body)))
        uploaded.append(hosted.id)
        return hosted.url

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

    async def _delete_file(self, attempt: Attempt, upstream: Upstream, file_id: str) -> None:
        """Delete an input file the gateway uploaded, once its prediction is over (an app task)."""
        await send_afterwards(upstream, UpstreamRequest("DELETE", f"{attempt.base_url}/files/{file_id}",
                                                        self.auth_headers(attempt)),
                              provider=self.name, done="file_deleted", failed="file_delete_failed",
                              trace_id=attempt.inbound.trace_id, file=file_id)

    # -- errors --------------------------------------------------------------------------
    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        return error_from_problem(status, body, content_type)


def _model_name(model: object) -> str:
    if not isinstance(model, str):
        raise BadParam("model", f"Invalid `model` {model!r}: expected a string")
    return model


def _same(before: Prediction, now: Prediction) -> Prediction:
    if now.id != before.id:
        raise MalformedAnswer(ReplicateProvider.name, f"asked for prediction {before.id}, got {now.id}")
    return now
