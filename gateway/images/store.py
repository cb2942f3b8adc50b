"""Image stores: where images behind gateway URLs live.

A store class (registered with ``gateway_register_image_stores``) has a
``name`` (the value of ``images.store``) and is built once per app with
``from_services(services)`` (:class:`gateway.services.Services`: the settings,
and the cache for a store that keeps images there).  Ids are unguessable (192 random bits); every image has
an expiry, after which it is gone.

A store keeps images only: the built-in stores take the type from the bytes
(:func:`gateway.images.sniff.image_type`) and refuse anything that is not PNG, JPEG,
WebP or GIF (:class:`NotAnImage`), so nothing but an image is ever served from the
gateway's own origin.
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import structlog

from gateway.images.sniff import IMAGE_TYPES, image_type

_log = structlog.get_logger("gateway.images")
_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
#: Bytes of a generated URL-signing secret.
SECRET_BYTES = 32
#: The cache backend key of the URL-signing secret shared by the instances of a ``cache`` store.
SECRET_KEY = "k:images.url_secret"
#: The file of the URL-signing secret shared by the processes of a ``local`` store.
SECRET_FILE = ".url-secret"


class NotAnImage(ValueError):
    """Bytes that are not a PNG, JPEG, WebP or GIF image: never stored."""


def checked_type(data: bytes) -> str:
    """The image type of ``data`` from its bytes; :class:`NotAnImage` when it is none of
    PNG, JPEG, WebP, GIF (an HTML page or an SVG with a script must never be served)."""
    found = image_type(data)
    if found is None:
        raise NotAnImage(f"not a {', '.join(t.split('/')[1].upper() for t in IMAGE_TYPES)} image "
                         f"({len(data)} bytes starting {bytes(data[:16])!r})")
    return found


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
        """Keep ``data`` for ``ttl`` seconds; return its id.  ``content_type`` is the type the
        core read from the bytes; a store checks it (:func:`checked_type`) and raises
        :class:`NotAnImage` for anything that is not an image."""
        raise NotImplementedError

    async def get(self, image_id: str) -> StoredImage | None:
        raise NotImplementedError

    async def start(self) -> None:
        """Begin background work (clean-up); called at app start-up."""

    async def shared_secret(self, candidate: bytes) -> bytes | None:
        """The secret that signs image URLs, shared by every process that serves this store's
        images: ``candidate`` when this process is the first to set it, the one already set
        otherwise.  None: nothing is shared (each process signs with its own).  Called once at
        start-up when ``images.url_secret`` is not set."""
        return None

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
        meta = msgspec.json.encode({"content_type": checked_type(data), "expires": time.time() + ttl})
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

    async def shared_secret(self, candidate: bytes) -> bytes | None:
        """A file in the directory (mode 0600), created whole or not at all: the workers of one
        instance, and instances sharing the directory, sign alike, and URLs outlive a restart
        as the images do."""
        return await asyncio.to_thread(self._shared_secret, candidate)

    def _shared_secret(self, candidate: bytes) -> bytes:
        path = self.directory / SECRET_FILE
        for _ in range(2):
            try:
                existing = path.read_bytes()
            except FileNotFoundError:
                existing = b""
            if len(existing) >= SECRET_BYTES:
                return existing
            # The secret appears whole (a link to a file already written) or not at all, and
            # only if absent: two processes starting together read back the same one.
            tmp = self.directory / f".{SECRET_FILE}.{uuid.uuid4().hex}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(candidate)
                if existing:  # a damaged secret (cut short): replaced
                    _log.warning("images.url_secret_replaced", path=str(path))
                    os.replace(tmp, path)
                    return candidate
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    continue
                return candidate
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_bytes()

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
        record = msgspec.msgpack.encode(StoredImage(checked_type(data), time.time() + ttl, data=data))
        await self.services.cache.set("i:" + image_id, record, ttl=ttl)
        return image_id

    async def get(self, image_id: str) -> StoredImage | None:
        if not valid_id(image_id):
            return None
        raw = await self.services.cache.get("i:" + image_id)
        return None if raw is None else msgspec.msgpack.decode(raw, type=StoredImage)

    async def shared_secret(self, candidate: bytes) -> bytes | None:
        """A fixed key in the cache backend, set only if absent and read back: every instance
        sharing Redis signs alike (with the memory backend, this process alone).
        :class:`gateway.cache.service.Unavailable` when the backend is down."""
        cache = self.services.cache
        await cache.add(SECRET_KEY, candidate, ttl=None)
        value = await cache.get(SECRET_KEY)
        return value if value is not None and len(value) >= SECRET_BYTES else None


def default_directory() -> str:
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), "gateway-images")
