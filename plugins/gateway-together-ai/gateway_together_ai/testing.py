"""A fake of Together AI's images API that checks requests as Together documents them.

``install(upstream)`` answers ``POST /v1/images/generations`` on a
:class:`~gateway.testing.FakeUpstream`:

- the key as ``Authorization: Bearer <key>`` (401 ``invalid_api_key`` for any
  other key than ``key``, default :data:`KEY`);
- a JSON body (``Content-Type: application/json``) with ``prompt`` and ``model``;
  a field Together does not document is a 400;
- ``width``/``height`` within the model's documented range and multiple, ``n``
  up to the model's per-call limit (:data:`LIMITS`); a model not listed is a 404;
- ``response_format`` ``base64`` (the default) answers ``b64_json``; ``url``
  answers a URL on the fake that serves the PNG, as Together's short links do.

Errors are OpenAI's shape: ``{"id", "error": {"message", "type", "param", "code"}}``.
"""
from __future__ import annotations

import base64
import itertools
from typing import Any

from aiohttp import web

from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import make_png

__all__ = ["FIELDS", "GENERATIONS", "KEY", "LIMITS", "error", "install", "make_handler"]

#: The key the fake accepts unless ``install`` is given another.
KEY = "tg-key"
#: Where generations go below the fake's URL (the provider's base URL ends in ``/v1``).
GENERATIONS = "/v1/images/generations"

_FLUX_OPEN = (64, 1792, 16, 4)
_FLUX_PRO = (256, 1440, 32, 1)
#: model -> (min side, max side, multiple, max n), as Together's model pages document them.
LIMITS: dict[str, tuple[int, int, int, int]] = {
    "black-forest-labs/FLUX.1-schnell": _FLUX_OPEN,
    "black-forest-labs/FLUX.1-schnell-Free": _FLUX_OPEN,
    "black-forest-labs/FLUX.1-dev": _FLUX_OPEN,
    "black-forest-labs/FLUX.1-pro": _FLUX_PRO,
    "black-forest-labs/FLUX.1.1-pro": _FLUX_PRO,
}
#: The body fields ``POST /v1/images/generations`` documents.
FIELDS = frozenset({
    "model", "prompt", "n", "width", "height", "steps", "seed", "negative_prompt", "response_format",
    "guidance_scale", "output_format", "image_url", "image_loras", "disable_safety_checker",
})


def error(status: int, message: str, type_: str = "invalid_request_error") -> web.Response:
    return web.json_response({"id": "err-1", "error": {"message": message, "type": type_, "param": None,
                                                       "code": None}}, status=status)


def make_handler(fake: FakeUpstream, key: str = KEY):  # noqa: ANN201
    """Together's ``POST /v1/images/generations``, checked as documented."""
    counter = itertools.count(1)

    async def handle(request: web.Request, rec: Recorded) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {key}":
            return error(401, "Invalid API key provided", "invalid_api_key")
        if request.content_type != "application/json":
            return error(400, "Content-Type must be application/json")
        body: dict[str, Any] = rec.json()
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or "model" not in body:
            return error(400, "prompt and model are required")
        unknown = set(body) - FIELDS
        if unknown:
            return error(400, f"Unknown parameters: {sorted(unknown)}")
        if body["model"] not in LIMITS:
            return error(404, f"Unable to access model {body['model']}", "model_not_found")
        lo, hi, mult, max_n = LIMITS[body["model"]]
        for side in ("width", "height"):
            v = body.get(side, 1024)
            if not lo <= v <= hi or v % mult:
                return error(400, f"{side} must be between {lo} and {hi} and a multiple of {mult}")
        if not 1 <= body.get("n", 1) <= max_n:
            return error(400, f"n must be between 1 and {max_n}")
        fmt = body.get("response_format", "base64")
        if fmt not in ("base64", "url"):
            return error(400, "response_format must be one of base64, url")
        data = []
        for i in range(body.get("n", 1)):
            png = make_png(next(counter))
            if fmt == "url":
                path = f"/shrt/{len(fake.requests)}-{i}"
                fake.on("GET", path, Reply(body=png, content_type="image/png"))
                data.append({"index": i, "url": fake.url + path, "type": "url"})
            else:
                data.append({"index": i, "b64_json": base64.b64encode(png).decode(), "type": "b64_json"})
        return web.json_response({"id": "img-1", "model": body["model"], "object": "list", "data": data})

    return handle


def install(fake_upstream: FakeUpstream, *, key: str = KEY, prefix: str = "/v1") -> FakeUpstream:
    """Serve Together's images API on ``fake_upstream`` under ``prefix``, accepting ``key``."""
    fake_upstream.on("POST", f"{prefix}/images/generations", make_handler(fake_upstream, key))
    return fake_upstream
