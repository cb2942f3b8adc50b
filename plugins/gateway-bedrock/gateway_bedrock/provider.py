"""AWS Bedrock: image models through InvokeModel (generations and edits), and passthrough to bedrock-runtime.

``POST https://bedrock-runtime.{region}.amazonaws.com/model/{modelId}/invoke``,
authenticated with SigV4 (service ``bedrock``) or a Bedrock API key
(``Authorization: Bearer``).  Credentials, in the order they are used:

1. ``aws_auth_type: apiKey``: the provider key as a Bedrock API key;
2. AWS keys from the request (``x-portkey-aws-*`` headers, config target
   options, a virtual key's options): SigV4;
3. a provider key and no AWS keys: a Bedrock API key;
4. the gateway's own identity (also forced by ``aws_auth_type: serviceRole``):
   ``AWS_BEARER_TOKEN_BEDROCK``, else botocore's credential chain.

``aws_auth_type: assumedRole`` signs with a role's temporary credentials from STS AssumeRole
(:mod:`sts`), got with the request's AWS keys, else the gateway's own; kept until shortly
before they expire (:mod:`cache`).  The gateway's own credentials (and keys a virtual key or
saved config stores) assume only the role the operator configured.

Requests are signed just before they are sent, after any transform plugin, so the
signature covers the bytes, the URL and the host that actually go out.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import msgspec
from botocore.credentials import Credentials
from multidict import CIMultiDict

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Answer,
    Attempt,
    AuthError,
    BadParam,
    BadRequest,
    Capabilities,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    MalformedAnswer,
    Provider,
    UpstreamError,
    UpstreamRequest,
    decode_json,
    drop_size,
)
from gateway.sdk import headers as h
from gateway_bedrock.auth import (
    AUTH_HEADERS,
    CredentialsUnavailable,
    EnvironmentCredentials,
    sign,
    wire_url,
)
from gateway_bedrock.cache import ExpiringCache
from gateway_bedrock.origin import operator_set
from gateway_bedrock.sts import Role, read_assume_role_answer, send
from gateway_bedrock.edits import EDIT_MODELS, EDIT_NATIVES, Editor, edit_caps, editor_of, typed
from gateway_bedrock.errors import bedrock_error, error_type
from gateway_bedrock.models import (
    DEFAULT_MODEL,
    MODELS,
    NATIVE_PARAMETERS,
    NOVA_MAX_RATIO,
    Family,
    ModelTable,
    bare_model_id,
    family_of,
)
from gateway_bedrock.options import HEADER_OPTIONS, ROLE_OPTIONS, BedrockOptions, BedrockSettings
from gateway_bedrock.prices import PRICES

__all__ = ["DEFAULT_REGION", "BedrockProvider"]

DEFAULT_REGION = "us-east-1"
#: Bedrock request headers that change what InvokeModel answers (passthrough cache key).
VARY_HEADERS = ("content-type", "x-amzn-bedrock-trace", "x-amzn-bedrock-guardrailidentifier",
                "x-amzn-bedrock-guardrailversion", "x-amzn-bedrock-performanceconfig-latency")
#: Bedrock answer headers that describe one invocation only.
VOLATILE_HEADERS = frozenset({"x-amzn-requestid", "x-amzn-bedrock-invocation-latency"})
_encode = msgspec.json.Encoder().encode
#: A generation or an edit (kept as it is through a size fit).
_Req = TypeVar("_Req", bound=GenerationRequest)


class BedrockProvider(Provider):
    name = "bedrock"
    default_base_url = "https://bedrock-runtime.{region}.amazonaws.com"
    Options = BedrockOptions
    Settings = BedrockSettings
    header_options: ClassVar = HEADER_OPTIONS
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL,
        models=ModelTable(MODELS),
        parameters=frozenset({"prompt", "model", "n", "size", "quality", "style", "response_format"})
        | NATIVE_PARAMETERS | EDIT_NATIVES,
        edit_models=ModelTable(EDIT_MODELS, edit_caps),
        default_edit_model=DEFAULT_MODEL,
    )
    #: None confirmed (gateway_bedrock/prices.py): set them in ``[prices.bedrock]``.
    prices = PRICES
    # SigV4 signs the body's hash: passthrough needs the body whole before build_proxy.
    proxy_reads_body = True
    #: Besides the content negotiation headers, Bedrock's own request headers change
    #: the answer (a trace, a guardrail, a latency tier).
    cache_vary_headers: ClassVar[tuple[str, ...]] = (*Provider.cache_vary_headers, *VARY_HEADERS)
    #: Per-invocation answer headers (request id, timings) are not kept with a cached answer.
    volatile_headers: ClassVar[frozenset[str]] = Provider.volatile_headers | VOLATILE_HEADERS

    def __init__(self, settings: BedrockSettings) -> None:
        super().__init__(settings)
        # Read once: the region and an API key from the environment; the credential
        # chain itself is resolved on first need, off the event loop.
        self.environment = EnvironmentCredentials()
        self.use_environment = settings.environment_credentials
        #: Assumed roles' temporary credentials.
        self.roles: ExpiringCache[Credentials] = ExpiringCache()
        #: The app's virtual keys (``gateway_configure``): whose options are the operator's.
        self.virtual_keys: Mapping[str, Any] = {}

    def configure(self, services: Any) -> None:
        """Keep what the app offers that decides whose options are whose."""
        self.virtual_keys = services.virtual_keys

    # -- where requests go ----------------------------------------------------------
    def region(self, attempt: Attempt) -> str:
        return attempt.options.aws_region or self.environment.region or DEFAULT_REGION

    def endpoint(self, attempt: Attempt) -> str:
        """The bedrock-runtime base URL for the attempt's region (a custom host as it is)."""
        if attempt.custom_host:
            return attempt.base_url
        return attempt.base_url.replace("{region}", self.region(attempt))

    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        url = self.endpoint(attempt) + path
        return f"{url}?{query_string}" if query_string else url

    # -- images.generations -----------------------------------------------------------
    def dialect_model(self, attempt: Attempt, model: str) -> str:
        """The model whose request dialect applies (``aws_bedrock_model`` names it for
        an application inference profile)."""
        return attempt.options.aws_bedrock_model or model

    def family(self, attempt: Attempt, model: str) -> Family:
        family = family_of(self.dialect_model(attempt, model))
        if family is None:
            raise BadParam(
                "model",
                f"Model {model!r} is not an image model bedrock can call through images.generations "
                "(Stability: stability.*; Amazon: amazon.titan-image-generator-*, amazon.nova-canvas-*); "
                "name the foundation model in `aws_bedrock_model` for an inference profile ARN, or call "
                "any model through passthrough: POST /v1/model/{modelId}/invoke",
            )
        return family

    def generation_params(self, attempt: Attempt) -> dict[str, Any]:
        """A role the caller may not assume is refused before anything is built."""
        self.check_role(attempt)
        return attempt.params

    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        model = req.model or DEFAULT_MODEL
        family = self.family(attempt, model)
        dialect = self.dialect_model(attempt, model)
        extra = self._natives(attempt, req, family.natives_for(dialect), model)
        req = self._fit_nova(attempt, req, dialect, model)
        return self._invoke(attempt, model, family.body(dialect, req, extra))

    # -- images.edits -------------------------------------------------------------------
    def editor(self, attempt: Attempt, model: str) -> Editor:
        """The edit dialect of ``model`` (or of ``aws_bedrock_model``); a 400 for a model that takes no image."""
        editor = editor_of(self.dialect_model(attempt, model))
        if editor is None:
            raise BadParam(
                "model",
                f"Model {model!r} cannot edit images through bedrock images.edits (Titan Image Generator and "
                "Nova Canvas: amazon.titan-image-generator-*, amazon.nova-canvas-*; SD3 / SD3.5 Large: "
                "stability.sd3*; Stable Image Inpaint: stability.stable-image-inpaint-*); name the foundation "
                "model in `aws_bedrock_model` for an inference profile ARN, or call any model through "
                "passthrough: POST /v1/model/{modelId}/invoke",
            )
        return editor

    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        model = req.model or DEFAULT_MODEL
        editor = self.editor(attempt, model)
        task = editor.task(req)
        where = f"{self.name} model {model!r}"
        extra = typed(self._natives(attempt, req, editor.natives(task), model), req.offset)
        editor.check(req, extra, task, where)
        if not editor.takes_size(task):
            req = drop_size(attempt, req, f"{where} for {task}",
                            "the output keeps the input image's size (send `auto` or no size)")
        req = self._fit_nova(attempt, req, self.dialect_model(attempt, model), model)
        return self._invoke(attempt, model, editor.body(req, extra, task))

    def _invoke(self, attempt: Attempt, model: str, body: dict[str, Any]) -> UpstreamRequest:
        """``POST /model/{modelId}/invoke`` with ``body`` as JSON, unsigned (:meth:`authorize` signs it)."""
        url = wire_url(f"{self.endpoint(attempt)}/model/{quote(model, safe='')}/invoke")
        headers: CIMultiDict[str] = CIMultiDict(attempt.forwarded_headers())
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
        return UpstreamRequest("POST", url, headers, _encode(body))

    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        model = req.model or DEFAULT_MODEL
        body = answer.body
        doc = decode_json(self, body)
        images = self.family(attempt, model).images(self.name, req, doc, body, req.extra)
        if len(images) != req.n:
            raise MalformedAnswer(self.name, f"asked for {req.n} images, got {len(images)}", body)
        return GenerationResult(images=images)

    def _natives(self, attempt: Attempt, req: GenerationRequest, allowed: frozenset[str],
                 model: str) -> dict[str, Any]:
        """The native parameters this model's dialect takes; others are a 400 in strict
        mode and dropped (and reported) otherwise."""
        out = {}
        for key, value in req.extra.items():
            if key in allowed:
                out[key] = value
            elif attempt.strict_params:
                raise BadParam(key, f"Parameter `{key}` is not supported by {self.name} model {model!r}")
            else:
                assert attempt.plan is not None  # built from a negotiated plan
                attempt.plan.report(f"{key}=(dropped)")
        return out

    def _fit_nova(self, attempt: Attempt, req: _Req, dialect: str, model: str) -> _Req:
        """Nova Canvas takes aspect ratios from 1:4 to 4:1 only: the long side is cut."""
        if not bare_model_id(dialect).startswith("amazon.nova-canvas") or req.width is None or req.height is None:
            return req
        w, hgt = req.width, req.height
        short = min(w, hgt)
        if max(w, hgt) <= NOVA_MAX_RATIO * short:
            return req
        asked = attempt.params.get("size", req.size)
        if attempt.strict_params:
            raise BadParam("size", f"`size` {asked!r} is not supported by {self.name} model {model!r}; allowed: "
                                   f"aspect ratios from 1:{NOVA_MAX_RATIO} to {NOVA_MAX_RATIO}:1")
        if w > hgt:
            w = NOVA_MAX_RATIO * short
        else:
            hgt = NOVA_MAX_RATIO * short
        assert attempt.plan is not None  # built from a negotiated plan
        attempt.plan.report(f"size={asked}->{w}x{hgt}", replacing="size=")
        return msgspec.structs.replace(req, width=w, height=hgt, size=f"{w}x{hgt}")

    # -- passthrough ------------------------------------------------------------------
    def build_proxy(self, attempt: Attempt) -> UpstreamRequest:
        """The client's request as bedrock-runtime takes it, unsigned (:meth:`authorize`
        signs it last).  The core has read the body whole (``proxy_reads_body``)."""
        self.check_role(attempt)
        inbound = attempt.inbound
        headers = h.passthrough_headers(inbound.headers)
        for name in AUTH_HEADERS:
            headers.popall(name, None)
        if not headers.get("Accept-Encoding"):
            # Relayed as the provider sent it: ask for no encoding the client did not ask for.
            headers["Accept-Encoding"] = "identity"
        # The raw path keeps the client's encoding (an ARN's %2F stays one path segment).
        raw = inbound.raw_path
        path = raw[len("/v1"):] if raw.startswith("/v1/") else inbound.path
        url = wire_url(self.proxy_url(attempt, path, inbound.raw_query_string))
        return UpstreamRequest(inbound.method, url, headers, body=inbound.body or None, decompress=False)

    # -- authentication ---------------------------------------------------------------
    async def authorize(self, attempt: Attempt, request: UpstreamRequest) -> None:
        """Put the attempt's credentials on ``request`` (see the module docstring): called
        by the core for every request just before it is sent, after transform plugins."""
        opts: BedrockOptions = attempt.options
        mode = opts.aws_auth_type
        if mode == "apiKey":
            key = attempt.api_key or self._own_bearer(attempt)
            if not key:
                raise AuthError(f"{self.name}: `aws_auth_type` apiKey needs a Bedrock API key "
                                "(Authorization: Bearer <key>, or `api_key` in the config)", provider=self.name)
            _bearer(request, key)
            return
        if mode == "assumedRole":
            creds = await self.assumed_role(attempt)
            sign(request.method, request.url, request.headers, request.body, creds, self.region(attempt))
            return
        if mode != "serviceRole":
            if opts.aws_access_key_id and opts.aws_secret_access_key:
                creds = Credentials(opts.aws_access_key_id, opts.aws_secret_access_key, opts.aws_session_token)
                sign(request.method, request.url, request.headers, request.body, creds, self.region(attempt))
                return
            if attempt.api_key:
                _bearer(request, attempt.api_key)
                return
        self._check_own(attempt)
        key = self._own_bearer(attempt)
        if key:
            _bearer(request, key)
            return
        try:
            creds = await self.environment.get()
        except CredentialsUnavailable as e:
            raise UpstreamError(f"{self.name}: the gateway's own AWS credentials could not be refreshed: {e}",
                                provider=self.name, code="credentials_unavailable") from None
        if creds is None:
            why = f" ({self.environment.problem})" if self.environment.problem else ""
            raise AuthError(
                f"{self.name}: no AWS credentials: send x-portkey-aws-access-key-id and "
                "x-portkey-aws-secret-access-key (or `aws_*` in the config), or a Bedrock API key as "
                f"Authorization: Bearer <key>; the gateway has no AWS credentials of its own{why}",
                provider=self.name,
            )
        sign(request.method, request.url, request.headers, request.body, creds, self.region(attempt))

    # -- assumed roles ----------------------------------------------------------------
    def check_role(self, attempt: Attempt) -> str | None:
        """For ``assumedRole``: whose base credentials assume the role (``request``, ``stored``,
        ``own``), after refusing (400) a role the caller may not have assumed: the gateway's own
        credentials and stored keys assume only the role the operator configured."""
        opts: BedrockOptions = attempt.options
        if opts.aws_auth_type != "assumedRole":
            return None
        if opts.aws_access_key_id and opts.aws_secret_access_key:
            stored = all(operator_set(attempt, self.virtual_keys, n) for n in (
                "aws_access_key_id", "aws_secret_access_key"))
            base = "stored" if stored else "request"
        else:
            base = "own"
        if base == "request":
            return base
        given = [name for name in ROLE_OPTIONS if getattr(opts, name) is not None]
        changed = [name for name in given if not operator_set(attempt, self.virtual_keys, name)]
        whose = "the gateway's own AWS credentials" if base == "own" else "stored AWS keys"
        if base == "own" and ("aws_auth_type" in changed or "aws_role_arn" in changed):
            raise BadRequest(
                f"`aws_auth_type` assumedRole with {whose} assumes only a role a virtual key or a saved config "
                "(the operator's) names, not one a request's config or headers name; send your own AWS keys "
                "(x-portkey-aws-access-key-id, x-portkey-aws-secret-access-key) to assume a role of your choosing",
                param="aws_role_arn", code="gateway_identity_not_allowed", provider=self.name)
        if changed:
            raise BadRequest(
                f"`{changed[0]}` was set by the request, and {whose} assume a role only as the operator configured "
                "it: drop the option (or the header that sets it), or send your own AWS keys",
                param=changed[0], code="gateway_identity_not_allowed", provider=self.name)
        if base == "stored" and attempt.inbound.custom_host is not None and attempt.target.virtual_key is None:
            raise BadRequest("The custom host was chosen by the request, and a role assumed with stored AWS keys "
                             "signs no request to a host the request chose", param="x-portkey-custom-host",
                             code="custom_host_not_allowed", provider=self.name)
        return base

    async def assumed_role(self, attempt: Attempt) -> Credentials:
        """The temporary credentials of the attempt's role, cached or fetched from STS."""
        opts: BedrockOptions = attempt.options
        base = self.check_role(attempt)
        assert opts.aws_role_arn
        if base == "own":
            self._check_own(attempt)
            found = await self._own_credentials()
            creds = Credentials(found.access_key, found.secret_key, found.token)
            base_is = "the gateway's own AWS credentials"
        else:
            assert opts.aws_access_key_id and opts.aws_secret_access_key
            creds = Credentials(opts.aws_access_key_id, opts.aws_secret_access_key, opts.aws_session_token)
            base_is = "the stored AWS keys" if base == "stored" else "the request's AWS keys"
        role = Role(self.settings.sts_endpoint, self.region(attempt), opts.aws_role_arn, creds,
                    external_id=opts.aws_external_id, session_name=opts.aws_role_session_name,
                    duration=opts.aws_role_duration_seconds, base_is=base_is)
        return await self.roles.get(role.key, lambda: self._assume(role))

    async def _assume(self, role: Role) -> tuple[Credentials, float]:
        answer = await send(role.request(), self.name, self.settings.sts_timeout)
        return read_assume_role_answer(self.name, role, answer)

    async def _own_credentials(self) -> Any:
        try:
            creds = await self.environment.get()
        except CredentialsUnavailable as e:
            raise UpstreamError(f"{self.name}: the gateway's own AWS credentials could not be refreshed: {e}",
                                provider=self.name, code="credentials_unavailable") from None
        if creds is None:
            why = f" ({self.environment.problem})" if self.environment.problem else ""
            raise AuthError(f"{self.name}: `aws_auth_type` assumedRole has no AWS credentials to assume the role "
                            f"with: the gateway has none of its own{why}", provider=self.name)
        return creds

    def _check_own(self, attempt: Attempt) -> None:
        if not self.use_environment:
            raise AuthError(
                f"{self.name}: no AWS credentials: send x-portkey-aws-access-key-id and "
                "x-portkey-aws-secret-access-key (or `aws_*` in the config), or a Bedrock API key as "
                "Authorization: Bearer <key> (the gateway's own AWS credentials are turned off)",
                provider=self.name,
            )
        if attempt.custom_host:
            # A caller-chosen host must never receive the gateway's own key or signature.
            raise AuthError(f"{self.name}: the gateway's own AWS credentials are not sent to a custom host; "
                            "send credentials with the request", provider=self.name)

    def _own_bearer(self, attempt: Attempt) -> str | None:
        if self.environment.bearer is None:
            return None
        self._check_own(attempt)
        return self.environment.bearer

    # -- errors -----------------------------------------------------------------------
    def upstream_error(self, answer: Answer) -> GatewayError:
        err = bedrock_error(self.name, answer.status, answer.body,
                            error_type(answer.headers.get("x-amzn-ErrorType")))
        err.upstream_headers = h.relay_headers(answer.headers)
        return err

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        return bedrock_error(self.name, status, body, None)


def _bearer(req: UpstreamRequest, key: str) -> None:
    for name in AUTH_HEADERS:
        req.headers.popall(name, None)
    req.headers["Authorization"] = f"Bearer {key}"

