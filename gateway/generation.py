"""Image generation the same way for every provider.

The core, not the provider, owns what is common: reading the unified (OpenAI)
parameters against the model's declared capabilities (lenient: map to the
nearest supported value and say so in ``x-portkey-adjusted-params``; strict:
400), splitting ``n`` into parallel upstream calls when a model makes fewer
images per call, merging the answers in order, honouring ``response_format``
both ways (storing images to hand out gateway URLs, fetching provider URLs to
hand out base64) and writing the one response shape
``{"created", "data": [{"b64_json"|"url", "revised_prompt"?}], "provider"}``.
The mapping itself lives in :mod:`gateway.negotiation`.

A provider only turns one :class:`GenerationRequest` into an upstream request
(``build_generation``) and one upstream answer into :class:`Image` objects
(``parse_generation``).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import time
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from multidict import CIMultiDict

from gateway import headers as h
from gateway.errors import GatewayError, ProviderError, UpstreamError
from gateway.outcome import Outcome

if TYPE_CHECKING:  # pragma: no cover
    from gateway.provider import Call, Provider

#: The one error code every provider's content-policy refusal carries.
CONTENT_POLICY = "content_policy_violation"
#: Largest image the gateway fetches from a provider URL.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
#: Parameters the gateway itself understands (OpenAI's names).
UNIFIED = frozenset({"prompt", "model", "n", "size", "quality", "style", "response_format", "user"})
RESPONSE_FORMATS = ("url", "b64_json")

_encode = msgspec.json.Encoder().encode


class MalformedAnswer(UpstreamError):
    """A 2xx provider answer that is not what the provider's API documents."""

    code = "invalid_provider_response"

    def __init__(self, provider: str, what: str, body: bytes | None = None) -> None:
        snippet = ""
        if body is not None:
            text = body[:200].decode("utf-8", "replace").strip()
            snippet = f": {text}{'...' if len(body) > 200 else ''}" if text else ": empty body"
        super().__init__(f"Invalid response from {provider}: {what}{snippet}", provider=provider)


class ContentPolicyViolation(ProviderError):
    """The provider refused the prompt or filtered the image."""

    type = "invalid_request_error"

    def __init__(self, provider: str, message: str, status: int = 400) -> None:
        super().__init__(f"{provider} error: {message}", status=status, code=CONTENT_POLICY, provider=provider)


class Image(msgspec.Struct, kw_only=True):
    """One generated image as the provider gave it: base64 text, bytes, or a URL."""

    #: Base64 text; or, straight from a JSON answer, the encoded JSON string as
    #: ``msgspec.Raw`` (copied into the answer without decoding a megabyte string twice).
    b64: str | msgspec.Raw | None = None
    data: bytes | None = None
    url: str | None = None
    content_type: str | None = None
    revised_prompt: str | None = None


class GenerationResult(msgspec.Struct, kw_only=True):
    """What one upstream call produced."""

    images: list[Image]
    created: int | None = None
    #: The upstream answer's headers worth relaying (request ids, rate-limit state).
    headers: CIMultiDict[str] | None = None
    #: The answer's own bytes when they already are the unified shape (OpenAI-style APIs,
    #: checked by the parser): sent on with ``provider`` added when nothing else changes.
    raw: bytes | None = None
    #: Top-level fields of the answer worth keeping (OpenAI's ``usage``, ...).
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


class GenerationRequest(msgspec.Struct, kw_only=True):
    """The unified parameters after capability mapping, for one upstream call."""

    prompt: str
    model: str | None = None
    #: Images this upstream call makes.
    n: int = 1
    #: ``WxH`` as the client sent it, or as mapped; None when not given.
    size: str | None = None
    width: int | None = None
    height: int | None = None
    #: ``W:H`` when the model takes aspect ratios.
    aspect_ratio: str | None = None
    quality: str | None = None
    style: str | None = None
    #: ``url``, ``b64_json``, or None (whatever the provider gives).
    response_format: str | None = None
    user: str | None = None
    #: Other parameters the provider accepts (native names: ``seed``, ``steps``, ...).
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Index of this call's first image in the whole answer.
    offset: int = 0
    #: Whether anything differs from what the client sent (the body cannot go as it is).
    changed: bool = False


class GenerationPlan(msgspec.Struct, kw_only=True):
    """The whole request: one GenerationRequest per upstream call, and what was adjusted."""

    parts: list[GenerationRequest]
    n: int
    response_format: str | None
    adjusted: list[str] = msgspec.field(default_factory=list)

    def cache_material(self) -> bytes:
        """What the final answer depends on beyond the first upstream request."""
        return _encode([self.n, self.response_format, len(self.parts)])


# -- running ----------------------------------------------------------------------

