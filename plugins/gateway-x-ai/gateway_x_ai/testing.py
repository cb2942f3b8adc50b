"""A fake of xAI's images API that checks requests as xAI documents them.

``install(upstream)`` answers on a :class:`~gateway.testing.FakeUpstream`, under ``/v1``:

- ``POST /v1/images/generations`` and ``POST /v1/images/edits``, JSON only
  (``Content-Type: application/json``; xAI's edits are not OpenAI's multipart form);
- the key as ``Authorization: Bearer <key>``: any other is a 400 "Incorrect API key provided",
  the key shown masked, as xAI answers it;
- ``prompt`` required (422 otherwise); a field xAI does not document is a 400
  ``Argument not supported: <field>`` (``size`` and ``style`` among them), as xAI answers it;
- ``model`` of the grok-imagine family (else a 404); ``n`` 1-10; ``response_format`` ``url`` or
  ``b64_json`` (``url`` the default); ``aspect_ratio`` and ``resolution`` from the REST reference's
  enums; ``quality`` (``low``/``medium``) on grok-imagine-image-2.x only;
- edits: exactly one of ``image`` (an object with ``url``) or ``images`` (1 to 3 of them), each
  URL http(s) or a ``data:image/<jpeg|png|webp>;base64,`` URI of such an image;
  ``aspect_ratio`` refused on a one-image edit (xAI: "do not set this");
- a prompt containing :data:`REFUSED` is refused the way xAI's moderation does (400,
  "Generated image rejected by content moderation."); one containing :data:`WITHHELD` gets a 200
  whose image is withheld (``respect_moderation: false``, no URL).

Answers: ``{"data": [{"url"|"b64_json", "mime_type"}], "usage": {"cost_in_usd_ticks"}}`` (no
``created``, as the REST reference documents); errors ``{"code": "<status text>", "error":
"<message>"}``.  ``url`` answers point at the fake, which serves the PNG.  Only the synchronous
API is faked (no ``deferred``, ``output`` or ``storage_options``).

Sources: xAI's OpenAPI document (``spec/openapi.json`` in xai-org/xai-sdk-ts), docs.x.ai's image
generation and editing guides.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import re
from fnmatch import fnmatchcase
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import make_png

__all__ = ["ASPECT_RATIOS", "EDITS", "GENERATIONS", "KEY", "REFUSED", "WITHHELD", "XAIFake", "data_uri_bytes",
           "error", "install"]

KEY = "xai-test-key"
GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
#: Prompt words the fake's moderation refuses (400) or withholds the image for (200).
REFUSED = "forbidden subject"
WITHHELD = "withheld subject"
#: The REST reference's ``ImageAspectRatio`` and ``ImageResolution`` enums.
ASPECT_RATIOS = frozenset({"1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9",
                           "1:2", "2:1", "21:9", "5:2", "auto"})
RESOLUTIONS = frozenset({"1k", "2k", "1.5k"})
_GENERATION_FIELDS = frozenset({"prompt", "model", "n", "response_format", "aspect_ratio", "resolution", "quality",
                                "user"})
_EDIT_FIELDS = _GENERATION_FIELDS | {"image", "images"}
_DATA_URI = re.compile(r"data:image/(jpeg|jpg|png|webp);base64,(.*)", re.S)
_INVALID = "Client specified an invalid argument"


def error(status: int, message: str, code: str = _INVALID) -> web.Response:
    """xAI's error body."""
    return web.json_response({"code": code, "error": message}, status=status)


