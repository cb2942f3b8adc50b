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

import msgspec

from gateway.sdk import ProviderSettings

__all__ = [
    "DEFAULT_API_VERSION", "HEADER_OPTIONS", "V1_VERSIONS", "AzureOpenAIOptions", "AzureOpenAISettings",
    "ad_token",
]

#: The dated API version Azure documents for every image model it serves
#: (the gpt-image-1 series and dall-e-3); used when a request names none.
DEFAULT_API_VERSION = "2025-04-01-preview"
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
}

# Azure resource (custom subdomain) names: letters, digits and inner hyphens, at most 64.
_RESOURCE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")
# Deployment names: letters, digits, underscores, periods and hyphens.
_DEPLOYMENT = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_API_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A bearer token is printable ASCII without spaces (RFC 6750 b64token, loosely).
_TOKEN = re.compile(r"[\x21-\x7e]+")


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

    def __repr__(self) -> str:
        # The token is a credential: never in a log line or a traceback.
        fields = ", ".join(
            f"{name}={'***' if name == 'azure_ad_token' and value is not None else repr(value)}"
            for name, value in msgspec.structs.asdict(self).items()
        )
        return f"AzureOpenAIOptions({fields})"


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

    def __post_init__(self) -> None:
        if not _API_VERSION.fullmatch(self.api_version):
            raise ValueError(f"`api_version` {self.api_version!r} is not an API version such as 2025-04-01-preview")
