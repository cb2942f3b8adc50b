"""Azure OpenAI's images API and passthrough to an Azure OpenAI resource."""
from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
import msgspec

from gateway.errors import GatewayError
from gateway.generation import (
    ContentPolicyViolation,
    GenerationRequest,
    GenerationResult,
    MalformedAnswer,
)
from gateway.negotiation import BadParam
from gateway.openai_compatible import OpenAICompatibleProvider
from gateway.provider import IMAGES_GENERATIONS, Call, Capabilities, UpstreamRequest
from gateway_azure_openai import urls
from gateway_azure_openai.errors import content_refusal, item_refusal
from gateway_azure_openai.models import DEFAULT_MODEL, MODELS, PARAMETERS
from gateway_azure_openai.options import (
    HEADER_OPTIONS,
    AzureOpenAIOptions,
    AzureOpenAISettings,
    ad_token,
)



class AzureOpenAIProvider(OpenAICompatibleProvider):
    """``x-portkey-provider: azure-openai``: a deployment of an Azure OpenAI resource."""

    name = "azure-openai"
    default_base_url = "https://" + urls.RESOURCE_PLACEHOLDER + ".openai.azure.com/openai"
    # DALL-E 3 answers with SAS links on Azure's image storage accounts
    # (dalleprodsec, dalleproduse, dalletipusw2, ...).
    image_hosts = ("dalle*.blob.core.windows.net",)
    Options = AzureOpenAIOptions
    Settings = AzureOpenAISettings
    header_options: ClassVar = HEADER_OPTIONS
    capabilities = Capabilities(
        default_model=DEFAULT_MODEL, models=MODELS, parameters=PARAMETERS, passes_unknown_parameters=True,
    )
    settings: AzureOpenAISettings

    # -- where and how -------------------------------------------------------------
    def auth_headers(self, call: Call) -> dict[str, str]:
        """``api-key: <key>``, or ``Authorization: Bearer <token>`` with an Entra ID token."""
        token = call.options.azure_ad_token
        if token:
            return {"Authorization": f"Bearer {ad_token(token)}"}
        return {"api-key": str(call.api_key)} if call.api_key else {}

    def build_proxy(self, call: Call) -> UpstreamRequest:
        req = super().build_proxy(call)
        if call.options.azure_ad_token:
            # The configured credential wins: a client's own `api-key` does not ride along.
            req.headers.popall("api-key", None)
        return req

    def proxy_url(self, call: Call, path: str, query_string: str) -> str:
        return urls.proxy_url(call.base_url, call.options, self.settings.api_version, path, query_string)

    def generation_url(self, call: Call, req: GenerationRequest) -> str:
        return urls.generation_url(call.base_url, call.options, self.settings.api_version)

    # -- the request ---------------------------------------------------------------
    def build_request(self, call: Call) -> Any:
        if call.endpoint == IMAGES_GENERATIONS:
            self._check_generation_target(call)
            named = call.options.azure_model_name
            asked = call.params.get("model")
            if named and not (isinstance(asked, str) and asked in MODELS):
                # The deployment's model, as the config or header states it, drives the mapping.
                override = {**(call.target.override_params or {}), "model": named}
                call.target = msgspec.structs.replace(call.target, override_params=override)
        return super().build_request(call)

    def _check_generation_target(self, call: Call) -> None:
        """A 400 naming what is missing, before any parameter mapping or upstream call."""
        urls.api_root(call.base_url, call.options)
        if urls.is_v1(call.options, self.settings.api_version):
            urls.require_deployment(call.options, _client_model(call))
        else:
            urls.require_deployment(call.options)
        if call.params.get("stream") is True:
            raise BadParam("stream", "`stream` is not supported on /v1/images/generations (the gateway answers "
                                     "one JSON document); stream through passthrough /v1/openai/... instead")

    def body_model(self, call: Call, req: GenerationRequest) -> str | None:
        """The dated API takes the model from the deployment, so ``model`` goes only when
        the client or the config named one; the v1 API wants the deployment name there."""
        if urls.is_v1(call.options, self.settings.api_version):
            return urls.require_deployment(call.options, _client_model(call))
        named = call.params.get("model")
        return named if isinstance(named, str) else None

    def body_as_sent(self, call: Call, req: GenerationRequest) -> bool:
        return super().body_as_sent(call, req) and _client_model(call) == self.body_model(call, req)

    # -- the answer ----------------------------------------------------------------
    def parse_generation(self, call: Call, req: GenerationRequest, resp: aiohttp.ClientResponse,
                         body: bytes) -> GenerationResult:
        result = super().parse_generation(call, req, resp, body)
        if len(result.images) != req.n:
            raise MalformedAnswer(self.name, f"asked for {req.n} images, got {len(result.images)}")
        return result

    def answer_refusal(self, doc: Any) -> str | None:
        """A refusal in a 2xx answer: an ``error`` object, or a ``data`` item filtered away."""
        if not isinstance(doc, dict):
            return None
        refusal = content_refusal(doc.get("error"))
        items = doc.get("data")
        for item in items if isinstance(items, list) else ():
            if refusal is None and isinstance(item, dict) and not ("b64_json" in item or "url" in item):
                refusal = item_refusal(item)
        return refusal

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        """Azure's error body; a Responsible AI refusal becomes ``content_policy_violation``."""
        if body and "json" in content_type:
            try:
                doc = msgspec.json.decode(body)
            except msgspec.DecodeError:
                doc = None
            refusal = content_refusal(doc.get("error")) if isinstance(doc, dict) else None
            if refusal is not None:
                return ContentPolicyViolation(self.name, refusal, status=status)
        return super().error_from_response(status, body, content_type)


def _client_model(call: Call) -> str | None:
    """The ``model`` the client itself sent (on the v1 API, a deployment name)."""
    model = call.ctx.params.get("model")
    return model if isinstance(model, str) and model else None
