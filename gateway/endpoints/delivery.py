"""Generated images in the format the client asked for, and the one answer shape.

``response_format`` is honoured both ways: base64 or bytes become gateway URLs
(the image is kept in the image store), provider URLs become base64 (the image
is fetched from the provider's own hosts only).  An answer that will be cached
also gets gateway URLs for provider URLs, so the first caller and every later
hit see the same images (provider URLs expire).

A stored image is held in the answer as a host-free path, signed when stored
(:meth:`gateway.images.urls.ImageUrls.signed`); the endpoint puts each caller's base in
front when it answers, so the body a cache keeps carries no caller's Host.  A provider's
image URL must be an absolute ``http(s)`` URL (or a ``data:`` URI): a path of the
gateway's own from a provider's answer is refused, never signed.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from gateway import json_decode
from gateway.cache.service import BLOB_GRACE, Unavailable
from gateway.errors import GatewayError, MalformedAnswer, UpstreamError
from gateway.images.fetch import fetch_image
from gateway.images.sniff import image_type
from gateway.images.store import NotAnImage
from gateway.images.urls import host_allowed, stored_path

if TYPE_CHECKING:  # pragma: no cover
    from gateway.attempt import Attempt
    from gateway.generation import GenerationResult, Image
    from gateway.services import Services
    from gateway.upstream import Upstream

_encode = msgspec.json.Encoder().encode
#: What a provider's image URL starts with (a relative path would be the gateway's own).
_WEB = ("https://", "http://")


class Delivery:
    """Where one attempt's images go: the image store, for how long, at which URL."""

    __slots__ = ("services", "attempt", "upstream", "ttl", "keep_urls", "cacheable")

    def __init__(self, services: Services, attempt: Attempt, upstream: Upstream, cached_for: int | None) -> None:
        self.services = services
        self.attempt = attempt
        self.upstream = upstream
        ttl = services.settings.images.ttl
        if cached_for is not None:  # a cached answer points at these images: they must live as long
            ttl = max(ttl, cached_for + BLOB_GRACE)
        self.ttl = ttl
        #: Provider URLs expire: an answer that will be cached, or from a provider whose URLs
        #: expire soon, gets gateway URLs instead.
        self.keep_urls = cached_for is not None or attempt.provider.result_urls_expire
        #: False once a provider URL could not be kept: the answer hands it on and is not cached.
        self.cacheable = True

    def as_given(self, images: list[Image], fmt: str | None) -> bool:
        """Whether every image already is what the answer should carry (nothing to store or fetch)."""
        for img in images:
            if img.b64 is not None:
                if fmt == "url":
                    return False
            elif img.url is None or not img.url.startswith(_WEB) or fmt == "b64_json" or self.keep_urls:
                return False
        return True

    async def items(self, images: list[Image], fmt: str | None) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.item(img, fmt) for img in images)))

    async def item(self, img: Image, fmt: str | None) -> dict[str, Any]:
        name = self.attempt.provider.name
        out: dict[str, Any] = {}
        url = img.url
        b64, data, ctype = img.b64, img.data, img.content_type
        if isinstance(b64, msgspec.Raw) and fmt == "url":
            b64 = _raw_string(name, b64)
        if url is not None and url.startswith("data:"):
            b64, url = _data_uri(name, url), None
        elif url is not None and not url.startswith(_WEB):
            raise MalformedAnswer(name, f"an image URL is not an absolute http(s) URL ({url[:40]!r})")
        if fmt is None:
            fmt = "url" if url is not None else "b64_json"
        if fmt == "b64_json":
            if b64 is None and data is None:
                assert url is not None
                try:
                    data, _ = await self.fetch(url)
                except GatewayError as e:
                    return self.handed_on(img, url, e)
            if b64 is None:
                assert data is not None
                b64 = base64.b64encode(data).decode("ascii")
            out["b64_json"] = b64
        elif url is not None and data is None and b64 is None:
            out["url"] = await self.keep(url) if self.keep_urls else url
        else:
            if data is None:
                try:
                    data = base64.b64decode(b64 or "", validate=True)
                except (binascii.Error, ValueError):
                    raise MalformedAnswer(name, "an image is not valid base64") from None
            out["url"] = await self.store(data, ctype)
        if img.revised_prompt is not None:
            out["revised_prompt"] = img.revised_prompt
        return out

    def handed_on(self, img: Image, url: str, error: GatewayError) -> dict[str, Any]:
        """A ``b64_json`` image whose URL could not be fetched (or is not on the provider's hosts,
        so never fetched): the provider made it and billed it, so the caller gets its URL, told
        why in ``x-portkey-adjusted-params``, rather than a 5xx that invites a retry billed again
        (or a fallback to another provider, billed too).  Such an answer is not cached."""
        self.cacheable = False
        plan = self.attempt.plan
        if plan is not None:
            plan.report(f"response_format=b64_json->url ({error.message})")
        out: dict[str, Any] = {"url": url}
        if img.revised_prompt is not None:
            out["revised_prompt"] = img.revised_prompt
        return out

    async def keep(self, url: str) -> str:
        """A gateway path for the provider's image at ``url``, for an answer that will be cached;
        the provider's own URL (and no caching) when it cannot be fetched now or is not an
        image (the provider's origin, not the gateway's, then serves whatever it is)."""
        try:
            data, ctype = await self.fetch(url)
            return await self.store(data, ctype)
        except GatewayError:
            self.cacheable = False
            return url

    async def fetch(self, url: str) -> tuple[bytes, str]:
        """An image the provider answered with a URL, from its own hosts only."""
        provider = self.attempt.provider
        if not host_allowed(url, self.attempt.base_url, provider.image_hosts):
            raise MalformedAnswer(provider.name,
                                  f"an image URL is not on {provider.name}'s own hosts ({urlsplit(url).hostname})")
        return await fetch_image(self.upstream, url)

    async def store(self, data: bytes, content_type: str | None) -> str:
        """Keep ``data`` in the image store; the host-free path that serves it, which each
        delivery renders into a signed URL for its own caller (``ImageUrls.render``).

        The type comes from the bytes alone: anything but PNG, JPEG, WebP or GIF (an HTML page,
        an SVG, whatever ``content_type`` the provider claimed) is not stored, and the image
        fails as a malformed answer naming the provider."""
        name = self.attempt.provider.name
        found = image_type(data)
        if found is None:
            raise MalformedAnswer(name, f"an image is not PNG, JPEG, WebP or GIF (said to be "
                                        f"{content_type or 'untyped'}, {len(data)} bytes); it is not kept")
        # Whole seconds, rounded down: the URL never outlives the image the store keeps.
        expires = int(time.time() + self.ttl)
        try:
            image_id = await self.services.images.put(data, found, self.ttl)
        except Unavailable:
            raise UpstreamError("The image store is unavailable", status=503, code="image_store_unavailable") from None
        except NotAnImage as e:
            raise MalformedAnswer(name, f"an image is {e}") from None
        return self.services.image_urls.signed(stored_path(image_id, expires))


