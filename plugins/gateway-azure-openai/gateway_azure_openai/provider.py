"""Azure OpenAI's images API (generations and edits, streamed or not) and passthrough to an
Azure OpenAI resource.

Authentication, in the order it is used: ``azure_ad_token`` (a Microsoft Entra ID token the
caller got) as ``Authorization: Bearer``; ``azure_auth_mode`` ``entra``, ``managed`` or
``workload``: a token the gateway fetches for that identity (:mod:`identity`), kept until
shortly before it expires (:mod:`tokens`); else the provider key as ``api-key``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
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
    BadRequest,
    Capabilities,
    ContentPolicyViolation,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    InputImage,
    MalformedAnswer,
    OpenAICompatibleProvider,
    UpstreamError,
    UpstreamRequest,
)
from gateway_azure_openai import urls
from gateway_azure_openai.errors import content_refusal, item_refusal
from gateway_azure_openai.identity import (
    DEFAULT_AUTHORITY,
    DEFAULT_SCOPE,
    ClientSecret,
    Federated,
    ManagedIdentity,
    Source,
    read_token_answer,
)
from gateway_azure_openai.models import DEFAULT_MODEL, EDIT_FAMILIES, FAMILIES, MODELS, PARAMETERS
from gateway_azure_openai.options import (
    ALIASES,
    HEADER_OPTIONS,
    IDENTITY_OPTIONS,
    AzureOpenAIOptions,
    AzureOpenAISettings,
    ad_token,
    canonical,
)
from gateway_azure_openai.origin import operator_set
from gateway_azure_openai.prices import PRICES
from gateway_azure_openai.tokens import TokenCache, send

#: Environment variables the identities read (once, when the provider is made).
ENVIRONMENT = ("AZURE_AUTHORITY_HOST", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE",
               "IDENTITY_ENDPOINT", "IDENTITY_HEADER")
#: Modes whose token the gateway fetches itself.
TOKEN_MODES = frozenset({"entra", "managed", "workload"})


class AzureOpenAIProvider(OpenAICompatibleProvider):
    """``x-portkey-provider: azure-openai``: a deployment of an Azure OpenAI resource."""

    name = "azure-openai"
    default_base_url = "https://" + urls.RESOURCE_PLACEHOLDER + ".openai.azure.com/openai"
    # The resource is the host: a virtual key's api-key goes to its own resource only.
    host_options = ("resource_name", "azure_resource_name")
    # DALL-E 3 answers with SAS links on Azure's image storage accounts
    # (dalleprodsec, dalleproduse, dalletipusw2, ...).
    image_hosts = ("dalle*.blob.core.windows.net",)
    Options = AzureOpenAIOptions
    Settings = AzureOpenAISettings
    header_options: ClassVar = HEADER_OPTIONS
    option_aliases: ClassVar = ALIASES
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL, models=MODELS, families=FAMILIES, parameters=PARAMETERS,
        edit_families=EDIT_FAMILIES, default_edit_model=DEFAULT_MODEL,
        passes_unknown_parameters=True,
        # `stream: true` (the GPT image family, generations and edits): the deployment's
        # Server-Sent Events, relayed as they arrive.
        streams=True,
    )
    #: OpenAI's list prices by default (gateway_azure_openai/prices.py).
    prices = PRICES
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

    def __init__(self, settings: AzureOpenAISettings, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings)
        environ = os.environ if environ is None else environ
        #: The identity variables of the gateway's environment, read once.
        self.environ = {name: environ[name] for name in ENVIRONMENT if environ.get(name)}
        self.authority = (settings.authority_host or self.environ.get("AZURE_AUTHORITY_HOST")
                          or DEFAULT_AUTHORITY).rstrip("/")
        self.tokens = TokenCache()
        #: The app's virtual keys (``gateway_configure``): whose options are the operator's.
        self.virtual_keys: Mapping[str, Any] = {}

    def configure(self, services: Any) -> None:
        """Keep what the app offers that decides whose options are whose."""
        self.virtual_keys = services.virtual_keys

    # -- options -------------------------------------------------------------------
    def parse_options(self, target: Any) -> Any:
        """Portkey's other names for the options (``azure_resource_name``, ...) are taken too."""
        cached = target.__dict__.get("parsed_options")
        if cached is not None and cached[0] is self:
            return cached[1]
        try:
            options = canonical(target.options)
        except ValueError as e:
            raise BadRequest(f"Invalid option for provider {self.name!r}: {e} - at `{target.json_path}`",
                             param="x-portkey-config", code="invalid_provider_option") from None
        if options is target.options:
            return super().parse_options(target)
        parsed = super().parse_options(msgspec.structs.replace(target, options=options))
        target.__dict__["parsed_options"] = (self, parsed)
        return parsed

    # -- where and how -------------------------------------------------------------
    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        """``api-key: <key>``, or ``Authorization: Bearer <token>`` with an Entra ID token; nothing
        when the gateway fetches the token (:meth:`authorize` adds it)."""
        token = attempt.options.azure_ad_token
        if token:
            return {"Authorization": f"Bearer {ad_token(token)}"}
        if attempt.options.azure_auth_mode in TOKEN_MODES:
            return {}
        return {"api-key": str(attempt.api_key)} if attempt.api_key else {}

    def build_proxy(self, attempt: Attempt) -> UpstreamRequest:
        self.check_identity(attempt)  # a refused identity before anything is sent
        req = super().build_proxy(attempt)
        if attempt.options.azure_ad_token or attempt.options.azure_auth_mode in TOKEN_MODES:
            # The configured credential wins: a client's own `api-key` does not ride along.
            req.headers.popall("api-key", None)
        return req

    async def authorize(self, attempt: Attempt, request: UpstreamRequest) -> None:
        """The fetched (or cached) token on the request, for ``entra``, ``managed`` and ``workload``."""
        source = self.identity(attempt)
        if source is None:
            return
        token = await self.tokens.get(source.key, lambda: self._fetch(source))
        request.headers.popall("api-key", None)
        request.headers["Authorization"] = f"Bearer {token}"

    async def _fetch(self, source: Source) -> tuple[str, float]:
        request = await source.request(self.name)
        answer = await send(request, self.name, source.endpoint, self.settings.identity_timeout)
        return read_token_answer(self.name, source, answer)

    # -- identities ------------------------------------------------------------------
    def check_identity(self, attempt: Attempt) -> str | None:
        """The auth mode whose token the gateway fetches, or None (an ``azure_ad_token``, an
        api-key); a 400 for an identity the caller may not use."""
        opts: AzureOpenAIOptions = attempt.options
        mode = opts.azure_auth_mode
        if opts.azure_ad_token or mode not in TOKEN_MODES:
            return None
        self._check_origin(attempt, mode)
        return mode

    def identity(self, attempt: Attempt) -> Source | None:
        """The identity the gateway fetches a token for (see :meth:`check_identity`)."""
        mode = self.check_identity(attempt)
        if mode is None:
            return None
        opts: AzureOpenAIOptions = attempt.options
        scope = opts.azure_entra_scope or DEFAULT_SCOPE
        if mode == "entra":
            assert opts.azure_entra_tenant_id and opts.azure_entra_client_id and opts.azure_entra_client_secret
            return ClientSecret(self.authority, opts.azure_entra_tenant_id, opts.azure_entra_client_id,
                                opts.azure_entra_client_secret, scope)
        if mode == "workload":
            return self._workload(opts, scope)
        endpoint, header = self.environ.get("IDENTITY_ENDPOINT"), self.environ.get("IDENTITY_HEADER")
        if endpoint and header:
            return ManagedIdentity(endpoint, scope, opts.azure_managed_client_id, header)
        return ManagedIdentity(self.settings.managed_identity_endpoint, scope, opts.azure_managed_client_id)

    def _workload(self, opts: AzureOpenAIOptions, scope: str) -> Federated:
        env = self.environ
        client_id = opts.azure_workload_client_id or env.get("AZURE_CLIENT_ID")
        tenant = opts.azure_entra_tenant_id or env.get("AZURE_TENANT_ID")
        token_file = env.get("AZURE_FEDERATED_TOKEN_FILE")
        missing = [what for what, value in (
            ("AZURE_FEDERATED_TOKEN_FILE", token_file),
            ("a client id (`azure_workload_client_id` or AZURE_CLIENT_ID)", client_id),
            ("a tenant (`azure_entra_tenant_id` or AZURE_TENANT_ID)", tenant)) if not value]
        if missing:
            raise UpstreamError(f"{self.name}: `azure_auth_mode` workload needs {', '.join(missing)} in the gateway's "
                                "environment (the Azure Workload Identity webhook sets them on the pod)",
                                provider=self.name, code="azure_identity_unavailable")
        assert token_file and client_id and tenant
        return Federated(self.authority, tenant, client_id, token_file, scope)

    def _check_origin(self, attempt: Attempt, mode: str) -> None:
        """The gateway's own identity (``managed``, ``workload``) and a stored client secret sign
        in only as the operator configured them (a virtual key, a saved config): a request may
        repeat those options, not set or change them; and their token goes to no host the
        request chose."""
        opts = attempt.options
        given = [name for name in IDENTITY_OPTIONS if getattr(opts, name) is not None]
        stored = {name for name in given if operator_set(attempt, self.virtual_keys, name)}
        own = mode in ("managed", "workload")
        if not own and "azure_entra_client_secret" not in stored:
            return  # the caller's own application and secret
        if own and "azure_auth_mode" not in stored:
            raise BadRequest(
                f"`azure_auth_mode` {mode} signs in as the gateway's own Azure identity: only a virtual key or a "
                "saved config (the operator's) may choose it, not a request's config or headers",
                param="azure_auth_mode", code="gateway_identity_not_allowed", provider=self.name)
        changed = [name for name in given if name not in stored]
        if changed:
            whose = "the gateway's own Azure identity" if own else "a stored client secret"
            raise BadRequest(
                f"`{changed[0]}` was set by the request, and {whose} signs in only as the operator configured it: "
                "drop the option (or the header that sets it), or send your own credentials",
                param=changed[0], code="gateway_identity_not_allowed", provider=self.name)
        if attempt.inbound.custom_host is not None and attempt.target.virtual_key is None:
            raise BadRequest(
                f"The custom host was chosen by the request, and a token of {'the gateway' if own else 'a stored'} "
                "identity is not sent to a host the request chose", param="x-portkey-custom-host",
                code="custom_host_not_allowed", provider=self.name)

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
        self.check_identity(attempt)
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

    def billed_model(self, attempt: Attempt, req: GenerationRequest) -> str | None:
        """The deployment decides which model runs: a request that names none (and no
        ``azure_model_name``) may run any, so its cost is unknown rather than the default's."""
        named = attempt.params.get("model") or attempt.options.azure_model_name
        return req.model if named else None

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
