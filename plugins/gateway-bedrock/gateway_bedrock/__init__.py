"""AWS Bedrock provider plugin: ``x-portkey-provider: bedrock``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_bedrock.provider import BedrockProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [BedrockProvider]