class XAIFake:
    """The fake's state: the images it made, in order."""

    def __init__(self, upstream: FakeUpstream, key: str) -> None:
        self.upstream = upstream
        self.key = key
        self.served: list[bytes] = []
        self._counter = itertools.count(1)

    async def generations(self, request: web.Request, rec: Recorded) -> web.Response:
        return self._handle(request, rec, _GENERATION_FIELDS, edit=False)

    async def edits(self, request: web.Request, rec: Recorded) -> web.Response:
        return self._handle(request, rec, _EDIT_FIELDS, edit=True)

    def _handle(self, request: web.Request, rec: Recorded, fields: frozenset[str], *, edit: bool) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.key}":
            given = auth.removeprefix("Bearer ")
            shown = f"{given[:2]}***{given[-2:]}" if len(given) > 4 else "***"
            return error(400, f"Incorrect API key provided: {shown}. You can obtain an API key from "
                              "https://console.x.ai.")
        if request.content_type != "application/json":
            return error(415, "Expected request with `Content-Type: application/json`")
        try:
            body = rec.json()
        except msgspec.DecodeError:
            return error(400, "Failed to parse the request body as JSON")
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return error(422, "Failed to deserialize the JSON body into the target type: missing field `prompt`")
        refused = self._check(body, fields, edit=edit)
        if refused is not None:
            return refused
        if REFUSED in body["prompt"]:
            return web.json_response({"code": _INVALID, "error": "Generated image rejected by content moderation.",
                                      "usage": {"cost_in_usd_ticks": 200000000}}, status=400)
        return self._answer(body)

    def _check(self, body: dict[str, Any], fields: frozenset[str], *, edit: bool) -> web.Response | None:
        for name in body:
            if name not in fields:
                return error(400, f"Argument not supported: {name}")
        model = body.get("model", "grok-imagine-image")
        if not isinstance(model, str) or not fnmatchcase(model, "grok-imagine-image*"):
            return error(404, f"The model {model} does not exist or your team does not have access to it.",
                         "Some requested entity was not found")
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
            return error(400, f"Invalid n: {n!r}; must be between 1 and 10")
        if body.get("response_format", "url") not in ("url", "b64_json"):
            return error(400, f"Invalid response_format: {body['response_format']!r}")
        if "aspect_ratio" in body and body["aspect_ratio"] not in ASPECT_RATIOS:
            return error(422, f"Invalid aspect_ratio: {body['aspect_ratio']!r}")
        if "resolution" in body and body["resolution"] not in RESOLUTIONS:
            return error(422, f"Invalid resolution: {body['resolution']!r}")
        if "quality" in body:
            if not fnmatchcase(model, "grok-imagine-image-2*"):
                return error(400, "Argument not supported: quality")
            if body["quality"] not in ("low", "medium"):
                return error(400, f"Invalid quality: {body['quality']!r}")
        if "user" in body and not isinstance(body["user"], str):
            return error(422, "Invalid user: expected a string")
        return self._check_sources(body) if edit else None

    def _check_sources(self, body: dict[str, Any]) -> web.Response | None:
        if ("image" in body) == ("images" in body):
            return error(400, "Exactly one of `image` or `images` must be provided")
        if "image" in body:
            sources = [body["image"]]
            if "aspect_ratio" in body:
                return error(400, "`aspect_ratio` is only supported for editing with multiple images; a single "
                                  "image edit keeps the input image's aspect ratio")
        else:
            sources = body["images"]
            if not isinstance(sources, list) or not 1 <= len(sources) <= 3:
                return error(400, "`images` must hold 1 to 3 images")
        for source in sources:
            url = source.get("url") if isinstance(source, dict) else None
            if not isinstance(url, str) or set(source) - {"url", "file_id"}:
                return error(422, "Each image must be an object with a `url`")
            if not url.startswith(("https://", "http://")):
                try:
                    data_uri_bytes(url)
                except ValueError as e:
                    return error(400, f"Invalid image url: {e}")
        return None

    def _answer(self, body: dict[str, Any]) -> web.Response:
        withheld = WITHHELD in body["prompt"]
        data = []
        for i in range(body.get("n", 1)):
            png = make_png(next(self._counter))
            self.served.append(png)
            if withheld:
                data.append({"url": None, "respect_moderation": False})
            elif body.get("response_format", "url") == "b64_json":
                data.append({"b64_json": base64.b64encode(png).decode(), "mime_type": "image/png"})
            else:
                path = f"/xai-imgen/xai-tmp-imgen-{len(self.served)}-{i}.png"
                self.upstream.on("GET", path, Reply(body=png, content_type="image/png"))
                data.append({"url": self.upstream.url + path, "mime_type": "image/png"})
        return web.json_response({"data": data, "usage": {"cost_in_usd_ticks": 200000000 * len(data)}})


def data_uri_bytes(uri: str) -> bytes:
    """What a ``data:image/<type>;base64,...`` URI carries (``ValueError`` if it is not an image one)."""
    match = _DATA_URI.fullmatch(uri)
    if match is None:
        raise ValueError("not a data:image/(jpeg|png|webp);base64 URI")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except binascii.Error:
        raise ValueError("not valid base64") from None
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if not (data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or webp):
        raise ValueError("not a JPEG, PNG or WebP image")
    return data


def install(fake_upstream: FakeUpstream, *, key: str = KEY, prefix: str = "/v1") -> XAIFake:
    """Serve xAI's images API on ``fake_upstream`` under ``prefix``, accepting ``key``."""
    fake = XAIFake(fake_upstream, key)
    fake_upstream.on("POST", f"{prefix}/images/generations", fake.generations)
    fake_upstream.on("POST", f"{prefix}/images/edits", fake.edits)
    return fake