def answer_body(provider: str, results: list[GenerationResult], data: list[dict[str, Any]] | None,
                extra: dict[str, Any]) -> bytes:
    """The one answer shape: ``{"created", "data", ...extra, "provider"}``.

    With ``data`` None the single result's own bytes go on with ``provider`` added:
    megabytes of base64 are copied once, not decoded and encoded again.
    """
    if data is None:
        raw = results[0].raw
        assert raw is not None
        start = raw.index(b"{") + 1
        return b"".join((b'{"provider":', _encode(provider), b"," if raw[start:].strip() != b"}" else b"",
                         memoryview(raw)[start:]))
    doc: dict[str, Any] = {"created": results[0].created or int(time.time()), "data": data}
    for key, value in extra.items():
        doc.setdefault(key, value)
    doc["provider"] = provider
    return _encode(doc)


def handed_on_urls(images: list[Image], data: list[dict[str, Any]] | None) -> list[str]:
    """The provider's own URLs an answer hands on as they were (the request log refers to them):
    every image's when the answer is the provider's as given (``data`` None), else the items'
    ``url`` that is not the gateway's own (a host-free path)."""
    if data is None:
        return [img.url for img in images if img.url]
    return [d["url"] for d in data if d.get("url", "").startswith(_WEB)]


def merge_extra(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Fields of several answers as one: numbers (token usage) add up, the rest come from the first."""
    out: dict[str, Any] = {}
    for extra in extras:
        for key, value in extra.items():
            out[key] = value if key not in out else _add(out[key], value)
    return out


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _add(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}}
    return a


def _raw_string(provider: str, raw: msgspec.Raw) -> str:
    try:
        value = json_decode.decode(raw)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, str):
        raise MalformedAnswer(provider, "an image's base64 is not a string")
    return value


def _data_uri(provider: str, url: str) -> str:
    head, sep, payload = url.partition(",")
    if not sep or ";base64" not in head:
        raise MalformedAnswer(provider, "an image data: URI is not base64")
    return payload
