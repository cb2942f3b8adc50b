"""Azure OpenAI's images API and passthrough to an Azure OpenAI resource."""
from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
import msgspec

from gateway.errors import GatewayError
from gateway.generation import (
    BadParam,
    ContentPolicyViolation,
    GenerationRequest,
    GenerationResult,
    Image,
    MalformedAnswer,
    decode_json,
)
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

_encode = msgspec.json.Encoder().encode
_OUTPUT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


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

    def generation_body(self, call: Call, req: GenerationRequest) -> bytes:
        """The JSON body.  The dated API takes the model from the deployment, so ``model``
        goes only when the client or the config named one; the v1 API wants the
        deployment name there."""
        client_model = _client_model(call)
        if urls.is_v1(call.options, self.settings.api_version):
            model = urls.require_deployment(call.options, client_model)
        else:
            named = call.params.get("model")
            model = named if isinstance(named, str) else None
        if (not req.changed and not call.target.override_params and client_model == model
                and (req.response_format is None or self._takes_response_format(req))):
            return call.ctx.body
        body: dict[str, Any] = {"prompt": req.prompt}
        if model is not None:
            body["model"] = model
        if req.n != 1 or "n" in call.params:
            body["n"] = req.n
        for key in ("size", "quality", "style", "user"):
            value = getattr(req, key)
            if value is not None:
                body[key] = value
        if req.response_format is not None and self._takes_response_format(req):
            body["response_format"] = req.response_format
        body.update(req.extra)
        return _encode(body)

    @staticmethod
    def _takes_response_format(req: GenerationRequest) -> bool:
        """Whether the model takes ``response_format``: dall-e-3 does; Azure refuses it for
        the gpt-image models, which answer base64 only (the gateway converts); a model
        the plugin does not know gets what the client sent."""
        mc = MODELS.get(req.model or "")
        return mc is None or "url" in mc.response_formats

    # -- the answer ----------------------------------------------------------------
    def parse_generation(self, call: Call, req: GenerationRequest, resp: aiohttp.ClientResponse,
                         body: bytes) -> GenerationResult:
        doc = decode_json(self, body)
        if not isinstance(doc, dict):
            raise MalformedAnswer(self.name, "the body is not a JSON object", body)
        refusal = content_refusal(doc.get("error"))
        if refusal is not None:
            raise ContentPolicyViolation(self.name, refusal)
        items = doc.get("data")
        if not isinstance(items, list):
            raise MalformedAnswer(self.name, "no `data` list", body)
        fmt = doc.get("output_format")
        content_type = _OUTPUT_TYPES.get(fmt) if isinstance(fmt, str) else None
        images = []
        for item in items:
            if not isinstance(item, dict):
                raise MalformedAnswer(self.name, "a `data` item is not an object", body)
            b64, url, revised = item.get("b64_json"), item.get("url"), item.get("revised_prompt")
            if not (isinstance(b64, str) or isinstance(url, str)):
                why = item_refusal(item)
                if why is not None:
                    raise ContentPolicyViolation(self.name, why)
                raise MalformedAnswer(self.name, "a `data` item has neither `b64_json` nor `url`", body)
            images.append(Image(b64=b64 if isinstance(b64, str) else None, url=url if isinstance(url, str) else None,
                                revised_prompt=revised if isinstance(revised, str) else None,
                                content_type=content_type))
        if len(images) != req.n:
            raise MalformedAnswer(self.name, f"asked for {req.n} images, got {len(images)}")
        created = doc.get("created")
        extra = {k: v for k, v in doc.items() if k not in ("created", "data", "provider")}
        return GenerationResult(images=images, created=created if isinstance(created, int) else None, extra=extra)

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
