"""Where an Azure OpenAI request goes and how it authenticates: the provider
options (config target fields, virtual key fields, ``x-portkey-azure-*``
headers) and the ``[providers.azure-openai]`` settings.

The names are Portkey's, so configs and headers written for Portkey work as
they are.  Every value that ends up in a URL is checked here, once, before any
request is built: a resource name becomes part of a host name, a deployment id
a path segment.
"""
from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from gateway.sdk import ProviderSettings

__all__ = [
    "ALIASES", "AUTH_MODES", "DEFAULT_API_VERSION", "HEADER_OPTIONS", "IDENTITY_OPTIONS", "IMDS_ENDPOINT",
    "V1_VERSIONS", "AzureOpenAIOptions", "AzureOpenAISettings", "ad_token", "canonical",
]

#: The dated API version Azure documents for every image model it serves
#: (the gpt-image-1 series and dall-e-3); used when a request names none.
DEFAULT_API_VERSION = "2025-04-01-preview"
#: Azure's Instance Metadata Service token endpoint (managed identities on VMs, AKS nodes, ...).
IMDS_ENDPOINT = "http://169.254.169.254/metadata/identity/oauth2/token"
_HTTP_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
#: ``api_version`` values that select Azure's v1 API (``/openai/v1/...``), with the
#: ``api-version`` query each one sends there (None: no query at all).
V1_VERSIONS: dict[str, str | None] = {"v1": None, "preview": "preview"}

#: ``x-portkey-*`` request headers that set options on a header-only request.
HEADER_OPTIONS = {
    "x-portkey-azure-resource-name": "resource_name",
    "x-portkey-azure-deployment-id": "deployment_id",
    "x-portkey-azure-api-version": "api_version",
    "x-portkey-azure-ad-token": "azure_ad_token",
    "x-portkey-azure-model-name": "azure_model_name",
    "x-portkey-azure-auth-mode": "azure_auth_mode",
    "x-portkey-azure-entra-client-id": "azure_entra_client_id",
    "x-portkey-azure-entra-client-secret": "azure_entra_client_secret",
    "x-portkey-azure-entra-tenant-id": "azure_entra_tenant_id",
    "x-portkey-azure-entra-scope": "azure_entra_scope",
    "x-portkey-azure-managed-client-id": "azure_managed_client_id",
    "x-portkey-azure-workload-client-id": "azure_workload_client_id",
}
#: Other names configs written for Portkey give the options (its SDKs' ``azure_*`` arguments).
ALIASES = {
    "azure_resource_name": "resource_name",
    "azure_deployment_id": "deployment_id",
    "azure_api_version": "api_version",
}
#: ``azure_auth_mode`` values (Portkey's): the api-key, a Microsoft Entra ID app's client
#: credentials, the host's managed identity, AKS workload identity federation.
AUTH_MODES = ("apiKey", "entra", "managed", "workload")
#: The options that say which identity a token is fetched for.
IDENTITY_OPTIONS = (
    "azure_auth_mode", "azure_entra_client_id", "azure_entra_client_secret", "azure_entra_tenant_id",
    "azure_entra_scope", "azure_managed_client_id", "azure_workload_client_id",
)

# Azure resource (custom subdomain) names: letters, digits and inner hyphens, at most 64.
_RESOURCE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")
# Deployment names: letters, digits, underscores, periods and hyphens.
_DEPLOYMENT = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_API_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A bearer token is printable ASCII without spaces (RFC 6750 b64token, loosely).
_TOKEN = re.compile(r"[\x21-\x7e]+")
# A tenant is a GUID or a domain name (contoso.onmicrosoft.com): it becomes a path segment.
_TENANT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,254}[A-Za-z0-9])?")
# An application (client) id: a GUID, loosely.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# A client secret: printable ASCII (Entra's generated secrets use letters, digits and ~._-).
_SECRET = re.compile(r"[\x20-\x7e]{1,1024}")
#: What an option is called in messages: the header that also sets it.
_HEADER_OF = {option: header for header, option in HEADER_OPTIONS.items()}


class AzureOpenAIOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of one Azure OpenAI target."""

    #: The Azure OpenAI resource: ``https://<resource_name>.openai.azure.com``.
    resource_name: str | None = None
    #: The model deployment the images come from.
    deployment_id: str | None = None
    #: A dated version (``2025-04-01-preview``), or ``v1`` / ``preview`` for the v1 API.
    api_version: str | None = None
    #: A Microsoft Entra ID access token, sent as ``Authorization: Bearer`` instead of ``api-key``.
    azure_ad_token: str | None = None
    #: The model behind the deployment (``gpt-image-1``), for parameter mapping when the
    #: request's ``model`` does not name one the plugin knows.
    azure_model_name: str | None = None
    #: How the gateway signs in (:data:`AUTH_MODES`); unset: ``apiKey`` (or ``azure_ad_token``).
    azure_auth_mode: Annotated[str, msgspec.Meta(
        description="apiKey, entra (client credentials), managed (managed identity) or workload "
                    "(workload identity federation)",
        extra_json_schema={"enum": list(AUTH_MODES)})] | None = None
    #: ``entra``: the application's client id, a client secret of it, its tenant.
    azure_entra_client_id: Annotated[str, msgspec.Meta(description="entra: the application (client) id")] | None = None
    azure_entra_client_secret: Annotated[str, msgspec.Meta(
        description="entra: a client secret of the application")] | None = None
    azure_entra_tenant_id: Annotated[str, msgspec.Meta(
        description="entra: the tenant (directory) id or domain")] | None = None
    #: The scope (``entra``, ``workload``) or, without ``/.default``, the resource (``managed``)
    #: a token is asked for; default ``https://cognitiveservices.azure.com/.default``.
    azure_entra_scope: str | None = None
    #: ``managed``: a user-assigned identity's client id (unset: the system-assigned identity).
    azure_managed_client_id: str | None = None
    #: ``workload``: the client id the federated token is exchanged for (unset: ``AZURE_CLIENT_ID``).
    azure_workload_client_id: str | None = None

    def __post_init__(self) -> None:
        # msgspec turns a ValueError here into a 400 naming the provider and the field.
        if self.resource_name is not None and not _RESOURCE.fullmatch(self.resource_name):
            raise ValueError(
                f"`resource_name` (x-portkey-azure-resource-name) {self.resource_name[:80]!r} is not an Azure "
                "resource name: letters, digits and inner hyphens, at most 64"
            )
        if self.deployment_id is not None and (
            not _DEPLOYMENT.fullmatch(self.deployment_id) or not self.deployment_id.strip(".")
        ):
            raise ValueError(
                f"`deployment_id` (x-portkey-azure-deployment-id) {self.deployment_id[:80]!r} is not an Azure "
                "deployment name: letters, digits, underscores, periods and hyphens"
            )
        if self.api_version is not None and not _API_VERSION.fullmatch(self.api_version):
            raise ValueError(
                f"`api_version` (x-portkey-azure-api-version) {self.api_version[:80]!r} is not an API version "
                "such as 2025-04-01-preview or v1"
            )
        if self.azure_ad_token is not None and not _TOKEN.fullmatch(ad_token(self.azure_ad_token)):
            # The value is a credential: never echoed.
            raise ValueError("`azure_ad_token` (x-portkey-azure-ad-token) is not a bearer token")
        if self.azure_model_name is not None and not self.azure_model_name.strip():
            raise ValueError("`azure_model_name` (x-portkey-azure-model-name) is empty")
        self._check_identity()

    def _check_identity(self) -> None:
        mode = self.azure_auth_mode
        if mode is not None and mode not in AUTH_MODES:
            raise ValueError(f"`azure_auth_mode` (x-portkey-azure-auth-mode) must be one of {', '.join(AUTH_MODES)}, "
                             f"not {mode[:40]!r}")
        for name, pattern in (("azure_entra_tenant_id", _TENANT), ("azure_entra_client_id", _CLIENT_ID),
                              ("azure_managed_client_id", _CLIENT_ID), ("azure_workload_client_id", _CLIENT_ID),
                              ("azure_entra_scope", _TOKEN)):
            value = getattr(self, name)
            if value is not None and not pattern.fullmatch(value):
                raise ValueError(f"`{name}` ({_HEADER_OF[name]}) {value[:80]!r} is not valid")
        secret = self.azure_entra_client_secret
        if secret is not None and not _SECRET.fullmatch(secret):
            # A credential: never echoed.
            raise ValueError("`azure_entra_client_secret` (x-portkey-azure-entra-client-secret) is not a client secret")
        if mode == "entra":
            missing = [n for n in ("azure_entra_client_id", "azure_entra_client_secret", "azure_entra_tenant_id")
                       if not getattr(self, n)]
            if missing:
                raise ValueError(f"`azure_auth_mode` entra needs {', '.join(f'`{n}`' for n in missing)} "
                                 "(the application's client id, a client secret of it and its tenant)")

    def __repr__(self) -> str:
        # The token and the client secret are credentials: never in a log line or a traceback.
        fields = ", ".join(
            f"{name}={'***' if name in _HIDDEN and value is not None else repr(value)}"
            for name, value in msgspec.structs.asdict(self).items()
        )
        return f"AzureOpenAIOptions({fields})"


_HIDDEN = frozenset({"azure_ad_token", "azure_entra_client_secret"})


def canonical(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with Portkey's other names (:data:`ALIASES`) under this plugin's; a
    ``ValueError`` when both names are given different values."""
    if not any(name in options for name in ALIASES):
        return options
    out = dict(options)
    for alias, name in ALIASES.items():
        if alias not in out:
            continue
        value = out.pop(alias)
        if name in out and out[name] != value:
            raise ValueError(f"`{alias}` and `{name}` name the same option with different values")
        out[name] = value
    return out


def ad_token(value: str) -> str:
    """The token itself, whether or not the caller wrote ``Bearer `` before it."""
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


class AzureOpenAISettings(ProviderSettings):
    """``[providers.azure-openai]``.

    ``base_url`` may hold ``{resource_name}`` (the default is
    ``https://{resource_name}.openai.azure.com/openai``): sovereign clouds use
    ``https://{resource_name}.openai.azure.us/openai``.  Without the placeholder
    it pins one resource (or an API Management front door) and requests need no
    resource name.
    """

    #: The dated API version for requests that name none.
    api_version: str = DEFAULT_API_VERSION
    #: Microsoft Entra ID's authority host, where ``entra`` and ``workload`` tokens are fetched
    #: (``https://login.microsoftonline.us`` for Azure Government, ``https://login.chinacloudapi.cn``
    #: for Azure China).  Unset: ``AZURE_AUTHORITY_HOST``, else ``https://login.microsoftonline.com``.
    authority_host: str | None = None
    #: The managed identity endpoint of ``managed`` (Azure's Instance Metadata Service), used
    #: unless App Service's ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` are set.
    managed_identity_endpoint: str = IMDS_ENDPOINT
    #: Seconds one token request may take.
    identity_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30.0

    def __post_init__(self) -> None:
        if not _API_VERSION.fullmatch(self.api_version):
            raise ValueError(f"`api_version` {self.api_version!r} is not an API version such as 2025-04-01-preview")
        for name in ("authority_host", "managed_identity_endpoint"):
            value = getattr(self, name)
            if value is not None and not _HTTP_URL.fullmatch(value):
                raise ValueError(f"`{name}` {value!r} is not an http(s) URL")
