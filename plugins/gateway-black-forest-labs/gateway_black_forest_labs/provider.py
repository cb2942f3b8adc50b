"""Black Forest Labs' FLUX API behind ``/v1/images/generations`` and ``/v1/images/edits``,
and passthrough to api.bfl.ai.

One image is one task: ``POST /v1/{model}`` with the key in ``x-key`` answers
``{id, polling_url}``; the task is polled with the shared poller (:func:`gateway.sdk.poll`:
backoff, the ``max_wait`` deadline, transient failures) until it ends.  BFL documents no way
to cancel a task, so a task the gateway gives up on (client gone, timeout) is simply no
longer polled.  ``n`` images are ``n`` tasks in parallel (the core splits them: one image
per call).

A ``Ready`` task's image is a signed URL that expires after about ten minutes, which BFL says
is not meant for end users: the provider declares ``result_urls_expire``, so the core fetches
it for ``b64_json`` and keeps it in the image store for a URL answer (handing on BFL's URL
only when it cannot be fetched now).
"""
from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import msgspec

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Attempt,
    Capabilities,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    Poll,
    Provider,
    Upstream,
    UpstreamRequest,
    drop_size,
    headers,
    poll,
)
from gateway_black_forest_labs.hosts import poll_url
from gateway_black_forest_labs.models import (
    ALL_NATIVES,
    ANY_MODEL,
    DEFAULT_EDIT_MODEL,
    DEFAULT_MODEL,
    EDIT_MODELS,
    FAMILIES,
    MODELS,
    build_body,
    build_edit_body,
    edit_spec_for,
    model_name,
    spec_for,
)
from gateway_black_forest_labs.options import HEADER_OPTIONS, BlackForestLabsOptions, BlackForestLabsSettings
from gateway_black_forest_labs.prices import PRICES
from gateway_black_forest_labs.slots import MODEL_LIMITS, ActiveTasks
from gateway_black_forest_labs.tasks import NOT_FOUND, Submitted, Task, error_from_answer, outcome, read_submitted, \
    read_task

_encode = msgspec.json.Encoder().encode

#: Seconds between polls: the first wait, and the most it grows to (x1.5 each time).  BFL's
#: examples poll every 0.5 s; FLUX.2 [klein] finishes in about a second.
FIRST_POLL = 0.5
MAX_POLL = 2.0
#: Failed polls in a row (429, 5xx, connection errors) tolerated before giving up.
POLL_RETRIES = 3


