"""A fake of Segmind's serverless API that checks requests as Segmind documents them.

``install(upstream)`` answers ``POST /v1/<model>`` on a
:class:`~gateway.testing.FakeUpstream` for the models in :data:`FAKE_MODELS`,
each with its own documented fields and limits (segmind.com/models/<model>/api):

- the key in ``x-api-key`` (401 without one; 406 "Not enough credits" for the
  key :data:`NO_CREDITS_KEY`);
- a JSON object body with a ``prompt``; a field of another model's dialect, or
  a value outside the documented range, is a 422 naming the field;
- ``base64: true`` answers ``{"image": <base64>}`` (a list when ``samples`` > 1),
  otherwise the image itself as ``image/jpeg`` (Flux.1 Schnell takes no
  ``base64`` and always answers so); ``x-remaining-credits`` on every answer;
- a prompt containing ``nsfw`` is refused with ``{"error": "NSFW content
  detected..."}`` (Segmind documents no refusal shape; this is the assumption
  the provider's message check is tested against).
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Recorded

__all__ = ["FAKE_MODELS", "JPEG_1X1", "NO_CREDITS_KEY", "install", "make_handler"]

#: A 1x1 grey JPEG (Segmind's models answer JPEG).
JPEG_1X1 = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEAYABgAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5"
    "PTgyPC4zNDL/wAALCAABAAEBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQR"
    "BRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4"
    "eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEB"
    "AAA/APn+iiigD//Z"
)
NO_CREDITS_KEY = "SG_no_credits"

_SD_COMMON = {"negative_prompt", "scheduler", "num_inference_steps", "guidance_scale", "seed", "base64", "samples"}


def _range(lo: int, hi: int, multiple: int = 1) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi and v % multiple == 0


def _one_of(*allowed: Any) -> Callable[[Any], bool]:
    return lambda v: not isinstance(v, bool) and v in allowed


#: model -> {field: check}; fields not listed are a 422.
FAKE_MODELS: dict[str, dict[str, Callable[[Any], bool] | None]] = {
    "sdxl1.0-txt2img": {
        **dict.fromkeys(_SD_COMMON | {"style", "strength", "high_noise_fraction", "refiner"}),
        "img_width": _range(512, 2048, 8), "img_height": _range(512, 2048, 8),
        "samples": _range(1, 4), "num_inference_steps": _range(20, 100),
    },
    "ssd-1b": {
        **dict.fromkeys(_SD_COMMON),
        "img_width": _one_of(1024), "img_height": _one_of(1024), "samples": _range(1, 4),
        "num_inference_steps": _range(20, 100),
    },
    "tinysd1.5-txt2img": {
        **dict.fromkeys(_SD_COMMON),
        "img_width": _one_of(512, 768, 1024), "img_height": _one_of(512, 768, 1024), "samples": _range(1, 4),
    },
    "flux-schnell": {
        **dict.fromkeys({"seed", "sampler_name", "scheduler", "denoise"}),
        "width": _range(512, 2048, 8), "height": _range(512, 2048, 8), "steps": _range(1, 8),
        "samples": _range(1, 1),
    },
    "fast-flux-schnell": {
        **dict.fromkeys({"seed", "base64"}),
        "aspect_ratio": _one_of("1:1", "16:9", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"),
        "steps": _range(1, 8),
    },
    # A model the provider does not list: SD fields, no documented limits.
    "sd1.5-txt2img": {**dict.fromkeys(_SD_COMMON | {"strength"}), "img_width": None, "img_height": None},
}


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def make_handler(model: str, images: Callable[[int], list[bytes]] | None = None):  # noqa: ANN201
    """The handler of ``POST /v1/<model>``; ``images(n)`` makes the images an answer carries."""
    fields = FAKE_MODELS[model]

    async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
        key = request.headers.get("x-api-key")
        if not key:
            return error(401, "Unauthorized: x-api-key header missing")
        if key == NO_CREDITS_KEY:
            return error(406, "Not enough credits")
        if request.content_type != "application/json":
            return error(422, "Request body must be application/json")
        try:
            body = msgspec.json.decode(rec.body)
        except msgspec.DecodeError:
            return error(422, "Invalid JSON body")
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return error(422, "prompt: field required")
        for name, value in body.items():
            if name == "prompt":
                continue
            if name not in fields:
                return error(422, f"{name}: extra field not permitted for {model}")
            check = fields[name]
            if check is not None and not check(value):
                return error(422, f"{name}: value {value!r} is out of range for {model}")
        if "base64" in body and not isinstance(body["base64"], bool):
            return error(422, "base64: value is not a valid boolean")
        if "nsfw" in body["prompt"].lower():
            return error(400, "NSFW content detected. Please try again with a different prompt.")
        n = body.get("samples", 1)
        made = images(n) if images is not None else [JPEG_1X1] * n
        headers = {"x-remaining-credits": "9.5", "x-credits-consumed": "0.5"}
        if body.get("base64") is True and "base64" in fields:
            encoded = [base64.b64encode(img).decode() for img in made]
            return web.json_response({"image": encoded[0] if n == 1 else encoded, "status": "Success"},
                                     headers=headers)
        return web.Response(body=made[0], content_type="image/jpeg", headers=headers)

    return handle


def install(upstream: FakeUpstream, prefix: str = "/v1", **kw: Any) -> FakeUpstream:
    """Serve every model of :data:`FAKE_MODELS` on ``upstream`` under ``prefix``."""
    for model in FAKE_MODELS:
        upstream.on("POST", f"{prefix}/{model}", make_handler(model, **kw))
    return upstream
