"""``GET /v1/images/files/{id}``: an image the gateway stored, under the same gateway-key rules as the rest."""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from aiohttp import web

from gateway import headers as h
from gateway.cache.service import Unavailable
from gateway.errors import NotFound, UpstreamError

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.services import Services


async def serve(services: Services, ctx: RequestContext, image_id: str) -> web.StreamResponse:
    """The stored image with its content type, cacheable by the client until it expires."""
    try:
        image = await services.images.get(image_id)
    except Unavailable:
        raise UpstreamError("The image store is unavailable", status=503, code="image_store_unavailable") from None
    if image is None:
        raise NotFound("No such image (it may have expired)", code="image_not_found")
    headers = {h.TRACE_ID: ctx.trace_id, "Content-Type": image.content_type,
               "Cache-Control": f"private, max-age={max(0, int(image.expires - time.time()))}"}
    ctx.record.status = 200
    if image.path is not None:
        ctx.record.bytes_out = os.path.getsize(image.path)
        return web.FileResponse(image.path, headers=headers)
    ctx.record.bytes_out = len(image.data or b"")
    return web.Response(body=image.data, headers=headers)
