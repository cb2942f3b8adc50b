"""Vertex AI (Gemini Enterprise Agent Platform): ``x-portkey-provider: vertex-ai``.

``POST https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/
google/models/{model}:generateContent`` (``aiplatform.googleapis.com`` for ``global``, the default;
``aiplatform.{us|eu}.rep.googleapis.com`` for the multi-regions), with an OAuth access token:

1. a service-account key (``vertex_service_account_json`` in a virtual key or config, the
   ``x-portkey-vertex-service-account-json`` header, or the key file's JSON as the provider key, as
   a virtual key's ``api_key_file`` gives it): the gateway gets a token for it (:mod:`tokens`);
2. else the provider key itself, as an access token the caller got (``Authorization: Bearer ya29...``).

The gateway's own Google identity (application default credentials) is never used.  Passthrough
``/v1/{path}`` reaches the same host: ``/v1/projects/...`` as it is, another path below the target's
``projects/{project}/locations/{location}`` (``/v1/publishers/google/models/...``), and a path naming
its own version (``/v1/v1beta1/...``) at the host root.
"""
from __future__ import annotations

import asyncio
import re
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from gateway.sdk import (
    MAX_ERROR_BODY,
    PROXY,
    Answer,
    Attempt,
    AuthError,
    BadRequest,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    Upstream,
    UpstreamError,
    UpstreamRequest,
    hookimpl,
)

from gateway_google.bodies import VERTEX_NATIVES
from gateway_google.generate_content import GenerateContentProvider, image_capabilities, version_path
from gateway_google.service_account import FIELD, ServiceAccount, read_service_account
from gateway_google.tokens import Send, TokenCache
from gateway_google.vertex_options import DEFAULT_LOCATION, HEADER_OPTIONS, VertexOptions, checked_location

__all__ = ["TOKEN_TIMEOUT", "VertexProvider", "gateway_register_providers", "vertex_host"]

DEFAULT_BASE_URL = "https://{location}-aiplatform.googleapis.com"
#: Seconds a token request may take.
TOKEN_TIMEOUT = 30.0
_MULTI_REGIONS = frozenset({"us", "eu"})
#: ``/projects/{project}/locations/{location}/...``: the location a passthrough path names.
_PATH_LOCATION = re.compile(r"^/projects/[^/]+/locations/([^/]+)(/|$)")


def vertex_host(base_url: str, location: str) -> str:
    """The API host for ``location`` (as the google-genai SDK picks it); a configured base URL
    has ``{location}`` filled in, or is used as it is."""
    if base_url == DEFAULT_BASE_URL:
        if location == "global":
            return "https://aiplatform.googleapis.com"
        if location in _MULTI_REGIONS:
            return f"https://aiplatform.{location}.rep.googleapis.com"
    return base_url.replace("{location}", location)


