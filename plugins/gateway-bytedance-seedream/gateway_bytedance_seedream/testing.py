"""A fake of the Ark images API (BytePlus ModelArk, Volcengine Ark) that checks Seedream requests
as the docs describe them.

``install(upstream)`` answers ``POST {prefix}/images/generations`` on a
:class:`~gateway.testing.FakeUpstream` (``prefix`` ``/api/v3`` by default; install it twice, at
two prefixes, for two regions):

- the key as ``Authorization: Bearer <key>`` (401 ``AuthenticationError`` otherwise);
- JSON with ``model`` and ``prompt`` (400 ``MissingParameter``); a field the API does not document
  is a 400 ``InvalidParameter``, and so are ``seed``, ``guidance_scale`` (legacy 3.0 models only)
  and ``output_format`` (5.0 only) on the models that do not take them;
- ``model``: the platform's IDs (``seedream-4-5-251128`` or ``dola-seedream-...`` on BytePlus,
  ``doubao-seedream-4-5-251128`` on Volcengine) of the 4.0, 4.5 and 5.0 families, or an ``ep-...`` endpoint; else a 404
  ``InvalidEndpointOrModel.NotFound``;
- ``size``: one of the model's tiers (``1K``/``2K``/``4K`` by model) or ``WIDTHxHEIGHT`` within its
  total-pixel range and between 1:16 and 16:1 (:data:`LIMITS`); else a 400 naming ``size``;
- ``image``: a URL or data URI (``data:image/<format>;base64,``), or a list of 1 to 14;
  ``sequential_image_generation`` ``auto``/``disabled``, ``max_images`` 1-15 with the reference
  images 15 at most; ``response_format`` ``url``/``b64_json``; ``watermark`` a boolean;
- a prompt containing :data:`REFUSED_PROMPT` is refused with ``InputTextSensitiveContentDetected``,
  one containing :data:`REFUSED_OUTPUT` with ``OutputImageSensitiveContentDetected`` (a 400; in a
  group generation the first image's item carries that error and the others are made).

Answers: ``{"model", "created", "data": [{"url"|"b64_json", "size"}], "usage": {"generated_images",
"output_tokens", "total_tokens"}}``; ``url`` items are links on the fake (with a TOS-style
signature query) that serve the image.  Errors: ``{"error": {"code", "message", "param", "type"}}``.

Sources: docs.byteplus.com ModelArk (image generation API, "Error codes" 1299023), the
byteplus-python-sdk-v2 ``byteplussdkarkruntime`` ``images.generate``.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import re
import time
from fnmatch import fnmatchcase
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import make_png

__all__ = ["FIELDS", "GENERATIONS", "KEY", "LIMITS", "REFUSED_OUTPUT", "REFUSED_PROMPT", "SeedreamFake",
           "data_uri_bytes", "error", "install"]

KEY = "ark-test-key"
GENERATIONS = "/api/v3/images/generations"
REFUSED_PROMPT = "forbidden subject"
REFUSED_OUTPUT = "unsafe output"
#: Body fields of ``POST /images/generations`` (the Ark SDK's ``images.generate``).
FIELDS = frozenset({"model", "prompt", "image", "size", "seed", "guidance_scale", "watermark", "optimize_prompt",
                    "optimize_prompt_options", "sequential_image_generation", "sequential_image_generation_options",
                    "response_format", "output_format", "stream", "tools", "layer_decomposition"})
#: family pattern -> (tiers, min pixels, max pixels, fields only this family takes).
LIMITS: dict[str, tuple[frozenset[str], int, int, frozenset[str]]] = {
    "seedream-5-0-*": (frozenset({"2K", "3K"}), 2560 * 1440, 10404496, frozenset({"output_format"})),
    "seedream-4-5-*": (frozenset({"2K", "4K"}), 2560 * 1440, 4096 * 4096, frozenset()),
    "seedream-4-0-*": (frozenset({"1K", "2K", "4K"}), 1280 * 720, 4096 * 4096, frozenset()),
}
_LEGACY_ONLY = frozenset({"seed", "guidance_scale"})
_FAMILY_ONLY = frozenset({"output_format"})
_SIZE = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")
_DATA_URI = re.compile(r"data:image/(jpeg|jpg|png|webp|bmp|tiff|gif|heic|heif);base64,(.*)", re.S)


def error(status: int, code: str, message: str, param: str = "") -> web.Response:
    """Ark's error body."""
    kind = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 429: "TooManyRequests"}.get(status, "Error")
    return web.json_response({"error": {"code": code, "message": f"{message} Request ID: 0217-fake",
                                        "param": param, "type": kind}}, status=status)


