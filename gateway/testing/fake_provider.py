"""A neutral provider for tests that are not about a provider: routing strategies and the
core's own behaviour.  It speaks OpenAI's images wire shape under the slug ``fake``.

Register :data:`plugin` (``gateway_plugins``), point ``[providers.fake] base_url`` at a
:class:`~gateway.testing.FakeUpstream` (``fake_upstream.url + "/v1"``) and call
:func:`install` on it.  Two models, declared like a real provider's:

* ``fake-image`` (the default): sizes 512x512 and 1024x1024, up to 4 images a call, no
  quality tiers or styles;
* ``fake-hd``: sizes 1024x1024, 1792x1024 and 1024x1792, one image a call, qualities
  ``standard``/``hd``, styles ``vivid``/``natural``, and a ``revised_prompt`` in its answers.
"""
from __future__ import annotations

import base64
import time
import types
from typing import Any

import msgspec
from aiohttp import web

from gateway.hookspecs import hookimpl
from gateway.openai_compatible import OpenAICompatibleProvider
from gateway.provider import Capabilities, ModelCapabilities
from gateway.testing import PNG_1X1, FakeUpstream, Recorded

__all__ = ["FakeProvider", "MODELS", "install", "plugin"]

MODELS = {
    "fake-image": ModelCapabilities(sizes=("512x512", "1024x1024"), max_n=4, response_formats=("url", "b64_json")),
    "fake-hd": ModelCapabilities(sizes=("1024x1024", "1792x1024", "1024x1792"), max_n=1,
                                 qualities=("standard", "hd"), styles=("vivid", "natural"),
                                 response_formats=("url", "b64_json")),
}


class FakeProvider(OpenAICompatibleProvider):
    """``x-portkey-provider: fake``: OpenAI's request and answer shape, two models."""

    name = "fake"
    default_base_url = "https://fake-provider.invalid/v1"
    capabilities = Capabilities(
        default_model="fake-image",
        models=MODELS,
        parameters=frozenset({"prompt", "model", "n", "size", "quality", "style", "response_format", "user"}),
        passes_unknown_parameters=True,
    )


@hookimpl
def gateway_register_providers() -> list[type]:
    return [FakeProvider]


#: The plugin to register: ``gateway_plugins = [plugin, ...]``.
plugin = types.SimpleNamespace(gateway_register_providers=gateway_register_providers)


def error(status: int, message: str, param: str | None = None, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return web.json_response(body, status=status)


def install(upstream: FakeUpstream, prefix: str = "/v1", image: bytes = PNG_1X1) -> FakeUpstream:
    """Answer ``POST {prefix}/images/generations`` as the models above document: a Bearer key,
    a JSON body with a ``prompt``, ``n`` and ``size`` checked per model (a 400 naming them), an
    unknown model a 404, a prompt containing ``content_policy`` refused; ``b64_json`` items, or
    for ``response_format: url`` URLs on the fake itself that serve the image."""
    upstream.on("GET", f"{prefix}/files/image.png", _serve(image))

    async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return error(401, "You didn't provide an API key.")
        try:
            body: dict[str, Any] = msgspec.json.decode(rec.body)
        except msgspec.DecodeError:
            return error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return error(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
        if "content_policy" in body["prompt"]:
            return error(400, "Your request was rejected by the safety system.", code="content_policy_violation")
        model = body.get("model", "fake-image")
        caps = MODELS.get(model)
        if caps is None:
            return error(404, f"The model '{model}' does not exist.", code="model_not_found")
        n = body.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= caps.max_n:
            return error(400, f"Invalid 'n': must be between 1 and {caps.max_n}.", "n", "invalid_value")
        size = body.get("size", "1024x1024")
        if size not in caps.sizes:
            return error(400, f"Invalid value: '{size}'. Supported values are: {list(caps.sizes)}.", "size",
                         "invalid_value")
        data = []
        for _ in range(n):
            if body.get("response_format") == "url":
                item: dict[str, Any] = {"url": f"{upstream.url}{prefix}/files/image.png"}
            else:
                item = {"b64_json": base64.b64encode(image).decode()}
            if model == "fake-hd":
                item["revised_prompt"] = "A revised " + body["prompt"]
            data.append(item)
        return web.json_response({"created": int(time.time()), "data": data}, headers={"x-request-id": "req_fake"})

    return upstream.on("POST", f"{prefix}/images/generations", handle)


def _serve(data: bytes) -> Any:
    async def serve(request: web.Request, rec: Recorded) -> web.StreamResponse:
        return web.Response(body=data, content_type="image/png")

    return serve
