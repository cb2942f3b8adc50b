"""ByteDance Seedream provider plugin: ``x-portkey-provider: bytedance-seedream``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_bytedance_seedream.provider import SeedreamProvider

__all__ = ["SeedreamProvider"]

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [SeedreamProvider]