class VertexProvider(GenerateContentProvider):
    name = "vertex-ai"
    default_base_url = DEFAULT_BASE_URL
    Options = VertexOptions
    header_options: ClassVar = HEADER_OPTIONS
    #: With a virtual key's service account, a request may not move it to another project or region.
    host_options: ClassVar[tuple[str, ...]] = ("vertex_project_id", "vertex_region")
    natives = VERTEX_NATIVES
    capabilities = image_capabilities(VERTEX_NATIVES)

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.tokens = TokenCache(self.name)

    # -- where requests go ----------------------------------------------------------
    def location(self, attempt: Attempt) -> str:
        return attempt.options.vertex_region or DEFAULT_LOCATION

    def project(self, attempt: Attempt) -> str:
        """The target's project, else its service account's."""
        project = attempt.options.vertex_project_id
        if project is None:
            creds = self.credentials(attempt)
            project = creds.project_id if isinstance(creds, ServiceAccount) else None
        if project is None:
            raise BadRequest(f"{self.name}: no Google Cloud project: set `vertex_project_id` (or the "
                             "x-portkey-vertex-project-id header), or use a service-account key that names its "
                             "`project_id`", param="vertex_project_id", code="missing_vertex_project")
        return project

    def model_url(self, attempt: Attempt, model: str) -> str:
        location = self.location(attempt)
        return (f"{vertex_host(attempt.base_url, location)}/v1/projects/{self.project(attempt)}/locations/{location}"
                f"/publishers/google/models/{model}:generateContent")

    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        # The access token is added last, when it is known (``generate``, ``authorize``).
        return {}

    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        named = _PATH_LOCATION.match(path)
        location = attempt.options.vertex_region or (named.group(1) if named else DEFAULT_LOCATION)
        try:
            host = vertex_host(attempt.base_url, checked_location(location))
        except ValueError as e:
            raise BadRequest(f"{self.name}: {e}", param="vertex_region") from None
        if version_path(path):
            url = host + path
        elif named:
            url = f"{host}/v1{path}"
        else:
            url = f"{host}/v1/projects/{self.project(attempt)}/locations/{location}{path}"
        return f"{url}?{query_string}" if query_string else url

    # -- credentials ------------------------------------------------------------------
    def credentials(self, attempt: Attempt) -> ServiceAccount | str:
        """The attempt's service account, else the access token the caller sent."""
        given = attempt.options.vertex_service_account_json
        if given is not None:
            return read_service_account(given)  # checked when the options were read
        key = attempt.api_key
        if key and key.lstrip().startswith("{"):
            try:
                return read_service_account(key)
            except ValueError as e:
                raise BadRequest(f"{self.name}: the provider key reads as a service-account key, but {e}",
                                 param="api_key", code="invalid_service_account") from None
        if key:
            return key
        raise AuthError(f"{self.name}: no credentials: set `{FIELD}` (a service-account key, in a virtual key or "
                        "the config, or the x-portkey-vertex-service-account-json header), or send an OAuth "
                        "access token as Authorization: Bearer <token>", provider=self.name)

    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        self.credentials(attempt)  # none at all: a 401 before anything is sent
        return super().build_generation(attempt, req)

    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        self.credentials(attempt)
        return super().build_edit(attempt, req)

    async def access_token(self, attempt: Attempt, send: Send, spawn: Any) -> tuple[str, ServiceAccount | None]:
        """The token to send, and the service account it is for (None: the caller's own token)."""
        creds = self.credentials(attempt)
        if isinstance(creds, str):
            return creds, None
        self.check_token_uri(creds)
        return await self.tokens.token(creds, send, spawn), creds

    def check_token_uri(self, account: ServiceAccount) -> None:
        """A token request goes to Google's token endpoint (``https://*.googleapis.com``) or, for a
        private deployment, to the host of the operator's own ``base_url``: nowhere else."""
        url = URL(account.token_uri)
        host = (url.host or "").lower()
        if url.scheme == "https" and (host == "googleapis.com" or host.endswith(".googleapis.com")):
            return
        own = self.settings.base_url
        if own and url.origin() == URL(own).origin():
            return
        raise BadRequest(f"{self.name}: the `token_uri` of service account {account.client_email} is not Google's "
                         "token endpoint (https://oauth2.googleapis.com/token)", param=FIELD,
                         code="invalid_service_account")

    async def generate(self, attempt: Attempt, req: GenerationRequest, upstream: Upstream) -> GenerationResult:
        """The call with its access token, fetched (once for every call needing it) through the
        gateway's own HTTP client."""
        assert attempt.upstream is not None

        async def send(request: UpstreamRequest) -> Answer:
            return await upstream.exchange(request, timeout=TOKEN_TIMEOUT)

        token, account = await self.access_token(attempt, send, upstream.spawn)
        attempt.upstream.headers["Authorization"] = f"Bearer {token}"
        try:
            return await super().generate(attempt, req, upstream)
        except GatewayError as e:
            if e.status == 401 and account is not None:
                # Google no longer takes the token (revoked, the key disabled): the next request gets a new one.
                self.tokens.forget(account, token)
            raise

    async def authorize(self, attempt: Attempt, request: UpstreamRequest) -> None:
        """Passthrough: the access token on the relayed request (a generation gets it in ``generate``)."""
        if attempt.endpoint != PROXY:
            return
        token, _ = await self.access_token(attempt, send_direct, asyncio.ensure_future)
        request.headers["Authorization"] = f"Bearer {token}"


async def send_direct(request: UpstreamRequest) -> Answer:
    """A token request for passthrough, where the core hands a provider no HTTP client: a short-lived
    aiohttp session to the token endpoint (checked by ``check_token_uri``; answered from the cache
    whenever a token is cached)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TOKEN_TIMEOUT)) as session:
            async with session.request(request.method, request.url, headers=request.headers, data=request.body,
                                       allow_redirects=False) as resp:
                return Answer(resp.status, resp.headers, await resp.content.read(MAX_ERROR_BODY))
    except (aiohttp.ClientError, TimeoutError) as e:
        raise UpstreamError(f"vertex-ai: the token endpoint could not be reached ({e.__class__.__name__})",
                            provider="vertex-ai", code="token_endpoint_unreachable") from None


@hookimpl
def gateway_register_providers() -> list[type]:
    return [VertexProvider]
