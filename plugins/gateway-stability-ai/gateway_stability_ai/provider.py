"""Stability AI: ``x-portkey-provider: stability-ai``.

Unified generations go to the v1 text-to-image endpoint (JSON) or to a
v2beta Stable Image endpoint (multipart form), by model; see
:mod:`gateway_stability_ai.models`.  Edits go to a v2beta edit route, or to
image-to-image on the sd3 and ultra endpoints (:mod:`gateway_stability_ai.edits`).
Passthrough maps the gateway's ``/v1/...`` paths onto Stability's own versioned paths.
"""
from __future__ import annotations

import re
from typing import Any

import aiohttp
import msgspec

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Answer,
    Attempt,
    BadParam,
    Capabilities,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    InputImage,
    Provider,
    UpstreamRequest,
    build_form,
)
from gateway_stability_ai import answers, edits
from gateway_stability_ai.models import (
    ANY_MODEL,
    CAPABILITIES,
    DEFAULT_EDIT_MODEL,
    DEFAULT_MODEL,
    EDIT_CAPABILITIES,
    EDIT_FAMILIES,
    MAX_REQUEST_BYTES,
    SD3_PARAMETERS,
    V1,
    V1_PARAMETERS,
    Route,
    route_for,
)
from gateway_stability_ai.prices import PRICES

_encode = msgspec.json.Encoder().encode
#: A path that already names one of Stability's API versions (``/v1``, ``/v2beta``, ``/v2alpha``, ...).
_VERSIONED = re.compile(r"/v\d+(?:alpha|beta)?\d*(?:/|$)")


class StabilityProvider(Provider):
    """Stability's v1 engines and v2beta Stable Image endpoints (generations and edits), and
    passthrough to api.stability.ai."""

    name = "stability-ai"
    default_base_url = "https://api.stability.ai"
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL,
        models=CAPABILITIES,
        any_model=ANY_MODEL,
        parameters=frozenset({"prompt", "model", "n", "size", "style", "response_format"})
        | V1_PARAMETERS | SD3_PARAMETERS,
        edit_models=EDIT_CAPABILITIES,
        edit_families=EDIT_FAMILIES,
        default_edit_model=DEFAULT_EDIT_MODEL,
    )
    #: Credits per image, as USD (gateway_stability_ai/prices.py).
    prices = PRICES

    # -- passthrough ------------------------------------------------------------------
    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        """``/v1/v2beta/...`` -> ``/v2beta/...``; ``/v1/v1/...`` -> ``/v1/...``; any
        other ``/v1/...`` (``/v1/generation/...``, ``/v1/user/balance``) keeps its ``/v1``."""
        if not _VERSIONED.match(path):
            path = "/v1" + path
        url = attempt.base_url + path
        return f"{url}?{query_string}" if query_string else url

    # -- generations ------------------------------------------------------------------
    async def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        route = _route(req)
        headers = self._headers(attempt)
        url = attempt.base_url + route.path
        if route.api == V1:
            headers["Content-Type"] = "application/json"
            return UpstreamRequest("POST", url, headers, _encode(_v1_body(req, route)))
        form = aiohttp.FormData(default_to_multipart=True)
        for key, value in _v2_fields(req, route).items():
            form.add_field(key, value)
        writer = form()
        # Bytes, not a stream: the cache keys on the body and retries send it again.
        body = await writer.as_bytes()
        headers["Content-Type"] = writer.content_type
        return UpstreamRequest("POST", url, headers, body)

    # -- edits ------------------------------------------------------------------------
    async def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        model, edit = edits.route(req)
        req = edits.checked(attempt, req, model, edit)
        parts = [(name, value if isinstance(value, InputImage) else _form_value(value))
                 for name, value in edits.fields(req, edit)]
        body, content_type = await build_form(parts)
        if len(body) > MAX_REQUEST_BYTES:
            raise BadParam("image", f"The edit is {len(body):,} bytes: Stability takes requests of at most "
                                    f"{MAX_REQUEST_BYTES:,} bytes (10 MiB), image and mask together")
        headers = self._headers(attempt)
        headers["Content-Type"] = content_type
        return UpstreamRequest("POST", attempt.base_url + edit.path, headers, body)

    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        # Every edit route answers as the v2beta generate endpoints do.
        if not isinstance(req, EditRequest) and _route(req).api == V1:
            return answers.parse_v1(self, req, answer.body)
        return answers.parse_v2(self, req, answer.headers.get("Content-Type", ""), answer.body)

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        return answers.error(self.name, status, body, content_type) or super().error_from_response(
            status, body, content_type)

    def _headers(self, attempt: Attempt) -> dict[str, str]:
        headers = dict(attempt.forwarded_headers())
        # The gateway reads base64 JSON, whatever the client forwarded.
        headers["Accept"] = "application/json"
        headers.update(self.auth_headers(attempt))
        return headers


def _route(req: GenerationRequest) -> Route:
    route = route_for(req.model or DEFAULT_MODEL)
    if route is None:
        raise BadParam("model", f"Invalid `model` {req.model!r} for stability-ai: not a Stability model name")
    return route


def _seed(req: GenerationRequest, route: Route) -> Any:
    seed = req.extra.get("seed")
    # The core gives each further call of a split ``n`` the next seed; keep it in range.
    if isinstance(seed, int) and not isinstance(seed, bool) and seed > route.max_seed:
        seed %= route.max_seed + 1
    return seed


def _v1_body(req: GenerationRequest, route: Route) -> dict[str, Any]:
    prompts: list[dict[str, Any]] = [{"text": req.prompt, "weight": 1}]
    extra = dict(req.extra)
    negative = extra.pop("negative_prompt", None)
    if negative:
        # The v1 API's negative prompt: a text prompt with a weight below zero.
        prompts.append({"text": negative, "weight": -1})
    body: dict[str, Any] = {"text_prompts": prompts, "samples": req.n}
    if req.width is not None and req.height is not None:
        body["width"], body["height"] = req.width, req.height
    if req.style is not None:
        body["style_preset"] = req.style
    body.update(extra)
    if "seed" in extra:
        body["seed"] = _seed(req, route)
    return body


def _v2_fields(req: GenerationRequest, route: Route) -> dict[str, str]:
    fields: dict[str, Any] = {"prompt": req.prompt}
    if route.model_field is not None:
        fields["model"] = route.model_field
    if req.aspect_ratio is not None:
        fields["aspect_ratio"] = req.aspect_ratio
    if req.style is not None:
        fields["style_preset"] = req.style
    fields.update(req.extra)
    if "seed" in req.extra:
        fields["seed"] = _seed(req, route)
    return {key: _form_value(value) for key, value in fields.items() if value is not None}


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return _encode(value).decode()
