"""Segmind provider plugin: ``x-portkey-provider: segmind``."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_segmind.provider import SegmindProvider

__version__ = "0.1.0"


@hookimpl
def gateway_register_providers() -> list[type]:
    return [SegmindProvider]
