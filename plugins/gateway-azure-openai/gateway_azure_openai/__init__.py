"""Azure OpenAI provider plugin: ``x-portkey-provider: azure-openai``."""
from __future__ import annotations

from typing import Any

from gateway.sdk import hookimpl
from gateway_azure_openai.provider import AzureOpenAIProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [AzureOpenAIProvider]


@hookimpl
def gateway_configure(registry: Any, services: Any) -> None:
    """The provider learns the app's virtual keys (whose options are the operator's)."""
    provider = registry.providers.get(AzureOpenAIProvider.name)
    if isinstance(provider, AzureOpenAIProvider):
        provider.configure(services)
