"""Fetching an image a provider answered with a URL."""
from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from gateway.errors import GatewayError, UpstreamError
from gateway.images.sniff import sniff
from gateway.provider import UpstreamRequest

if TYPE_CHECKING:  # pragma: no cover
    from gateway.upstream import Upstream

#: Largest image the gateway fetches from a provider URL.
MAX_IMAGE_BYTES = 64 * 1024 * 1024


async def fetch_image(upstream: Upstream, url: str) -> tuple[bytes, str]:
    """The image at ``url`` and its type (checked by the caller to be on the provider's hosts)."""
    name = upstream.provider
    try:
        resp = await upstream.send(UpstreamRequest("GET", url, {}), relay=True)
    except GatewayError as e:
        raise UpstreamError(f"Fetching an image from {name} failed: {e.message}", provider=name,
                            code="image_fetch_failed") from None
    try:
        if resp.status != 200:
            raise UpstreamError(f"Fetching an image from {name} failed: HTTP {resp.status}", provider=name,
                                code="image_fetch_failed")
        data = bytearray()
        async for chunk in resp.content.iter_any():
            data += chunk
            if len(data) > MAX_IMAGE_BYTES:
                raise UpstreamError(f"An image from {name} is over {MAX_IMAGE_BYTES} bytes", provider=name,
                                    code="image_fetch_failed")
        return bytes(data), sniff(data, resp.content_type)
    except aiohttp.ClientError as e:
        raise UpstreamError(f"Fetching an image from {name} failed: {e.__class__.__name__}", provider=name,
                            code="image_fetch_failed") from None
    finally:
        resp.release()
