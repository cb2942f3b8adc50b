"""Together AI provider plugin: ``x-portkey-provider: together-ai``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_together_ai.provider import TogetherProvider

__all__ = ["TogetherProvider"]

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [TogetherProvider]
