"""Image stores: where images behind gateway URLs live.

A store class (registered with ``gateway_register_image_stores``) has a
``name`` (the value of ``images.store``) and is built once per app with
``from_services(services)`` (:class:`gateway.services.Services`: the settings,
and the cache for a store that keeps images there).  Ids are unguessable (192 random bits); every image has
an expiry, after which it is gone.
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import structlog

_log = structlog.get_logger("gateway.images")
_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")


def new_id() -> str:
    return secrets.token_urlsafe(24)


def valid_id(image_id: str) -> bool:
    """Ids are what :func:`new_id` makes; anything else (``../x``) is refused before any lookup."""
    return bool(_ID.match(image_id))


class StoredImage(msgspec.Struct):
    content_type: str
    expires: float
    path: str | None = None
    data: bytes | None = None


class ImageStore:
    """Base of image stores."""

    name: ClassVar[str] = ""

    @classmethod
    def from_services(cls, services: Any) -> ImageStore:
        raise NotImplementedError

    async def put(self, data: bytes, content_type: str, ttl: float) -> str:
        """Keep ``data`` for ``ttl`` seconds; return its id."""
        raise NotImplementedError

    async def get(self, image_id: str) -> StoredImage | None:
        raise NotImplementedError

    async def start(self) -> None:
        """Begin background work (clean-up); called at app start-up."""

    async def close(self) -> None:
        """Stop background work; called at clean-up."""


class LocalImageStore(ImageStore):
    """A directory on this instance, with a size bound and TTL clean-up.

    Each image is two files, ``<id>`` and ``<id>.json`` (content type, expiry).
    Oldest images go first when the directory passes ``images.max_bytes``.
    """

    name = "local"

    def __init__(self, directory: Path, max_bytes: int, sweep_interval: float = 60.0) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.sweep_interval = sweep_interval
        self._task: asyncio.Task[None] | None = None
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    @classmethod
    def from_services(cls, services: Any) -> LocalImageStore:
        cfg = services.settings.images
        return cls(Path(cfg.directory), cfg.max_bytes, cfg.sweep_interval)

    async def put(self, data: bytes, content_type: str, ttl: float) -> str:
        image_id = new_id()
        meta = msgspec.json.encode({"content_type": content_type, "expires": time.time() + ttl})
        await asyncio.to_thread(self._write, image_id, data, meta)
        return image_id

    def _write(self, image_id: str, data: bytes, meta: bytes) -> None:
        # Each file appears whole or not at all, the image before its record: a sweep (of this
        # store or of another instance sharing the directory) that finds a record without its
        # image deletes it, so a record must never be visible before the image it describes.
        tmp = self.directory / f".{image_id}.tmp"
        tmp.write_bytes(data)
        tmp.rename(self.directory / image_id)
        tmp_meta = self.directory / f".{image_id}.json.tmp"
        tmp_meta.write_bytes(meta)
        tmp_meta.rename(self.directory / f"{image_id}.json")

    async def get(self, image_id: str) -> StoredImage | None:
        if not valid_id(image_id):
            return None
        path = self.directory / image_id
        try:
            meta = msgspec.json.decode((self.directory / f"{image_id}.json").read_bytes())
        except (OSError, msgspec.DecodeError):
            return None
        if meta["expires"] <= time.time() or not path.exists():
            return None
        return StoredImage(meta["content_type"], meta["expires"], path=str(path))

    def sweep(self) -> int:
        """Delete expired images, then the oldest while over the size bound; return how many went."""
        now = time.time()
        files = []
        removed = 0
        for meta_path in self.directory.glob("*.json"):
            image = self.directory / meta_path.stem
            try:
                expires = msgspec.json.decode(meta_path.read_bytes())["expires"]
                stat = image.stat()
            except (OSError, msgspec.DecodeError, KeyError):
                expires, stat = 0, None
            if expires <= now or stat is None:
                image.unlink(missing_ok=True)
                meta_path.unlink(missing_ok=True)
                removed += 1
            else:
                files.append((stat.st_mtime, stat.st_size, image, meta_path))
        total = sum(f[1] for f in files)
        for _, size, image, meta_path in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            image.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    async def start(self) -> None:
        async def loop() -> None:
            while True:
                try:
                    await asyncio.to_thread(self.sweep)
                except OSError as e:  # a full or vanished disk must not kill the loop
                    _log.warning("images.sweep_failed", error=str(e))
                await asyncio.sleep(self.sweep_interval)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class CacheImageStore(ImageStore):
    """Images in the cache backend (``images.store = "cache"``): with the Redis
    backend every instance serves every image URL."""

    name = "cache"

    def __init__(self, services: Any) -> None:
        self.services = services

    @classmethod
    def from_services(cls, services: Any) -> CacheImageStore:
        return cls(services)

    async def put(self, data: bytes, content_type: str, ttl: float) -> str:
        image_id = new_id()
        record = msgspec.msgpack.encode(StoredImage(content_type, time.time() + ttl, data=data))
        await self.services.cache.set("i:" + image_id, record, ttl=ttl)
        return image_id

    async def get(self, image_id: str) -> StoredImage | None:
        if not valid_id(image_id):
            return None
        raw = await self.services.cache.get("i:" + image_id)
        return None if raw is None else msgspec.msgpack.decode(raw, type=StoredImage)


def default_directory() -> str:
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), "gateway-images")
