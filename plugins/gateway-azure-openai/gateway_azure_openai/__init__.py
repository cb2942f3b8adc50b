"""Azure OpenAI provider plugin: ``x-portkey-provider: azure-openai``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_azure_openai.provider import AzureOpenAIProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [AzureOpenAIProvider]
