"""Black Forest Labs provider plugin: ``x-portkey-provider: black-forest-labs``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_black_forest_labs.provider import BlackForestLabsProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [BlackForestLabsProvider]
