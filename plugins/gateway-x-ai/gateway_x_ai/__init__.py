"""xAI provider plugin: ``x-portkey-provider: x-ai``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_x_ai.provider import XAIProvider

__all__ = ["XAIProvider"]

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [XAIProvider]
