"""Cache stages, built in: lookup (with single flight) and store, over the configured backend."""
from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from gateway import hookimpl
from gateway.cache.backend import MemoryBackend
from gateway.cache.keys import cache_key
from gateway.cache.service import BLOB_GRACE, Pending, Unavailable
from gateway.context import IMAGES_GENERATIONS, RequestContext
from gateway.headers import CACHE_FORCE_REFRESH, truthy
from gateway.outcome import Outcome
from gateway.provider import Call

HELD = "cache.held"


@hookimpl
def gateway_register_cache_backends() -> list[type]:
    return [MemoryBackend]


def _config(ctx: RequestContext, call: Call) -> tuple[str, int] | None:
    cfg = call.target.cache
    settings = ctx.gateway.settings.cache
    if cfg is None:
        if settings.default is None:
            return None
        cfg = settings.default
    if cfg.mode != "simple":  # semantic caching is a plugin's business
        return None
    return cfg.mode, cfg.max_age if cfg.max_age is not None else settings.default_max_age


@hookimpl(trylast=True)
async def gateway_cache_lookup(ctx: RequestContext, call: Call) -> Outcome | None:
    service = ctx.gateway.cache
    cfg = _config(ctx, call)
    body = call.upstream.body if call.upstream is not None else None
    if service is None or cfg is None or (body is not None and not isinstance(body, bytes)):
        ctx.cache_status = ctx.cache_status or "DISABLED"  # an earlier cache plugin may have said more
        return None
    key = cache_key(call, body or b"")
    refresh = truthy(ctx.headers.get(CACHE_FORCE_REFRESH))
    held: dict[str, bool] = ctx.extra.setdefault(HELD, {})
    try:
        if not refresh:
            hit = await service.lookup(key)
            if hit is not None:
                ctx.cache_status = "HIT"
                return hit
        if key not in held:
            leader = await service.lead(key)
            if not leader:
                # A twin request fetched it meanwhile (here or on another instance).
                hit = None if refresh else await service.lookup(key)
                if hit is not None:
                    ctx.cache_status = "HIT"
                    return hit
                # The twin's answer was not stored (an error, or too big): call upstream
                # now, all waiting twins at once, rather than queueing behind new leads.
            held[key] = leader
    except Unavailable:
        ctx.cache_status = "DISABLED"
        return None
    ctx.cache_status = "REFRESH" if refresh else "MISS"
    call.cache = Pending(key, cfg[1])
    return None


@hookimpl(trylast=True)
async def gateway_cache_store(ctx: RequestContext, pending: Pending, outcome: Outcome, body: bytes) -> None:
    service = ctx.gateway.cache
    if service is None or len(body) > ctx.gateway.settings.cache.max_entry_bytes:
        return
    try:
        if ctx.endpoint == IMAGES_GENERATIONS and b'"url"' in body:
            body = await _keep_url_images(ctx, body, pending.max_age + BLOB_GRACE)
            if body is None:
                return
        await service.store(pending, outcome, body)
    except Unavailable:
        pass


async def _keep_url_images(ctx: RequestContext, body: bytes, ttl: int) -> bytes | None:
    """Provider image URLs expire (OpenAI's after an hour); a cached answer must not
    hand them out later.  Fetch each image into the image store and point the
    entry at the gateway's own URL, which lives as long as the entry.  None when
    an image cannot be fetched: then nothing is cached."""
    from gateway.handlers import image_url

    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    items = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return None
    own = image_url(ctx, "")
    for item in items:
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or url.startswith(own):
            continue  # the gateway's own URLs were stored to outlive the entry
        try:
            async with ctx.gateway.session.get(url, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                if resp.status != 200:
                    return None
                data = await resp.read()
                ctype = resp.headers.get("Content-Type", "image/png")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        item["url"] = image_url(ctx, await ctx.gateway.images.put(data, ctype, ttl))
    return msgspec.json.encode(doc)


@hookimpl(trylast=True)
async def gateway_request_finished(ctx: RequestContext, fields: dict[str, Any]) -> None:
    """Leads whose answer is not being stored end here (errors, client gone)."""
    held = ctx.extra.get(HELD)
    service = ctx.gateway.cache
    if not held or service is None:
        return
    for key, still_held in list(held.items()):
        if still_held:
            await service.release(key)
