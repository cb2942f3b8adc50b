"""Azure OpenAI's images API (generations and edits, streamed or not) and passthrough to an
Azure OpenAI resource."""
from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, ClassVar

import msgspec

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Answer,
    Attempt,
    BadParam,
    Capabilities,
    ContentPolicyViolation,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    InputImage,
    MalformedAnswer,
    OpenAICompatibleProvider,
    UpstreamRequest,
)
from gateway_azure_openai import urls
from gateway_azure_openai.errors import content_refusal, item_refusal
from gateway_azure_openai.models import DEFAULT_MODEL, EDIT_FAMILIES, FAMILIES, MODELS, PARAMETERS
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
    # The resource is the host: a virtual key's api-key goes to its own resource only.
    host_options = ("resource_name",)
    # DALL-E 3 answers with SAS links on Azure's image storage accounts
    # (dalleprodsec, dalleproduse, dalletipusw2, ...).
    image_hosts = ("dalle*.blob.core.windows.net",)
    Options = AzureOpenAIOptions
    Settings = AzureOpenAISettings
    header_options: ClassVar = HEADER_OPTIONS
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL, models=MODELS, families=FAMILIES, parameters=PARAMETERS,
        edit_families=EDIT_FAMILIES, default_edit_model=DEFAULT_MODEL,
        passes_unknown_parameters=True,
        # `stream: true` (the GPT image family, generations and edits): the deployment's
        # Server-Sent Events, relayed as they arrive.
        streams=True,
    )
    #: A client's own ``api-key`` (the AzureOpenAI SDK's, on passthrough without a
    #: gateway-side key) chooses whose resource answers: cached answers are kept apart.
    cache_vary_headers = ("accept", "accept-encoding", "api-key")
    #: Per-request ids, timings and rate-limit counters Azure and its API Management front add.
    volatile_headers = frozenset({
        "set-cookie", "x-request-id", "date", "age", "apim-request-id", "x-ms-client-request-id",
        "x-envoy-upstream-service-time", "azureml-model-session", "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
    })
    settings: AzureOpenAISettings

    # -- where and how -------------------------------------------------------------
    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        """``api-key: <key>``, or ``Authorization: Bearer <token>`` with an Entra ID token."""
        token = attempt.options.azure_ad_token
        if token:
            return {"Authorization": f"Bearer {ad_token(token)}"}
        return {"api-key": str(attempt.api_key)} if attempt.api_key else {}

    def build_proxy(self, attempt: Attempt) -> UpstreamRequest:
        req = super().build_proxy(attempt)
        if attempt.options.azure_ad_token:
            # The configured credential wins: a client's own `api-key` does not ride along.
            req.headers.popall("api-key", None)
        return req

    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        return urls.proxy_url(attempt.base_url, attempt.options, self.settings.api_version, path, query_string)

    def generation_url(self, attempt: Attempt, req: GenerationRequest) -> str:
        return urls.images_url(attempt.base_url, attempt.options, self.settings.api_version, "generations")

    def edit_url(self, attempt: Attempt, req: EditRequest) -> str:
        return urls.images_url(attempt.base_url, attempt.options, self.settings.api_version, "edits")

    # -- the request ---------------------------------------------------------------
    def generation_params(self, attempt: Attempt) -> dict[str, Any]:
        """The target checked (a 400 naming what is missing or what the deployment cannot
        do, before any mapping or upstream call), and the deployment's model, as the config
        or header names it, driving the mapping when the request's ``model`` is not one the
        plugin knows.  Serves generations and edits alike."""
        self._check_target(attempt)
        named = _named_model(attempt)
        params = {**attempt.params, "model": named} if named is not None else attempt.params
        model = params.get("model") or DEFAULT_MODEL
        if attempt.endpoint == IMAGES_EDITS:
            self._check_edit(attempt, model)
        if params.get("stream") is True:
            self._check_stream(attempt, model)
        return params

    def _check_target(self, attempt: Attempt) -> None:
        """A 400 naming what is missing: the resource, and the deployment."""
        urls.api_root(attempt.base_url, attempt.options)
        if urls.is_v1(attempt.options, self.settings.api_version):
            urls.require_deployment(attempt.options, _client_model(attempt))
        else:
            urls.require_deployment(attempt.options)

    def _check_edit(self, attempt: Attempt, model: str) -> None:
        """What Azure's edit API refuses, refused here: a DALL-E deployment, a dated version
        without the edit endpoint, an input that is not PNG or JPEG, a mask that is not PNG,
        ``input_fidelity`` for gpt-image-1-mini."""
        if _is_dall_e(model):
            raise BadParam("model", f"Azure's {model} deployments do not edit images; edit with a GPT image "
                                    "model deployment (gpt-image-1, -1-mini, -1.5, -2)")
        self._require_gpt_image_version(attempt, "x-portkey-azure-api-version", "image edit endpoint")
        for name, value in attempt.inbound.form:
            if not isinstance(value, InputImage):
                continue
            if name == "mask" and value.media_type != "image/png":
                raise BadParam("mask", f"Azure takes the mask as a PNG file, not {value.media_type}")
            if name != "mask" and value.media_type not in _EDIT_INPUT_TYPES:
                raise BadParam("image", f"Azure edits PNG and JPEG images; `{name}` "
                                        f"({value.filename or 'no name'}) is {value.media_type}")
        if "input_fidelity" in attempt.params and model.startswith("gpt-image-1-mini"):
            raise BadParam("input_fidelity", f"`input_fidelity` is not supported by {model} on Azure")

    def _check_stream(self, attempt: Attempt, model: str) -> None:
        """``stream: true`` needs a GPT image deployment and an API version that streams."""
        if _is_dall_e(model):
            raise BadParam("stream", f"Azure's {model} deployments do not stream; only the GPT image models do")
        self._require_gpt_image_version(attempt, "stream", "image streaming")

    def _require_gpt_image_version(self, attempt: Attempt, param: str, what: str) -> None:
        """A 400 naming ``param`` when the target's dated API version predates the GPT image
        models (and with them ``what``)."""
        if urls.dated_before(attempt.options, self.settings.api_version, urls.GPT_IMAGE_SINCE):
            version = attempt.options.api_version or self.settings.api_version
            raise BadParam(param, f"Azure's API version {version} has no {what}: use 2025-04-01-preview or later, "
                                  "or the v1 API (`api_version` v1)")

    def body_model(self, attempt: Attempt, req: GenerationRequest) -> str | None:
        """The dated API takes the model from the deployment, so ``model`` goes only when
        the client, the config or ``azure_model_name`` named one; the v1 API wants the
        deployment name there."""
        if urls.is_v1(attempt.options, self.settings.api_version):
            return urls.require_deployment(attempt.options, _client_model(attempt))
        named = _named_model(attempt) or attempt.params.get("model")
        return named if isinstance(named, str) else None

    def body_as_sent(self, attempt: Attempt, req: GenerationRequest) -> bool:
        # A model substituted from `azure_model_name` is a change the client's bytes lack.
        return (super().body_as_sent(attempt, req) and _named_model(attempt) is None
                and _client_model(attempt) == self.body_model(attempt, req))

    # -- the answer ----------------------------------------------------------------
    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        result = super().parse_generation(attempt, req, answer)
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


#: Input images Azure's edit API takes (the mask: PNG only).
_EDIT_INPUT_TYPES = frozenset({"image/png", "image/jpeg"})


def _is_dall_e(model: str) -> bool:
    return model.startswith("dall-e")


def _named_model(attempt: Attempt) -> str | None:
    """``azure_model_name`` when it stands in for the request's ``model`` (which names no
    model the plugin knows), else None."""
    named = attempt.options.azure_model_name
    asked = attempt.params.get("model")
    known = isinstance(asked, str) and (asked in MODELS or any(fnmatchcase(asked, p) for p, _ in FAMILIES))
    return named if named and not known else None


def _client_model(attempt: Attempt) -> str | None:
    """The ``model`` the client itself sent (on the v1 API, a deployment name)."""
    model = attempt.inbound.params.get("model")
    return model if isinstance(model, str) and model else None