def _invalid(param: str, why: str) -> web.Response:
    return error(400, "InvalidParameter", f"The parameter `{param}` specified in the request is not valid: {why}.",
                 param)


class SeedreamFake:
    """One platform's fake (``byteplus`` or ``volcengine``): its state is the images it made, in order."""

    def __init__(self, upstream: FakeUpstream, key: str, platform: str) -> None:
        self.upstream = upstream
        self.key = key
        self.platform = platform
        self.served: list[bytes] = []
        self._counter = itertools.count(1)

    async def handle(self, request: web.Request, rec: Recorded) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return error(401, "AuthenticationError", "The API key or AK/SK in the request is missing or invalid.")
        if request.content_type != "application/json":
            return _invalid("Content-Type", "expected application/json")
        try:
            body = rec.json()
        except msgspec.DecodeError:
            return _invalid("body", "not JSON")
        if not isinstance(body, dict):
            return _invalid("body", "not a JSON object")
        for name in ("model", "prompt"):
            if not isinstance(body.get(name), str) or not body[name]:
                return error(400, "MissingParameter", "The request failed because it is missing one or multiple "
                                                      f"required parameters: `{name}`.", name)
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return _invalid(unknown[0], "unknown parameter")
        limits = self._limits(body["model"])
        if limits is None:
            return error(404, "InvalidEndpointOrModel.NotFound", f"The model or endpoint {body['model']} does not "
                                                                 "exist or you do not have access to it.")
        refused = self._check(body, limits)
        if refused is not None:
            return refused
        prompt = body["prompt"]
        if REFUSED_PROMPT in prompt:
            return error(400, "InputTextSensitiveContentDetected",
                         "The request failed because the input text may contain sensitive information.")
        group = body.get("sequential_image_generation") == "auto"
        if REFUSED_OUTPUT in prompt and not group:
            return error(400, "OutputImageSensitiveContentDetected",
                         "The request failed because the output image may contain sensitive information.")
        return self._answer(body, group)

    def _limits(self, model: str) -> tuple[frozenset[str], int, int, frozenset[str]] | None:
        if model.startswith("ep-"):  # an inference endpoint: the widest model's limits
            return LIMITS["seedream-4-0-*"]
        # Volcengine's IDs are `doubao-seedream-...`; BytePlus's `seedream-...` (`dola-seedream-...` for the newest).
        if self.platform == "volcengine":
            if not model.startswith("doubao-"):
                return None
            bare = model.removeprefix("doubao-")
        else:
            bare = model.removeprefix("dola-")
        for pattern, limits in LIMITS.items():
            if fnmatchcase(bare, pattern):
                return limits
        return None

    def _check(self, body: dict[str, Any], limits: tuple[frozenset[str], int, int, frozenset[str]]) \
            -> web.Response | None:
        tiers, lo, hi, own = limits
        unsupported = sorted(set(body) & (_LEGACY_ONLY | _FAMILY_ONLY) - own)
        if unsupported:
            return _invalid(unsupported[0], f"not supported by model {body['model']}")
        size = body.get("size", "2048x2048")
        if not isinstance(size, str):
            return _invalid("size", "expected a string")
        if size not in tiers:
            match = _SIZE.fullmatch(size)
            if match is None:
                return _invalid("size", f"expected one of {sorted(tiers)} or WIDTHxHEIGHT")
            w, h = int(match.group(1)), int(match.group(2))
            if not lo <= w * h <= hi or not 1 / 16 <= w / h <= 16:
                return _invalid("size", f"total pixels must be in [{lo}, {hi}] and the aspect ratio in [1/16, 16]")
        if body.get("response_format", "url") not in ("url", "b64_json"):
            return _invalid("response_format", "expected url or b64_json")
        if "watermark" in body and not isinstance(body["watermark"], bool):
            return _invalid("watermark", "expected a boolean")
        images = body.get("image", [])
        images = [images] if isinstance(images, str) else images
        if not isinstance(images, list) or len(images) > 14 or ("image" in body and not images):
            return _invalid("image", "expected an image URL or a list of 1 to 14")
        for url in images:
            if not isinstance(url, str) or not (url.startswith(("https://", "http://")) or _valid_data_uri(url)):
                return _invalid("image", "expected an http(s) URL or data:image/<format>;base64,<data>")
        if body.get("sequential_image_generation", "disabled") not in ("auto", "disabled"):
            return _invalid("sequential_image_generation", "expected auto or disabled")
        options = body.get("sequential_image_generation_options", {})
        if not isinstance(options, dict):
            return _invalid("sequential_image_generation_options", "expected an object")
        # Only a group generation makes more than one image: then input + generated <= 15.
        most = options.get("max_images", 15 - len(images))
        group = body.get("sequential_image_generation") == "auto"
        if not isinstance(most, int) or not 1 <= most <= 15 or (group and most + len(images) > 15):
            return _invalid("sequential_image_generation_options.max_images",
                            "expected 1 to 15, with the reference images 15 at most")
        return None

    def _answer(self, body: dict[str, Any], group: bool) -> web.Response:
        count = 1
        if group:
            options = body.get("sequential_image_generation_options", {})
            count = options.get("max_images", 15 - len(_as_list(body.get("image", []))))
        size = body.get("size", "2048x2048")
        shown = size if _SIZE.fullmatch(size) else "2048x2048"
        w, h = (int(x) for x in shown.split("x"))
        data: list[dict[str, Any]] = []
        for i in range(count):
            if i == 0 and REFUSED_OUTPUT in body["prompt"]:
                data.append({"error": {"code": "OutputImageSensitiveContentDetected",
                                       "message": "The request failed because the output image may contain "
                                                  "sensitive information."}})
                continue
            png = make_png(next(self._counter))
            self.served.append(png)
            if body.get("response_format", "url") == "b64_json":
                data.append({"b64_json": base64.b64encode(png).decode(), "size": shown})
            else:
                path = f"/ark-content-generation/{body['model']}/{len(self.served)}_{i}.jpeg"
                self.upstream.on("GET", path, Reply(body=png, content_type="image/png"))
                data.append({"url": f"{self.upstream.url}{path}?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Expires=86400",
                             "size": shown})
        made = sum(1 for item in data if "error" not in item)
        tokens = made * (w * h // 256)
        return web.json_response({"model": body["model"], "created": int(time.time()), "data": data,
                                  "usage": {"generated_images": made, "output_tokens": tokens,
                                            "total_tokens": tokens}})


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _valid_data_uri(uri: str) -> bool:
    try:
        data_uri_bytes(uri)
    except ValueError:
        return False
    return True


def data_uri_bytes(uri: str) -> bytes:
    """What a ``data:image/<format>;base64,...`` URI carries (``ValueError`` if it is not one)."""
    match = _DATA_URI.fullmatch(uri)
    if match is None:
        raise ValueError("not a data:image/<format>;base64 URI")
    try:
        return base64.b64decode(match.group(2), validate=True)
    except binascii.Error:
        raise ValueError("not valid base64") from None


def install(fake_upstream: FakeUpstream, *, key: str = KEY, prefix: str = "/api/v3",
            platform: str = "byteplus") -> SeedreamFake:
    """Serve the Ark images API of ``platform`` (``byteplus`` or ``volcengine``) on ``fake_upstream``
    under ``prefix``, accepting ``key``."""
    fake = SeedreamFake(fake_upstream, key, platform)
    fake_upstream.on("POST", f"{prefix}/images/generations", fake.handle)
    return fake
