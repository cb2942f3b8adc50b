"""``GET /v1/images/files/{id}?expires=...&sig=...``: an image the gateway stored.

The signature is the authorization (:mod:`gateway.images.signing`): a URL from an answer
loads without any header until it expires; an unsigned, changed or expired one is a 403.
Only images are served, and served so a browser never treats one as a page: the type
read from the bytes when stored, ``nosniff``, ``Content-Disposition: inline`` with a
safe file name, and a ``sandbox`` CSP.
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from gateway import headers as h
from gateway.cache.service import Unavailable
from gateway.errors import NotFound, UpstreamError
from gateway.images.sniff import IMAGE_TYPES
from gateway.images.store import valid_id

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

    from gateway.context import RequestContext
    from gateway.services import Services

_log = structlog.get_logger("gateway.images")
#: Whatever a browser makes of the bytes, it runs nothing and loads nothing with them.
CSP = "default-src 'none'; sandbox"


async def serve(services: Services, ctx: RequestContext, image_id: str, query: Mapping[str, str]) -> web.StreamResponse:
    """The stored image, cacheable by the client until the URL or the image expires."""
    expires = services.image_urls.check(image_id, query)
    try:
        image = await services.images.get(image_id)
    except Unavailable:
        raise UpstreamError("The image store is unavailable", status=503, code="image_store_unavailable") from None
    if image is not None and image.content_type not in IMAGE_TYPES:
        # Kept by an older gateway or another store without the type check: never served.
        _log.warning("images.not_an_image", image_id=image_id, content_type=image.content_type[:100])
        image = None
    if image is None:
        raise NotFound("No such image (it may have expired)", code="image_not_found")
    name = image_id if valid_id(image_id) else "image"
    max_age = max(0, int(min(image.expires, expires) - time.time()))
    headers = {h.TRACE_ID: ctx.trace_id, "Content-Type": image.content_type,
               "X-Content-Type-Options": "nosniff",
               "Content-Disposition": f'inline; filename="{name}.{IMAGE_TYPES[image.content_type]}"',
               "Content-Security-Policy": CSP,
               "Cache-Control": f"private, max-age={max_age}"}
    ctx.record.status = 200
    if image.path is not None:
        ctx.record.bytes_out = os.path.getsize(image.path)
        return web.FileResponse(image.path, headers=headers)
    ctx.record.bytes_out = len(image.data or b"")
    return web.Response(body=image.data, headers=headers)
