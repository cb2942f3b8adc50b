"""AWS Bedrock provider plugin: ``x-portkey-provider: bedrock``."""
from __future__ import annotations

from typing import Any

from gateway.sdk import hookimpl
from gateway_bedrock.provider import BedrockProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [BedrockProvider]


@hookimpl
def gateway_configure(registry: Any, services: Any) -> None:
    """The provider learns the app's virtual keys (whose options are the operator's)."""
    provider = registry.providers.get(BedrockProvider.name)
    if isinstance(provider, BedrockProvider):
        provider.configure(services)
