"""Test helpers for the gateway and its plugins.

:class:`FakeUpstream` is a real aiohttp server on loopback that plays a
provider: script its answers per route, then assert on exactly what the
gateway sent (``upstream.requests``).  The pytest fixtures built on it live
in :mod:`gateway.testing.pytest_plugin` (loaded automatically through the
``pytest11`` entry point).
"""
from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from aiohttp import MultipartReader, StreamReader, web
from aiohttp.base_protocol import BaseProtocol
from multidict import CIMultiDict

from gateway.logging import configure_logging

__all__ = ["PNG_1X1", "Part", "ServicesProbe", "FakeUpstream", "LogCapture", "Recorded", "Reply", "answer", "edit_form", "image_events", "image_url_allowed", "make_app",
           "make_attempt", "make_provider", "record_sleeps", "services_of"]

#: A 1x1 PNG, for fakes that need a real image.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class Part:
    """One part of a multipart body a fake received."""

    __slots__ = ("name", "filename", "content_type", "data")

    def __init__(self, name: str, filename: str | None, content_type: str | None, data: bytes) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.data = data

    def __repr__(self) -> str:
        return f"<Part {self.name} {self.filename} {len(self.data)}B>"


class Recorded:
    """One request the fake upstream received."""

    __slots__ = ("method", "path", "query", "headers", "body")

    def __init__(self, method: str, path: str, query: dict[str, str], headers: CIMultiDict[str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return msgspec.json.decode(self.body)

    async def form(self) -> list[Part]:
        """The parts of a multipart body, in order, with their bytes, read with aiohttp's reader
        (a body that is not multipart, or is malformed, raises ``ValueError``)."""
        if not self.headers.get("Content-Type", "").startswith("multipart/"):
            raise ValueError("not a multipart body")
        stream = StreamReader(BaseProtocol(asyncio.get_running_loop()), limit=max(2**16, len(self.body)))
        stream.feed_data(self.body)
        stream.feed_eof()
        reader = MultipartReader(self.headers, stream)
        parts = []
        while (part := await reader.next()) is not None:
            if isinstance(part, MultipartReader):
                raise ValueError("a nested multipart part")
            parts.append(Part(part.name or "", part.filename, part.headers.get("Content-Type"),
                              bytes(await part.read())))
        return parts

    def __repr__(self) -> str:
        return f"<Recorded {self.method} {self.path} {len(self.body)}B>"


class Reply:
    """A scripted answer.  ``reset`` closes the connection: ``"before"`` any
    byte, or ``"mid"`` after half the body; ``hang`` never answers."""

    def __init__(
        self,
        status: int = 200,
        *,
        json: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        delay: float = 0.0,
        hang: bool = False,
        reset: str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.status = status
        if json is not None:
            body = msgspec.json.encode(json)
            content_type = content_type or "application/json"
        self.body = body or b""
        self.headers = headers or {}
        self.content_type = content_type or "application/octet-stream"
        self.delay = delay
        self.hang = hang
        self.reset = reset
        self.chunk_size = chunk_size


Handler = Callable[[web.Request, Recorded], Awaitable[web.StreamResponse]]


class FakeUpstream:
    """A scriptable provider on a real loopback port."""

    def __init__(self, *, decompress: bool = True) -> None:
        #: Whether the server decodes a request body's ``Content-Encoding`` (off: a body in a
        #: coding it cannot decode reaches the handler, not a plain-text 400 from aiohttp).
        self.decompress = decompress
        self.requests: list[Recorded] = []
        #: Requests whose handler was cancelled because the caller went away.
        self.cancelled = 0
        self._routes: dict[tuple[str, str], list[Reply | Handler]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, method: str, path: str, *replies: Reply | Handler) -> FakeUpstream:
        """Answer ``method path`` with ``replies`` in order; the last one repeats."""
        self._routes[(method.upper(), path)] = list(replies)
        return self

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def start(self) -> FakeUpstream:
        app = web.Application(client_max_size=1024**3, handler_args={"auto_decompress": self.decompress})
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(request.method, request.path, dict(request.query), CIMultiDict(request.headers), body)
        self.requests.append(rec)
        script = self._routes.get((request.method, request.path))
        if not script:
            return web.json_response(
                {"error": {"message": f"fake upstream: no route for {request.method} {request.path}"}}, status=404
            )
        reply = script.pop(0) if len(script) > 1 else script[0]
        try:
            if callable(reply) and not isinstance(reply, Reply):
                return await reply(request, rec)
            return await self.respond(request, reply)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def respond(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        """Answer ``request`` with ``reply`` (for handlers that pick a Reply themselves)."""
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.hang:
            await asyncio.sleep(3600)
        if reply.reset == "before":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        resp.content_type = reply.content_type
        resp.content_length = len(reply.body)
        await resp.prepare(request)
        if reply.reset == "mid":
            await resp.write(reply.body[: len(reply.body) // 2])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.abort()
            return resp
        step = reply.chunk_size or len(reply.body) or 1
        for i in range(0, len(reply.body), step):
            await resp.write(reply.body[i : i + step])
        await resp.write_eof()
        return resp


async def image_events(request: web.Request, body: dict[str, Any], image: bytes, *, kind: str, gap: float,
                       usage: dict[str, Any], headers: dict[str, str] | None = None) -> web.StreamResponse:
    """OpenAI's image stream, as a fake provider answers ``stream: true``: ``partial_images``
    ``<kind>.partial_image`` events ``gap`` seconds apart (so a buffering relay shows), then the
    ``<kind>.completed`` one with ``usage`` (``kind``: ``image_generation`` or ``image_edit``)."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **(headers or {})})
    await resp.prepare(request)
    b64 = base64.b64encode(image).decode()
    common = {"background": body.get("background", "auto"), "created_at": int(time.time()),
              "output_format": body.get("output_format", "png"), "quality": body.get("quality", "auto"),
              "size": body.get("size", "1024x1024")}
    for i in range(int(body.get("partial_images", 0))):
        event = {"type": f"{kind}.partial_image", "b64_json": b64, "partial_image_index": i, **common}
        await resp.write(f"event: {kind}.partial_image\ndata: ".encode() + msgspec.json.encode(event) + b"\n\n")
        await asyncio.sleep(gap)
    done = {"type": f"{kind}.completed", "b64_json": b64, **common, "usage": usage}
    await resp.write(f"event: {kind}.completed\ndata: ".encode() + msgspec.json.encode(done) + b"\n\n")
    await resp.write_eof()
    return resp


class LogCapture:
    """Everything the gateway logged, as rendered bytes and as parsed lines."""

    def __init__(self) -> None:
        self.stream = io.BytesIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue().decode()

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [msgspec.json.decode(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    def finished(self) -> dict[str, Any]:
        """The last ``request.finished`` line: the request a test just sent."""
        return self.events("request.finished")[-1]

    def install(self) -> None:
        configure_logging("json", "debug", stream=self.stream, cache=False)

    @staticmethod
    def uninstall() -> None:
        structlog.reset_defaults()


# The in-process harness (after FakeUpstream: it needs nothing of this module).
from gateway.testing.harness import (  # noqa: E402
    ServicesProbe,
    answer,
    edit_form,
    image_url_allowed,
    make_app,
    make_attempt,
    make_provider,
    record_sleeps,
    services_of,
)
