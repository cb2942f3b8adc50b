"""A neutral provider for tests that are not about a provider: routing strategies, the
core's own behaviour.  It speaks OpenAI's images wire shape, under the slug ``fake``.

Register :data:`plugin` (``gateway_plugins``), point ``[providers.fake] base_url``
at a :class:`~gateway.testing.FakeUpstream` and call :func:`install` on it.
"""
from __future__ import annotations

import base64
import itertools
import time
import types
from typing import Any

import msgspec
from aiohttp import web

from gateway.hookspecs import hookimpl
from gateway.openai_compatible import OpenAICompatibleProvider
from gateway.provider import Capabilities, ModelCapabilities
from gateway.testing import FakeUpstream, Recorded

__all__ = ["FakeProvider", "install", "plugin"]


class FakeProvider(OpenAICompatibleProvider):
    """``x-portkey-provider: fake``: OpenAI's request and answer shape, one model."""

    name = "fake"
    default_base_url = "https://fake-provider.invalid/v1"
    capabilities = Capabilities(
        default_model="fake-image",
        models={"fake-image": ModelCapabilities(sizes=("512x512", "1024x1024"), max_n=4,
                                                response_formats=("url", "b64_json"))},
        parameters=frozenset({"prompt", "model", "n", "size", "response_format", "user"}),
        passes_unknown_parameters=True,
    )


@hookimpl
def gateway_register_providers() -> list[type]:
    return [FakeProvider]


#: The plugin to register: ``gateway_plugins = [plugin, ...]``.
plugin = types.SimpleNamespace(gateway_register_providers=gateway_register_providers)


def install(upstream: FakeUpstream, prefix: str = "/v1") -> FakeUpstream:
    """Answer ``POST {prefix}/images/generations`` with ``n`` distinct base64 PNG-ish images
    (``b64_json``, or URLs on the fake itself for ``response_format: url``); a missing key is a 401."""
    counter = itertools.count(1)

    async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"error": {"message": "missing key", "type": "auth"}}, status=401)
        body: dict[str, Any] = msgspec.json.decode(rec.body)
        data = []
        for _ in range(int(body.get("n", 1))):
            image = b"\x89PNG\r\n\x1a\nfake-%d" % next(counter)
            if body.get("response_format") == "url":
                path = f"/fake-files/{len(upstream.requests)}-{len(data)}.png"
                upstream.on("GET", path, _file(image))
                data.append({"url": upstream.url + path})
            else:
                data.append({"b64_json": base64.b64encode(image).decode()})
        return web.json_response({"created": int(time.time()), "data": data})

    return upstream.on("POST", f"{prefix}/images/generations", handle)


def _file(data: bytes) -> Any:
    async def serve(request: web.Request, rec: Recorded) -> web.StreamResponse:
        return web.Response(body=data, content_type="image/png")

    return serve
