"""Built-in image stores: a local directory, and the cache backend."""
from __future__ import annotations

from gateway import hookimpl
from gateway.images.store import CacheImageStore, LocalImageStore


@hookimpl
def gateway_register_image_stores() -> list[type]:
    return [LocalImageStore, CacheImageStore]