class BlackForestLabsProvider(Provider):
    name = "black-forest-labs"
    default_base_url = "https://api.bfl.ai"
    #: Result images are served from region-specific delivery hosts under bfl.ai
    #: (``delivery-eu1.bfl.ai``, ``delivery.<region>.bfl.ai``) and, in older answers, BFL's
    #: Azure storage account.
    image_hosts = ("delivery-*.bfl.ai", "delivery.*.bfl.ai", "bfldeliveryprod.blob.core.windows.net")
    #: A result URL lasts about ten minutes: answers carry the gateway's own URLs instead.
    result_urls_expire = True
    Options = BlackForestLabsOptions
    header_options: ClassVar = HEADER_OPTIONS
    #: ``region`` chooses the host: a virtual key's region is its own.
    host_options = ("region",)
    Settings = BlackForestLabsSettings
    #: A client's own ``x-key`` (the BFL SDK's, on passthrough without a gateway-side key)
    #: chooses whose account answers: cached answers are kept apart.
    cache_vary_headers = ("accept", "accept-encoding", "x-key")
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL,
        models={name: spec.caps for name, spec in MODELS.items()},
        families=tuple((pattern, spec.caps) for pattern, spec in FAMILIES),
        any_model=ANY_MODEL,
        edit_models={name: spec.caps for name, spec in EDIT_MODELS.items()},
        edit_families=tuple((pattern, spec.caps) for pattern, spec in FAMILIES),
        default_edit_model=DEFAULT_EDIT_MODEL,
        parameters=frozenset({"prompt", "model", "n", "size", "response_format", *ALL_NATIVES}),
    )
    #: By megapixel (FLUX.2) or per image (FLUX.1): gateway_black_forest_labs/prices.py.
    prices = PRICES
    settings: BlackForestLabsSettings

    def __init__(self, settings: BlackForestLabsSettings) -> None:
        super().__init__(settings)
        #: Slots of the tasks running now, per key (:mod:`gateway_black_forest_labs.slots`).
        self.active = ActiveTasks(settings.max_active_tasks, MODEL_LIMITS)

    # -- where and how -----------------------------------------------------------------
    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        """``x-key: <key>``."""
        return {"x-key": str(attempt.api_key)} if attempt.api_key else {}

    def api_base(self, attempt: Attempt) -> str:
        """Where tasks go: a custom host as it is, else the ``region``'s URL, else the base URL."""
        region = attempt.options.region
        if attempt.custom_host or region in (None, "global"):
            return attempt.base_url
        return str(getattr(self.settings.region_urls, region))

    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        """``/v1/{path}`` -> ``{base}/v1/{path}`` (the region's host with a ``region``)."""
        url = f"{self.api_base(attempt)}/v1{path}"
        return f"{url}?{query_string}" if query_string else url

    # -- the create request ------------------------------------------------------------
    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        model = model_name(req.model or DEFAULT_MODEL)
        return self._create(attempt, model, build_body(spec_for(model), req))

    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """A task of an edit model with the uploaded images as base64 in its image fields."""
        model = model_name(req.model or DEFAULT_EDIT_MODEL)
        spec = edit_spec_for(model)
        if spec.size_field is None:  # FLUX.1 Fill: the output has the input's size
            req = drop_size(attempt, req, f"{self.name} model {model!r}", "the output has the input image's size")
        return self._create(attempt, model, build_edit_body(spec, req))

    def _create(self, attempt: Attempt, model: str, body: dict[str, Any]) -> UpstreamRequest:
        sent = {"Content-Type": "application/json", "Accept": "application/json"}
        sent.update(attempt.forwarded_headers())
        sent.update(self.auth_headers(attempt))
        return UpstreamRequest("POST", f"{self.api_base(attempt)}/v1/{model}", sent, _encode(body))

    # -- running a task ----------------------------------------------------------------
    async def generate(self, attempt: Attempt, req: GenerationRequest, upstream: Upstream) -> GenerationResult:
        """Create the task (``attempt.upstream``), poll it until it ends, and deliver its image."""
        assert attempt.upstream is not None
        started = asyncio.get_running_loop().time()
        model = attempt.upstream.url.rpartition("/")[2]  # the create URL's last segment, checked
        async with self.active.slot(attempt.api_key and str(attempt.api_key), model, self.settings.max_wait):
            answer = await upstream.exchange(attempt.upstream)
            if not answer.ok:
                raise self.upstream_error(answer)
            submitted = read_submitted(answer.body)
            task = await self._wait(attempt, upstream, submitted, started)
        image = outcome(task, req.prompt)
        return GenerationResult(images=[image], headers=headers.relay_headers(answer.headers))

    async def _wait(self, attempt: Attempt, upstream: Upstream, submitted: Submitted, started: float) -> Task:
        """Poll the task until it ends (``max_wait`` from ``started``, on the loop's clock); the
        request's own timeout and a client gone stop the polls sooner (the attempt is cancelled)."""
        url = poll_url(submitted.polling_url, submitted.id, self.api_base(attempt), attempt.custom_host is not None)
        request = UpstreamRequest("GET", url, {"Accept": "application/json", **self.auth_headers(attempt)})

        async def check() -> Task | None:
            answer = await upstream.exchange(request)
            if answer.status == 404:  # the task, not the endpoint: it ended as far as anyone can tell
                return Task(id=submitted.id, status=NOT_FOUND)
            if not answer.ok:
                raise self.upstream_error(answer)
            task = read_task(answer.body, submitted.id)
            return task if task.finished else None

        return await poll(upstream, self.name, Poll(
            check, what=f"task {submitted.id}", cancel=None, first=FIRST_POLL, most=MAX_POLL,
            max_wait=self.settings.max_wait, started=started, retries=POLL_RETRIES), trace_id=attempt.inbound.trace_id)

    # -- errors --------------------------------------------------------------------------
    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        return error_from_answer(status, body, content_type)
