"""A neutral provider for tests that are not about a provider: routing strategies and the
core's own behaviour.  It speaks OpenAI's images wire shape under the slug ``fake``.

Register :data:`plugin` (``gateway_plugins``), point ``[providers.fake] base_url`` at a
:class:`~gateway.testing.FakeUpstream` (``fake_upstream.url + "/v1"``) and call
:func:`install` on it.  Two models, declared like a real provider's:

* ``fake-image`` (the default): sizes 512x512 and 1024x1024, up to 4 images a call, no
  quality tiers or styles;
* ``fake-hd``: sizes 1024x1024, 1792x1024 and 1024x1792, one image a call, qualities
  ``standard``/``hd``, styles ``vivid``/``natural``, and a ``revised_prompt`` in its answers.

Edits (``/images/edits``, OpenAI's multipart shape): ``fake-image`` takes up to 4 images
and a mask, ``fake-hd`` up to 16 images and no mask, ``fake-fill`` one image and a
black-and-white mask (white where it changes: the gateway converts an OpenAI mask); it does
not stream (the gateway makes a stream of its whole answer).

Prices (:data:`PRICES`, made up for tests): ``fake-image`` $0.01 an image at 512x512 and $0.02
at any other size; ``fake-hd`` $0.04 (1024x1024) or $0.08 (other sizes), twice that in ``hd``
quality; ``fake-fill`` $0.03 an image.  Its answers carry no ``usage``: every cost is an estimate.
"""
from __future__ import annotations

import base64
import io
import time
import types
from typing import Any

import msgspec
from aiohttp import web
from PIL import Image

from gateway.context import IMAGES_EDITS, IMAGES_GENERATIONS, PROXY
from gateway.hookspecs import hookimpl
from gateway.openai_compatible import OpenAICompatibleProvider
from gateway.pricing import PerImage
from gateway.provider import Capabilities, ModelCapabilities
from gateway.testing import PNG_1X1, FakeUpstream, Recorded

__all__ = ["FakeProvider", "MODELS", "PRICES", "install", "multipart_parts", "plugin"]

MODELS = {
    "fake-image": ModelCapabilities(sizes=("512x512", "1024x1024"), max_n=4, response_formats=("url", "b64_json")),
    "fake-hd": ModelCapabilities(sizes=("1024x1024", "1792x1024", "1024x1792"), max_n=1,
                                 qualities=("standard", "hd"), styles=("vivid", "natural"),
                                 response_formats=("url", "b64_json")),
}

#: What the fake's models cost (rows tried in order: the first matching size and quality wins).
PRICES = (
    PerImage(model="fake-image", usd=0.01, size="512x512"),
    PerImage(model="fake-image", usd=0.02),
    PerImage(model="fake-hd", usd=0.08, size="1024x1024", quality="hd"),
    PerImage(model="fake-hd", usd=0.16, quality="hd"),
    PerImage(model="fake-hd", usd=0.04, size="1024x1024"),
    PerImage(model="fake-hd", usd=0.08),
    PerImage(model="fake-fill", usd=0.03),
)


class FakeProvider(OpenAICompatibleProvider):
    """``x-portkey-provider: fake``: OpenAI's request and answer shape, two models."""

    name = "fake"
    default_base_url = "https://fake-provider.invalid/v1"
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model="fake-image",
        models=MODELS,
        edit_models={"fake-image": msgspec.structs.replace(MODELS["fake-image"], input_images=4, mask=True),
                     "fake-hd": msgspec.structs.replace(MODELS["fake-hd"], input_images=16),
                     # Inpainting with a black-and-white mask, white where the image changes.
                     "fake-fill": ModelCapabilities(sizes=("1024x1024",), mask=True, needs_mask=True,
                                                    mask_edits="white")},
        default_edit_model="fake-image",
        parameters=frozenset({"prompt", "model", "n", "size", "quality", "style", "response_format", "user"}),
        passes_unknown_parameters=True,
    )
    prices = PRICES


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

    upstream.on("POST", f"{prefix}/images/edits", _edit_handler(upstream, prefix, image))
    return upstream.on("POST", f"{prefix}/images/generations", handle)


def _edit_handler(upstream: FakeUpstream, prefix: str, image: bytes) -> Any:
    """Edits as OpenAI's multipart: a Bearer key, png ``image``/``image[]`` files (1 to 4, or 16
    for ``fake-hd``), a ``prompt``, a png ``mask`` (not for ``fake-hd``); ``n`` up to the model's
    per-call limit; b64_json items, or URLs for ``url``."""
    async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return error(401, "You didn't provide an API key.")
        if request.content_type != "multipart/form-data":
            return error(400, "Invalid content type; expected multipart/form-data")
        try:
            parts = await multipart_parts(rec)
        except ValueError as e:
            return error(400, f"Could not parse the multipart form: {e}")
        fields = {name: data.decode() for name, filename, data in parts if filename is None}
        images = [data for name, _, data in parts if name in ("image", "image[]")]
        model = fields.get("model", "fake-image")
        if model == "fake-fill":
            return _fill(parts, image)
        caps = MODELS.get(model)
        if caps is None:
            return error(404, f"The model '{model}' does not exist.", code="model_not_found")
        most = 16 if model == "fake-hd" else 4
        if not 1 <= len(images) <= most:
            return error(400, f"Send 1 to {most} images in 'image'.", "image", "invalid_value")
        if model == "fake-hd" and any(name == "mask" for name, _, _ in parts):
            return error(400, "fake-hd takes no mask.", "mask", "invalid_value")
        if not all(d.startswith(b"\x89PNG") for name, _, d in parts if name in ("image", "image[]", "mask")):
            return error(400, "Images must be PNG.", "image", "invalid_image_format")
        if "prompt" not in fields:
            return error(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
        n = int(fields.get("n", "1"))
        if not 1 <= n <= caps.max_n:
            return error(400, f"Invalid 'n': must be between 1 and {caps.max_n}.", "n", "invalid_value")
        url = fields.get("response_format") == "url"
        data = [{"url": f"{upstream.url}{prefix}/files/image.png"} if url else
                {"b64_json": base64.b64encode(image).decode()} for _ in range(n)]
        return web.json_response({"created": int(time.time()), "data": data}, headers={"x-request-id": "req_fake"})

    return handle


def _fill(parts: list[Any], image: bytes) -> web.Response:
    """``fake-fill``: one image and a mask that is a black-and-white PNG without transparency."""
    masks = [data for name, _, data in parts if name == "mask"]
    if len(masks) != 1:
        return error(400, "fake-fill needs one 'mask'.", "mask", "invalid_value")
    with Image.open(io.BytesIO(masks[0])) as mask:
        if mask.mode != "L" or sum(mask.histogram()[1:255]):
            return error(400, "The mask must be black and white (white where the image changes).", "mask",
                         "invalid_value")
    return web.json_response({"created": int(time.time()), "data": [{"b64_json": base64.b64encode(image).decode()}]})


async def multipart_parts(rec: Recorded) -> list[tuple[str, str | None, bytes]]:
    """``(name, filename, bytes)`` per part of a multipart body the fake received."""
    return [(p.name, p.filename, p.data) for p in await rec.form()]


def _serve(data: bytes) -> Any:
    async def serve(request: web.Request, rec: Recorded) -> web.StreamResponse:
        return web.Response(body=data, content_type="image/png")

    return serve
