"""fal.ai provider plugin: ``x-portkey-provider: fal-ai``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_fal_ai.provider import FalProvider

__all__ = ["FalProvider"]

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [FalProvider]
