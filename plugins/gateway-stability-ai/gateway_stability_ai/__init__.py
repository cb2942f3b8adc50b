"""Stability AI provider plugin: ``x-portkey-provider: stability-ai``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_stability_ai.provider import StabilityProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [StabilityProvider]
