"""The images of a 2xx image answer, kept viewable from the request log for its retention.

Nothing is fetched from a provider: the images come from the answer the gateway sent (the
body it made, with stored images as host-free paths).  A ``b64_json`` image is decoded and
stored; an image the gateway already stored (a ``url`` answer it made) is referenced, or
stored again when it would expire before the record; a provider's own URL handed on
unchanged is not kept (the gateway never had its bytes; a provider whose URLs expire soon
declares ``result_urls_expire``, and the gateway keeps those images itself): the record refers
to it instead (``HANDED_ON_URLS``).  Each image larger than
``thumbnail_over_bytes`` also gets a thumbnail of at most 256 px a side, made with Pillow.
This runs in the log writer's task, never on the request path.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import re
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from PIL import Image, UnidentifiedImageError

from gateway.images.sniff import image_type
from gateway.images.urls import FILES_PATH, stored_path
from gateway.lru import LRU
from gateway.requestlog.record import LogImage

if TYPE_CHECKING:  # pragma: no cover
    from gateway.images.store import ImageStore
    from gateway.images.urls import ImageUrls

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_PX = 256
#: An image stored for the log is used again (for a repeat of the same bytes: cache hits)
#: while it still lives this close to the full retention.
REUSE_WITHIN = 3600.0
_FILES = FILES_PATH.encode()
_STORED = re.compile(r"^/v1/images/files/([A-Za-z0-9_-]{32})\?expires=([0-9]{1,12})&sig=")


class _Item(msgspec.Struct):
    url: str | None = None
    b64_json: str | None = None


class _Answer(msgspec.Struct):
    data: list[_Item] = msgspec.field(default_factory=list)


_decode_answer = msgspec.json.Decoder(_Answer).decode


class Source(msgspec.Struct, frozen=True):
    """One image of an answer: its bytes (from base64), or the id of an image already stored."""

    data: bytes | None = None
    stored_id: str | None = None
    stored_expires: float = 0.0


def sources(answer: bytes) -> list[Source]:
    """The images of an answer body the gateway made, in order (none when it is no image answer)."""
    try:
        doc = _decode_answer(answer)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []
    out = []
    for item in doc.data:
        if item.b64_json is not None:
            try:
                out.append(Source(data=base64.b64decode(item.b64_json, validate=True)))
            except (binascii.Error, ValueError):
                continue
        elif item.url is not None:
            m = _STORED.match(item.url)
            if m is not None:
                out.append(Source(stored_id=m.group(1), stored_expires=float(m.group(2))))
    return out


def has_images(answer: bytes) -> bool:
    """Whether an answer may hold images the log can keep (base64, or the gateway's own
    stored images): a quick look, before any parsing."""
    # find(), not `in`: `in` on bytes first tries the needle as a byte value, raising and
    # swallowing a TypeError every time.
    return answer.find(b'"b64_json"') >= 0 or answer.find(_FILES) >= 0


class Facts(msgspec.Struct):
    """What an image is, read with Pillow (header only, and the thumbnail when one is due)."""

    content_type: str
    width: int | None
    height: int | None
    bytes: int
    thumbnail: bytes | None = None
    thumbnail_type: str | None = None


def examine(data: bytes, thumbnail_over: int) -> Facts | None:
    """The image's type and size, and a thumbnail when it is over ``thumbnail_over`` bytes;
    None for bytes that are no PNG, JPEG, WebP or GIF (never stored)."""
    ctype = image_type(data)
    if ctype is None:
        return None
    facts = Facts(ctype, None, None, len(data))
    with warnings.catch_warnings():
        # A decompression bomb is refused, not drawn: no thumbnail, no size.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                facts.width, facts.height = im.size
                if len(data) > thumbnail_over:
                    facts.thumbnail, facts.thumbnail_type = _thumbnail(im)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombWarning,
                Image.DecompressionBombError, SyntaxError):
            pass
    return facts


def _thumbnail(im: Image.Image) -> tuple[bytes, str]:
    im.draft("RGB", (THUMBNAIL_PX * 2, THUMBNAIL_PX * 2))  # JPEG: decode at a reduced scale
    im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im.convert("RGBA").save(out, "PNG")
        return out.getvalue(), "image/png"
    im.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue(), "image/jpeg"


class ImageKeeper:
    """Stores an answer's images for the log's retention (``ttl`` seconds) in the image store."""

    def __init__(self, store: ImageStore, ttl: float, thumbnail_over: int) -> None:
        self.store = store
        self.ttl = ttl
        self.thumbnail_over = thumbnail_over
        #: Images stored lately by their bytes' hash or their source id: a cache hit repeating
        #: an answer points at the same copy.
        self._recent: LRU = LRU(512)

    async def keep(self, answer: bytes) -> list[LogImage]:
        found = sources(answer) if len(answer) < 65536 else await asyncio.to_thread(sources, answer)
        return [image for image in [await self._one(s) for s in found] if image is not None]

    async def _one(self, source: Source) -> LogImage | None:
        now = time.time()
        if source.stored_id is not None:
            key = "id:" + source.stored_id
        else:
            assert source.data is not None
            key = "sha:" + hashlib.sha256(source.data).hexdigest()
        recent = self._recent.get(key)
        if recent is not None and recent.expires is not None and recent.expires >= now + self.ttl - REUSE_WITHIN:
            return recent
        data = source.data
        if data is None:
            data = await self._read(source.stored_id or "")
            if data is None:
                return None
        facts = await asyncio.to_thread(examine, data, self.thumbnail_over)
        if facts is None:
            return None
        expires = now + self.ttl
        if source.stored_id is not None and source.stored_expires >= expires - REUSE_WITHIN:
            image_id, expires = source.stored_id, source.stored_expires
        else:
            image_id = await self.store.put(data, facts.content_type, self.ttl)
        thumbnail_id = None
        if facts.thumbnail is not None and facts.thumbnail_type is not None:
            thumbnail_id = await self.store.put(facts.thumbnail, facts.thumbnail_type, self.ttl)
        image = LogImage(image_id=image_id, thumbnail_id=thumbnail_id, content_type=facts.content_type,
                         width=facts.width, height=facts.height, bytes=facts.bytes, expires=int(expires))
        self._recent.put(key, image)
        return image

    async def _read(self, image_id: str) -> bytes | None:
        stored = await self.store.get(image_id)
        if stored is None:
            return None
        if stored.data is not None:
            return stored.data
        if stored.path is None:
            return None
        try:
            return await asyncio.to_thread(Path(stored.path).read_bytes)
        except OSError:
            return None


def image_links(urls: ImageUrls, image: LogImage, base: str) -> dict[str, Any]:
    """The image as the API answers it: its fields and signed URLs below ``base`` (a request's
    :meth:`~gateway.images.urls.ImageUrls.base`), valid until the image expires."""
    expires = int(image.expires) if image.expires else int(time.time() + 3600)
    out = msgspec.structs.asdict(image)
    out["url"] = urls.absolute(urls.signed(stored_path(image.image_id, expires)), base)
    out["thumbnail_url"] = None if image.thumbnail_id is None else \
        urls.absolute(urls.signed(stored_path(image.thumbnail_id, expires)), base)
    return out
