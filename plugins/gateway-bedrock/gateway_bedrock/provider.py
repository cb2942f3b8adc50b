"""AWS Bedrock: image models through InvokeModel, and passthrough to bedrock-runtime.

``POST https://bedrock-runtime.{region}.amazonaws.com/model/{modelId}/invoke``,
authenticated with SigV4 (service ``bedrock``) or a Bedrock API key
(``Authorization: Bearer``).  Credentials, in the order they are used:

1. ``aws_auth_type: apiKey``: the provider key as a Bedrock API key;
2. AWS keys from the request (``x-portkey-aws-*`` headers, config target
   options, a virtual key's options): SigV4;
3. a provider key and no AWS keys: a Bedrock API key;
4. the gateway's own identity (also forced by ``aws_auth_type: serviceRole``):
   ``AWS_BEARER_TOKEN_BEDROCK``, else botocore's credential chain.

Requests are signed just before they are sent, after any transform plugin, so the
signature covers the bytes, the URL and the host that actually go out.
"""
from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
import msgspec
from botocore.credentials import Credentials
from multidict import CIMultiDict

from gateway import headers as h
from gateway.errors import AuthError, GatewayError, UpstreamError
from gateway.generation import (
    GenerationRequest,
    GenerationResult,
    MalformedAnswer,
    decode_json,
)
from gateway.negotiation import BadParam
from gateway.outcome import Outcome
from gateway.provider import PROXY, Call, Capabilities, Provider, UpstreamRequest
from gateway_bedrock.auth import (
    AUTH_HEADERS,
    CredentialsUnavailable,
    EnvironmentCredentials,
    sign,
    wire_url,
)
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
from gateway_bedrock.options import HEADER_OPTIONS, BedrockOptions, BedrockSettings

__all__ = ["DEFAULT_REGION", "BedrockProvider"]

DEFAULT_REGION = "us-east-1"
_encode = msgspec.json.Encoder().encode


