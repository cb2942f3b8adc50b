"""Microsoft Entra ID access tokens for Azure OpenAI: which identity, where its token is asked
for, and what the answer means.

Three ways in, each the documented HTTP call (no SDK: azure-identity's credentials block on
``requests`` unless its separate ``aio`` flavour is used, and each call here is one request):

- ``entra`` (:class:`ClientSecret`): the OAuth 2.0 client credentials grant,
  ``POST {authority}/{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials``,
  ``client_id``, ``client_secret`` and ``scope`` (form-encoded);
- ``workload`` (:class:`Federated`): the same grant with the workload's federated token (the
  file ``AZURE_FEDERATED_TOKEN_FILE`` names, read anew for every fetch: it is rotated) as
  ``client_assertion``, ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``;
- ``managed`` (:class:`ManagedIdentity`): the Instance Metadata Service,
  ``GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...``
  with ``Metadata: true`` (and ``client_id`` for a user-assigned identity), or on App Service
  and Functions ``GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...`` with
  ``X-IDENTITY-HEADER: $IDENTITY_HEADER``.

The answer is ``{"access_token", "expires_in"}`` (IMDS gives ``expires_in`` as a string; App
Service gives ``expires_on``, epoch seconds, instead); an error ``{"error",
"error_description"}``.  Neither a secret, an assertion, nor a token ever reaches a message.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, NoReturn
from urllib.parse import urlencode

import msgspec

from gateway.sdk import Answer, AuthError, GatewayError, ProviderError, UpstreamError, UpstreamRequest

__all__ = [
    "APP_SERVICE_API_VERSION", "DEFAULT_AUTHORITY", "DEFAULT_SCOPE", "IMDS_API_VERSION", "JWT_ASSERTION",
    "ClientSecret", "Federated", "ManagedIdentity", "Source", "read_token_answer",
]

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
#: The scope of Azure OpenAI (Azure AI services) tokens.
DEFAULT_SCOPE = "https://cognitiveservices.azure.com/.default"
IMDS_API_VERSION = "2018-02-01"
APP_SERVICE_API_VERSION = "2019-08-01"
JWT_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
_json = msgspec.json.Decoder()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def resource_of(scope: str) -> str:
    """The managed identity endpoints take a resource, not a scope: the scope without ``.default``."""
    return scope[: -len(".default")] if scope.endswith("/.default") else scope


class Source:
    """One identity a token is fetched for."""

    #: ``entra``, ``workload`` or ``managed``.
    mode = ""
    #: The identity as messages name it (never a secret).
    who = ""
    #: What the token is kept under: the identity and a digest of what proves it, never a secret.
    key = ""
    #: The endpoint as a 502 names it when it cannot be reached.
    endpoint = ""

    async def request(self, provider: str) -> UpstreamRequest:
        """The token request (may read a file, off the event loop)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.who})"


class ClientSecret(Source):
    """``entra``: an application's client id and secret, in its tenant."""

    mode = "entra"

    def __init__(self, authority: str, tenant: str, client_id: str, secret: str, scope: str) -> None:
        self.url = f"{authority}/{tenant}/oauth2/v2.0/token"
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                      "scope": scope}
        self.who = f"application {client_id} of tenant {tenant}"
        self.key = f"entra|{self.url}|{client_id}|{scope}|{_digest(secret)}"
        self.endpoint = f"Microsoft Entra ID ({authority})"

    async def request(self, provider: str) -> UpstreamRequest:
        return UpstreamRequest("POST", self.url, dict(_FORM), urlencode(self._form).encode())


