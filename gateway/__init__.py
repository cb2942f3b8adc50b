"""A self-hosted AI gateway for image generation, built on aiohttp and pluggy.

Plugins import :data:`hookimpl` from here; everything else lives in submodules.
"""
from gateway.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"
__all__ = ["hookimpl", "hookspec", "__version__"]