async def execute_generation(provider: Provider, call: Call) -> Outcome:
    """Run every upstream call of the plan, merge in order, deliver in the asked format."""
    plan = call.generation
    assert plan is not None
    ctx = call.ctx
    try:
        if len(plan.parts) == 1:
            results = [await provider.generate(call, plan.parts[0])]
        else:
            calls = [call] + [await call.fork(part) for part in plan.parts[1:]]
            waited, t0 = ctx.upstream_ms, time.perf_counter()
            try:
                results = await _gather([provider.generate(c, p) for c, p in zip(calls, plan.parts, strict=True)])
            finally:
                # Parallel waits overlap: count the wall time, not the sum.
                ctx.upstream_ms = min(ctx.upstream_ms, waited + (time.perf_counter() - t0) * 1000.0)
        images = [img for r in results for img in r.images]
        raw = results[0].raw if len(results) == 1 and _as_given(images, plan.response_format) else None
        if raw is None:
            data = await _deliver(call, images, plan.response_format)
    except GatewayError as e:
        outcome = Outcome.from_error(e, provider=provider.name)
        upstream = getattr(e, "upstream_headers", None)
        if upstream is not None:
            outcome.headers = upstream
        return outcome
    if raw is not None:
        # Megabytes of base64 are copied once, not decoded and encoded again.
        start = raw.index(b"{") + 1
        body = b"".join((b'{"provider":', _encode(provider.name), b"," if raw[start:].strip() != b"}" else b"",
                         memoryview(raw)[start:]))
    else:
        doc: dict[str, Any] = {"created": results[0].created or int(time.time()), "data": data}
        for key, value in _merge_extra([r.extra for r in results]).items():
            doc.setdefault(key, value)
        doc["provider"] = provider.name
        body = _encode(doc)
    headers = CIMultiDict(results[0].headers or ())
    for name in ("Content-Type", "Content-Encoding", "Content-Disposition", "ETag", "Last-Modified"):
        headers.popall(name, None)
    headers["Content-Type"] = "application/json"
    if plan.adjusted:
        headers[h.RESP_ADJUSTED] = "; ".join(plan.adjusted)
    return Outcome(200, headers, body=body, provider=provider.name)


def _as_given(images: list[Image], fmt: str | None) -> bool:
    """Whether every image already is in the asked format (nothing to store or fetch)."""
    for img in images:
        if img.b64 is not None:
            if fmt == "url":
                return False
        elif img.url is None or img.url.startswith("data:") or fmt == "b64_json":
            return False
    return True


async def _gather(coros: list[Any]) -> list[Any]:
    """All results in order; the first failure cancels the rest and is raised as it is."""
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(c) for c in coros]
    except BaseExceptionGroup as eg:
        first = eg.exceptions[0]
        for e in eg.exceptions:
            if isinstance(e, GatewayError):
                first = e
                break
        raise first from None
    return [t.result() for t in tasks]


def _merge_extra(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Fields of several answers as one: numbers (token usage) add up, the rest come from the first."""
    out: dict[str, Any] = {}
    for extra in extras:
        for key, value in extra.items():
            if key not in out:
                out[key] = value
            else:
                out[key] = _add(out[key], value)
    return out


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool):
        return a + b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _add(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}}
    return a


async def _deliver(call: Call, images: list[Image], fmt: str | None) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(_deliver_one(call, img, fmt) for img in images)))


async def _deliver_one(call: Call, img: Image, fmt: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    url = img.url
    b64, data = img.b64, img.data
    if isinstance(b64, msgspec.Raw) and fmt == "url":
        b64 = _raw_string(call, b64)
    if url is not None and url.startswith("data:"):
        b64, url = _data_uri(call, url), None
    if fmt is None:
        fmt = "url" if url is not None else "b64_json"
    if fmt == "b64_json":
        if b64 is None:
            if data is None:
                assert url is not None
                data, _ = await fetch_image(call, url)
            b64 = base64.b64encode(data).decode("ascii")
        out["b64_json"] = b64
    elif url is not None and data is None and b64 is None:
        out["url"] = url
    else:
        if data is None:
            try:
                data = base64.b64decode(b64 or "", validate=True)
            except (binascii.Error, ValueError):
                raise MalformedAnswer(call.provider.name, "an image is not valid base64") from None
        out["url"] = await store_image(call, data, img.content_type)
    if img.revised_prompt is not None:
        out["revised_prompt"] = img.revised_prompt
    return out


def _raw_string(call: Call, raw: msgspec.Raw) -> str:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, str):
        raise MalformedAnswer(call.provider.name, "an image's base64 is not a string")
    return value


def _data_uri(call: Call, url: str) -> str:
    head, sep, payload = url.partition(",")
    if not sep or ";base64" not in head:
        raise MalformedAnswer(call.provider.name, "an image data: URI is not base64")
    return payload


def sniff(data: bytes, default: str | None = None) -> str:
    """The image type from its first bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return default or "application/octet-stream"


async def store_image(call: Call, data: bytes, content_type: str | None = None) -> str:
    """Keep ``data`` in the image store; the absolute gateway URL that serves it."""
    from gateway.cache.service import BLOB_GRACE, Unavailable
    from gateway.handlers import image_url

    ctx = call.ctx
    ttl = ctx.gateway.settings.images.ttl
    if call.cache is not None:  # a cached answer points at this image: it must live as long
        ttl = max(ttl, call.cache.max_age + BLOB_GRACE)
    try:
        image_id = await ctx.gateway.images.put(data, sniff(data, content_type), ttl)
    except Unavailable:
        raise UpstreamError("The image store is unavailable", status=503, code="image_store_unavailable") from None
    return image_url(ctx, image_id)


def host_allowed(provider: Provider, call: Call, url: str) -> bool:
    """Whether ``url`` is on one of the provider's own hosts (its declared image
    hosts, or the host its API is called on)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    host = parts.hostname.lower()
    if host == (urlsplit(call.base_url).hostname or "").lower():
        return True
    return parts.scheme == "https" and any(fnmatch(host, pattern) for pattern in provider.image_hosts)


async def fetch_image(call: Call, url: str) -> tuple[bytes, str]:
    """Download an image the provider answered with a URL (its own hosts only)."""
    name = call.provider.name
    if not host_allowed(call.provider, call, url):
        raise MalformedAnswer(name, f"an image URL is not on {name}'s own hosts ({urlsplit(url).hostname})")
    t0 = time.perf_counter()
    try:
        async with call.ctx.gateway.session.get(url, allow_redirects=False) as resp:
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
        call.ctx.upstream_ms += (time.perf_counter() - t0) * 1000.0


def decode_json(provider: Provider, body: bytes) -> Any:
    """A 2xx JSON body, or a 502 saying it is not JSON."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise MalformedAnswer(provider.name, "the body is not JSON", body) from None
