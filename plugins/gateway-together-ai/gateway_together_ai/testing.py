"""A fake of Together AI's images API that checks requests as Together documents them.

``install(upstream)`` answers ``POST /v1/images/generations`` on a
:class:`~gateway.testing.FakeUpstream`:

- the key as ``Authorization: Bearer <key>`` (401 ``invalid_api_key`` for any
  other key than ``key``, default :data:`KEY`);
- a JSON body (``Content-Type: application/json``) with ``prompt`` and ``model``;
  a field Together does not document is a 400;
- ``width``/``height`` within the model's documented range and multiple, ``n``
  up to the model's per-call limit (:data:`LIMITS`); a model not listed is a 404;
- an input image only for the models documented to take one, in their field
  (:data:`IMAGE_FIELDS`): ``image_url`` one URL, ``reference_images`` a non-empty
  list of them; each an http(s) URL or a data URI (``data:<type>;base64,...``) of a
  jpeg, png, gif or webp image, else a 400 naming the field (Together documents
  "URL"; whether it takes data URIs is not documented, the fake takes them);
- ``response_format`` ``base64`` (the default) answers ``b64_json``; ``url``
  answers a URL on the fake that serves the PNG, as Together's short links do.

Errors are OpenAI's shape: ``{"id", "error": {"message", "type", "param", "code"}}``.
:func:`data_uri_bytes` reads back what a data URI the fake received carries.

Sources: https://docs.together.ai/reference/post-images-generations and
https://docs.together.ai/docs/inference/images/reference-images.
"""
from __future__ import annotations

import base64
import binascii
import itertools
from typing import Any

from aiohttp import web

from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import make_png

__all__ = ["FIELDS", "GENERATIONS", "IMAGE_FIELDS", "KEY", "LIMITS", "data_uri_bytes", "error", "install",
           "make_handler"]

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
#: Models that take an input image, and in which fields (the reference-images page): no size
#: limits are documented for them, ``n`` up to 4 (the parameters page).
IMAGE_FIELDS: dict[str, frozenset[str]] = {
    "black-forest-labs/FLUX.1-kontext-pro": frozenset({"image_url"}),
    "black-forest-labs/FLUX.1-kontext-max": frozenset({"image_url"}),
    "black-forest-labs/FLUX.2-pro": frozenset({"image_url", "reference_images"}),
    "black-forest-labs/FLUX.2-flex": frozenset({"image_url", "reference_images"}),
    "black-forest-labs/FLUX.2-dev": frozenset({"reference_images"}),
}
#: The body fields ``POST /v1/images/generations`` documents (the API reference, and the
#: parameters page for ``aspect_ratio`` and ``reference_images``).
FIELDS = frozenset({
    "model", "prompt", "n", "width", "height", "steps", "seed", "negative_prompt", "response_format",
    "guidance_scale", "output_format", "image_url", "image_loras", "disable_safety_checker", "aspect_ratio",
    "reference_images",
})
#: The image models' sides are not documented: any positive side; ``n`` 1-4 as for every model.
_IMAGE_MODEL_LIMITS = (1, 1 << 16, 1, 4)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


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
        model = body["model"]
        if model not in LIMITS and model not in IMAGE_FIELDS:
            return error(404, f"Unable to access model {model}", "model_not_found")
        refused = _check_images(body, IMAGE_FIELDS.get(model, frozenset()))
        if refused is not None:
            return refused
        lo, hi, mult, max_n = LIMITS.get(model, _IMAGE_MODEL_LIMITS)
        for side in ("width", "height"):
            v = body.get(side, 1024)
            if not isinstance(v, int) or not lo <= v <= hi or v % mult:
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


def _check_images(body: dict[str, Any], fields: frozenset[str]) -> web.Response | None:
    """The input image fields: only where the model takes them, each a URL or an image data URI."""
    for field in ("image_url", "reference_images"):
        if field not in body:
            continue
        if field not in fields:
            return error(400, f"Model {body['model']} does not support `{field}`")
        value = body[field]
        urls = value if field == "reference_images" else [value]
        if not isinstance(urls, list) or not urls:
            return error(400, f"`{field}` must be a non-empty array of image URLs")
        for url in urls:
            if not isinstance(url, str) or not _image_url(url):
                return error(400, f"`{field}` must be an image URL (http, https, or an image data URI)")
    return None


def _image_url(url: str) -> bool:
    if url.startswith(("https://", "http://")):
        return True
    try:
        data = data_uri_bytes(url)
    except ValueError:
        return False
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def data_uri_bytes(uri: str) -> bytes:
    """What a ``data:<type>;base64,...`` URI carries (``ValueError`` if it is not one)."""
    header, comma, payload = uri.partition(",")
    if not uri.startswith("data:") or not comma or not header.endswith(";base64"):
        raise ValueError("not a base64 data URI")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise ValueError("not valid base64") from None


def install(fake_upstream: FakeUpstream, *, key: str = KEY, prefix: str = "/v1") -> FakeUpstream:
    """Serve Together's images API on ``fake_upstream`` under ``prefix``, accepting ``key``."""
    fake_upstream.on("POST", f"{prefix}/images/generations", make_handler(fake_upstream, key))
    return fake_upstream