class Federated(Source):
    """``workload``: the federated token in ``token_file``, exchanged for an access token."""

    mode = "workload"

    def __init__(self, authority: str, tenant: str, client_id: str, token_file: str, scope: str) -> None:
        self.url = f"{authority}/{tenant}/oauth2/v2.0/token"
        self.client_id = client_id
        self.scope = scope
        self.token_file = token_file
        self.who = f"workload identity {client_id} of tenant {tenant}"
        self.key = f"workload|{self.url}|{client_id}|{scope}|{_digest(token_file)}"
        self.endpoint = f"Microsoft Entra ID ({authority})"

    async def request(self, provider: str) -> UpstreamRequest:
        try:
            assertion = (await asyncio.to_thread(_read, self.token_file)).strip()
        except OSError as e:
            raise UpstreamError(f"{provider}: the workload identity's federated token (AZURE_FEDERATED_TOKEN_FILE) "
                                f"could not be read: {e.strerror or e.__class__.__name__}", provider=provider,
                                code="azure_identity_unavailable") from None
        if not assertion:
            raise UpstreamError(f"{provider}: the workload identity's federated token file "
                                "(AZURE_FEDERATED_TOKEN_FILE) is empty", provider=provider,
                                code="azure_identity_unavailable")
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "scope": self.scope,
                "client_assertion_type": JWT_ASSERTION, "client_assertion": assertion}
        return UpstreamRequest("POST", self.url, dict(_FORM), urlencode(form).encode())


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read(64 * 1024)


class ManagedIdentity(Source):
    """``managed``: the host's managed identity (system-assigned, or the user-assigned one
    ``client_id`` names), from IMDS or, with ``header``, App Service's identity endpoint."""

    mode = "managed"

    def __init__(self, endpoint: str, scope: str, client_id: str | None, header: str | None = None) -> None:
        self.header = header
        query = {"api-version": APP_SERVICE_API_VERSION if header else IMDS_API_VERSION,
                 "resource": resource_of(scope)}
        if client_id:
            query["client_id"] = client_id
        self.url = f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"
        kind = "user-assigned " + client_id if client_id else "system-assigned"
        self.who = f"the gateway's managed identity ({kind})"
        self.key = f"managed|{self.url}"
        self.endpoint = ("App Service's managed identity endpoint (IDENTITY_ENDPOINT)" if header
                         else f"the managed identity endpoint {endpoint}")

    async def request(self, provider: str) -> UpstreamRequest:
        headers = {"X-IDENTITY-HEADER": self.header} if self.header else {"Metadata": "true"}
        return UpstreamRequest("GET", self.url, {**headers, "Accept": "application/json"})


def read_token_answer(provider: str, source: Source, answer: Answer,
                      now: float | None = None) -> tuple[str, float]:
    """``(access_token, seconds it lives)`` from the endpoint's answer, or the error it means.
    ``now`` (epoch seconds) reads an ``expires_on``."""
    doc: Any = None
    try:
        doc = _json.decode(answer.body) if answer.body else None
    except msgspec.DecodeError:
        pass
    if not answer.ok:
        token_error(provider, source, answer.status, doc)
    doc = doc if isinstance(doc, dict) else {}
    token = doc.get("access_token")
    lifetime = _seconds(doc.get("expires_in"))
    if lifetime is None:
        expires_on = _seconds(doc.get("expires_on"))
        if expires_on is not None:
            lifetime = expires_on - (time.time() if now is None else now)
    if not isinstance(token, str) or not token or lifetime is None:
        raise UpstreamError(f"{provider}: {source.endpoint} answered {source.who} without an `access_token` and "
                            "its `expires_in`", provider=provider, code="invalid_token_response")
    return token, max(lifetime, 0.0)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip().isdecimal():
        return float(value.strip())
    return None


def token_error(provider: str, source: Source, status: int, doc: Any) -> NoReturn:
    """The endpoint's refusal as a gateway error: refused credentials are a 401 naming the
    identity and what Entra ID said (its first line: the rest is trace and correlation ids); a
    rate limit keeps its 429; anything else is the endpoint failing (502)."""
    said = ""
    if isinstance(doc, dict):
        code, text = doc.get("error"), doc.get("error_description") or doc.get("message")
        parts = [p for p in (code, text) if isinstance(p, str) and p.strip()]
        said = ": ".join(p.strip().splitlines()[0] for p in parts)
    said = said[:300] or f"HTTP {status}"
    err: GatewayError
    if status in (400, 401, 403):
        err = AuthError(f"{provider}: {source.endpoint} refused {source.who} ({said})", provider=provider,
                        code="azure_identity_refused")
    elif status == 429:
        err = ProviderError(f"{provider}: {source.endpoint} is rate limiting {source.who} ({said})", status=429,
                            provider=provider, code="rate_limit_exceeded")
    else:
        err = UpstreamError(f"{provider}: {source.endpoint} failed to give a token for {source.who} ({said})",
                            provider=provider, code="azure_identity_unavailable")
    raise err
