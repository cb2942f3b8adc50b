"""What the Gemini API and Vertex AI share: one ``generateContent`` call per image, its answer,
its errors.  The two providers differ only in where the call goes and how it is authorized."""
from __future__ import annotations

import re
from typing import ClassVar

import msgspec

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Answer,
    Attempt,
    Capabilities,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    Provider,
    UpstreamRequest,
)
from gateway.sdk import headers as h

from gateway_google.answers import read_answer
from gateway_google.bodies import checked_model, request_body
from gateway_google.errors import google_error, retry_after
from gateway_google.models import DEFAULT_MODEL, FAMILIES, MODELS, capabilities
from gateway_google.prices import PRICES

__all__ = ["GenerateContentProvider", "image_capabilities", "version_path"]

_encode = msgspec.json.Encoder().encode
#: A passthrough path that names its API version (``/v1beta/models``, ``/v1beta1/projects/...``).
_VERSIONED = re.compile(r"^/(v\d+(?:alpha|beta)?\d*)(/|$)")


def version_path(path: str) -> bool:
    """Whether a passthrough path starts with an API version of its own."""
    return bool(_VERSIONED.match(path))


def image_capabilities(natives: frozenset[str]) -> Capabilities:
    """The image models of both APIs, generations and edits alike (one image per call)."""
    models = {name: capabilities(spec) for name, spec in MODELS.items()}
    families = tuple((pattern, capabilities(spec)) for pattern, spec in FAMILIES)
    return Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL,
        models=models,
        families=families,
        parameters=frozenset({"prompt", "model", "n", "size", "quality", "response_format", *natives}),
        edit_models=models,
        edit_families=families,
        default_edit_model=DEFAULT_MODEL,
    )


class GenerateContentProvider(Provider):
    """A Gemini image model behind ``POST .../models/{model}:generateContent``."""

    #: The native parameters this API takes (see ``bodies``).
    natives: ClassVar[frozenset[str]] = frozenset()
    #: Output image tokens by model (gateway_google/prices.py), on both of Google's APIs.
    prices = PRICES

    def model_url(self, attempt: Attempt, model: str) -> str:
        """Where ``generateContent`` of ``model`` goes."""
        raise NotImplementedError

    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        return self._request(attempt, req, request_body(attempt, req, [], self._where(req)))

    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """The same call with the input images as ``inlineData`` parts after the prompt."""
        return self._request(attempt, req, request_body(attempt, req, req.images, self._where(req)))

    def _where(self, req: GenerationRequest) -> str:
        return f"{self.name} model {req.model!r}"

    def _request(self, attempt: Attempt, req: GenerationRequest, body: dict[str, object]) -> UpstreamRequest:
        url = self.model_url(attempt, checked_model(req.model))
        headers = {**attempt.forwarded_headers(), "Content-Type": "application/json", **self.auth_headers(attempt)}
        return UpstreamRequest("POST", url, headers, _encode(body))

    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        return read_answer(self.name, answer.body)

    def upstream_error(self, answer: Answer) -> GatewayError:
        err = self.error_from_response(answer.status, answer.body, answer.content_type)
        err.upstream_headers = h.relay_headers(answer.headers)
        if "Retry-After" not in err.upstream_headers:
            delay = retry_after(answer.body, answer.content_type)
            if delay is not None:
                err.upstream_headers["Retry-After"] = delay
        return err

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        return google_error(self.name, status, body, content_type)
