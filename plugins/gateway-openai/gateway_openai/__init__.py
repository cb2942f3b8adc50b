"""OpenAI provider plugin: ``x-portkey-provider: openai``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_openai.provider import OpenAIProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [OpenAIProvider]
