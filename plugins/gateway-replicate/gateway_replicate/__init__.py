"""Replicate provider plugin: ``x-portkey-provider: replicate``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_replicate.provider import ReplicateProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [ReplicateProvider]