class BedrockProvider(Provider):
    name = "bedrock"
    default_base_url = "https://bedrock-runtime.{region}.amazonaws.com"
    Options = BedrockOptions
    Settings = BedrockSettings
    header_options: ClassVar = HEADER_OPTIONS
    capabilities = Capabilities(
        default_model=DEFAULT_MODEL,
        models=ModelTable(MODELS),
        parameters=frozenset({"prompt", "model", "n", "size", "quality", "style", "response_format"})
        | NATIVE_PARAMETERS,
    )

    def __init__(self, settings: BedrockSettings) -> None:
        super().__init__(settings)
        # Read once: the region and an API key from the environment; the credential
        # chain itself is resolved on first need, off the event loop.
        self.environment = EnvironmentCredentials()
        self.use_environment = settings.environment_credentials

    # -- where requests go ----------------------------------------------------------
    def region(self, call: Call) -> str:
        return call.options.aws_region or self.environment.region or DEFAULT_REGION

    def endpoint(self, call: Call) -> str:
        """The bedrock-runtime base URL for the call's region (a custom host as it is)."""
        if call.target.custom_host:
            return call.base_url
        return call.base_url.replace("{region}", self.region(call))

    def proxy_url(self, call: Call, path: str, query_string: str) -> str:
        url = self.endpoint(call) + path
        return f"{url}?{query_string}" if query_string else url

    # -- images.generations -----------------------------------------------------------
    def dialect_model(self, call: Call, model: str) -> str:
        """The model whose request dialect applies (``aws_bedrock_model`` names it for
        an application inference profile)."""
        return call.options.aws_bedrock_model or model

    def family(self, call: Call, model: str) -> Family:
        family = family_of(self.dialect_model(call, model))
        if family is None:
            raise BadParam(
                "model",
                f"Model {model!r} is not an image model bedrock can call through images.generations "
                "(Stability: stability.*; Amazon: amazon.titan-image-generator-*, amazon.nova-canvas-*); "
                "name the foundation model in `aws_bedrock_model` for an inference profile ARN, or call "
                "any model through passthrough: POST /v1/model/{modelId}/invoke",
            )
        return family

    def build_generation(self, call: Call, req: GenerationRequest) -> UpstreamRequest:
        model = req.model or DEFAULT_MODEL
        family = self.family(call, model)
        dialect = self.dialect_model(call, model)
        extra = self._natives(call, req, family.natives_for(dialect), model)
        req = self._fit_nova(call, req, dialect, model)
        body = _encode(family.body(dialect, req, extra))
        url = wire_url(f"{self.endpoint(call)}/model/{quote(model, safe='')}/invoke")
        headers: CIMultiDict[str] = CIMultiDict(call.forwarded_headers())
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
        return UpstreamRequest("POST", url, headers, body)

    def parse_generation(self, call: Call, req: GenerationRequest, resp: aiohttp.ClientResponse,
                         body: bytes) -> GenerationResult:
        model = req.model or DEFAULT_MODEL
        doc = decode_json(self, body)
        images = self.family(call, model).images(self.name, req, doc, body, req.extra)
        if len(images) != req.n:
            raise MalformedAnswer(self.name, f"asked for {req.n} images, got {len(images)}", body)
        return GenerationResult(images=images)

    async def generate(self, call: Call, req: GenerationRequest) -> GenerationResult:
        await self.authorize(call)
        return await super().generate(call, req)

    def _natives(self, call: Call, req: GenerationRequest, allowed: frozenset[str], model: str) -> dict[str, Any]:
        """The native parameters this model's dialect takes; others are a 400 in strict
        mode and dropped (and reported) otherwise."""
        out = {}
        for key, value in req.extra.items():
            if key in allowed:
                out[key] = value
            elif call.strict_params:
                raise BadParam(key, f"Parameter `{key}` is not supported by {self.name} model {model!r}")
            else:
                _report(call, f"{key}=(dropped)")
        return out

    def _fit_nova(self, call: Call, req: GenerationRequest, dialect: str, model: str) -> GenerationRequest:
        """Nova Canvas takes aspect ratios from 1:4 to 4:1 only: the long side is cut."""
        if not bare_model_id(dialect).startswith("amazon.nova-canvas") or req.width is None or req.height is None:
            return req
        w, hgt = req.width, req.height
        short = min(w, hgt)
        if max(w, hgt) <= NOVA_MAX_RATIO * short:
            return req
        asked = call.params.get("size", req.size)
        if call.strict_params:
            raise BadParam("size", f"`size` {asked!r} is not supported by {self.name} model {model!r}; allowed: "
                                   f"aspect ratios from 1:{NOVA_MAX_RATIO} to {NOVA_MAX_RATIO}:1")
        if w > hgt:
            w = NOVA_MAX_RATIO * short
        else:
            hgt = NOVA_MAX_RATIO * short
        plan = call.generation
        if plan is not None:
            plan.adjusted[:] = [a for a in plan.adjusted if not a.startswith("size=")]
        _report(call, f"size={asked}->{w}x{hgt}")
        return msgspec.structs.replace(req, width=w, height=hgt, size=f"{w}x{hgt}")

    # -- passthrough ------------------------------------------------------------------
    async def build_proxy(self, call: Call) -> UpstreamRequest:
        ctx = call.ctx
        body = await _body_bytes(ctx)
        headers = h.passthrough_headers(ctx.headers)
        for name in AUTH_HEADERS:
            headers.popall(name, None)
        if not headers.get("Accept-Encoding"):
            # Relayed as the provider sent it: ask for no encoding the client did not ask for.
            headers["Accept-Encoding"] = "identity"
        # The raw path keeps the client's encoding (an ARN's %2F stays one path segment).
        raw = ctx.request.rel_url.raw_path
        path = raw[len("/v1"):] if raw.startswith("/v1/") else ctx.path
        url = wire_url(self.proxy_url(call, path, ctx.request.rel_url.raw_query_string))
        return UpstreamRequest(ctx.request.method, url, headers, body=body or None, decompress=False)

    async def execute(self, call: Call) -> Outcome:
        if call.endpoint == PROXY:
            await self.authorize(call)
        return await super().execute(call)

    # -- authentication ---------------------------------------------------------------
    async def authorize(self, call: Call) -> None:
        """Put the call's credentials on ``call.upstream`` (see the module docstring)."""
        req = call.upstream
        assert req is not None
        opts: BedrockOptions = call.options
        mode = opts.aws_auth_type
        if mode == "apiKey":
            key = call.api_key or self._own_bearer(call)
            if not key:
                raise AuthError(f"{self.name}: `aws_auth_type` apiKey needs a Bedrock API key "
                                "(Authorization: Bearer <key>, or `api_key` in the config)", provider=self.name)
            _bearer(req, key)
            return
        if mode != "serviceRole":
            if opts.aws_access_key_id and opts.aws_secret_access_key:
                creds = Credentials(opts.aws_access_key_id, opts.aws_secret_access_key, opts.aws_session_token)
                sign(req.method, req.url, req.headers, req.body, creds, self.region(call))
                return
            if call.api_key:
                _bearer(req, call.api_key)
                return
        self._check_own(call)
        key = self._own_bearer(call)
        if key:
            _bearer(req, key)
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
        sign(req.method, req.url, req.headers, req.body, creds, self.region(call))

    def _check_own(self, call: Call) -> None:
        if not self.use_environment:
            raise AuthError(
                f"{self.name}: no AWS credentials: send x-portkey-aws-access-key-id and "
                "x-portkey-aws-secret-access-key (or `aws_*` in the config), or a Bedrock API key as "
                "Authorization: Bearer <key> (the gateway's own AWS credentials are turned off)",
                provider=self.name,
            )
        if call.target.custom_host:
            # A caller-chosen host must never receive the gateway's own key or signature.
            raise AuthError(f"{self.name}: the gateway's own AWS credentials are not sent to a custom host; "
                            "send credentials with the request", provider=self.name)

    def _own_bearer(self, call: Call) -> str | None:
        if self.environment.bearer is None:
            return None
        self._check_own(call)
        return self.environment.bearer

    # -- errors -----------------------------------------------------------------------
    def upstream_error(self, resp: aiohttp.ClientResponse, body: bytes) -> GatewayError:
        err = bedrock_error(self.name, resp.status, body, error_type(resp.headers.get("x-amzn-ErrorType")))
        err.upstream_headers = h.relay_headers(resp.headers)  # type: ignore[attr-defined]
        return err

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        return bedrock_error(self.name, status, body, None)


def _bearer(req: UpstreamRequest, key: str) -> None:
    for name in AUTH_HEADERS:
        req.headers.popall(name, None)
    req.headers["Authorization"] = f"Bearer {key}"


def _report(call: Call, note: str) -> None:
    """Say in ``x-portkey-adjusted-params`` what lenient mode changed (once per plan)."""
    plan = call.generation
    if plan is not None and note not in plan.adjusted:
        plan.adjusted.append(note)


async def _body_bytes(ctx: Any) -> bytes:
    """The whole passthrough body (SigV4 signs its hash).  The handler has already
    refused a body over the size limit, or limits a chunked one as it is read; kept
    on the context so a retry sends the same bytes."""
    stream = ctx.body_stream
    if stream is None:
        return b""
    if isinstance(stream, (bytes, bytearray)):
        return bytes(stream)
    if isinstance(stream, aiohttp.StreamReader):
        body = await stream.read()
    else:
        body = b"".join([chunk async for chunk in stream])
    ctx.body_stream = body
    return body
