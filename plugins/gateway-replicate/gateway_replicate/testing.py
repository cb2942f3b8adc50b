"""A fake of Replicate's predictions API that checks requests as Replicate documents them.

It follows the OpenAPI description of api.replicate.com/v1 (``predictions.create``,
``models.predictions.create``, ``predictions.get``, ``predictions.cancel``):

- every API call needs ``Authorization: Bearer <token>`` (401 problem document otherwise);
- ``Prefer`` must match ``wait`` or ``wait=N`` (N 1..60), ``Cancel-After`` a duration of 5 s or more;
- the body is JSON with ``input`` (and ``version`` on ``/predictions``); other top-level
  keys are a 422 listing ``invalid_fields``, as Replicate answers since 2024-05;
- ``input`` is checked against the model's documented schema (enums, ranges); a bad
  field is a 422 ``Input validation failed`` with ``detail`` and ``invalid_fields``;
- a file input (``format: uri``: FLUX Kontext's ``input_image``, nano-banana's and
  Seedream's ``image_input`` lists, FLUX Fill's ``image`` and ``mask``) takes a data URI
  (``data:<type>;base64,...``) of a jpeg, png, gif or webp image, or an http(s) URL; a URL
  of a file uploaded to this fake must name one not deleted.  A bad one is a 422 naming the
  field (Replicate validates the URI; a data URI that is not an image fails its prediction
  there, a 422 here so the test sees it at once).  A prediction keeps each file field's
  bytes as received (``FakePrediction.files``);
- ``POST /v1/files`` (multipart, the file in ``content`` with a file name) answers 201 with
  ``{"id", "name", "content_type", "size", "checksums", "urls": {"get"}, ...}``;
  ``DELETE /v1/files/{id}`` answers 204 (``ReplicateFake.files``, ``deleted``);
- a prediction finishes within the sync wait when ``steps`` is 0 and ``Prefer: wait``
  was sent, else after ``steps`` polls (at least one without ``Prefer``); its output
  files are served at ``/delivery/{id}/out-{i}.png`` like replicate.delivery (without a key),
  or answer ``gone`` (404, 410) when set, as once Replicate has deleted them after their hour.

``install(fake_upstream, steps=..., fail=..., never=...)`` serves the API on a
:class:`~gateway.testing.FakeUpstream` under ``/v1`` and returns the
:class:`ReplicateFake` (its ``predictions``, ``cancelled``, ``served``, ``files`` and ``deliveries()``).

Sources: the HTTP API reference (https://replicate.com/docs/reference/http) and each
model's input schema on replicate.com (``/{owner}/{name}/versions/{id}/api``).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import itertools
import re
import secrets
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import MultipartReader, StreamReader, web
from aiohttp.base_protocol import BaseProtocol

from gateway.testing import FakeUpstream, Recorded
from gateway.testing.provider_contract import make_png
from gateway_replicate.models import (
    FLUX_RATIOS, IDEOGRAM_V3_RESOLUTIONS, KONTEXT_DEV_RATIOS, KONTEXT_RATIOS, RECRAFT_SIZES, RECRAFT_STYLES,
    SD35_RATIOS, SDXL_VERSION, SEEDREAM_RATIOS, ULTRA_RATIOS,
)

__all__ = ["COMMUNITY_VERSION", "NSFW", "PROBLEM", "SCHEMAS", "FakeFile", "FakePrediction", "ReplicateFake",
           "form_parts", "install"]

PROBLEM = "application/problem+json"
NSFW = "All generated images contained NSFW content. Try running it again with a different prompt."
#: A community model's version the fake knows (generic inputs, one image unless ``num_outputs``).
COMMUNITY_VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
_PREFER = re.compile(r"wait(=([1-9]|[1-9][0-9]|60))?")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")
_TOP_LEVEL = {"input", "stream", "webhook", "webhook_events_filter"}

Field = tuple[Any, ...]
_FORMATS: Field = ("enum", ("webp", "jpg", "png"))
_QUALITY: Field = ("int", 0, 100)
_SEED: Field = ("int", None, None)
_FLUX_OPEN = {"aspect_ratio": ("enum", FLUX_RATIOS), "num_outputs": ("int", 1, 4), "seed": _SEED,
              "output_format": _FORMATS, "output_quality": _QUALITY, "disable_safety_checker": ("bool",),
              "go_fast": ("bool",), "megapixels": ("enum", ("1", "0.25"))}
_FLUX_PRO = {"aspect_ratio": ("enum", ("custom", "1:1", "16:9", "3:2", "2:3", "4:5", "5:4", "9:16", "3:4", "4:3")),
             "width": ("int", 256, 1440), "height": ("int", 256, 1440), "safety_tolerance": ("int", 1, 6),
             "seed": _SEED, "prompt_upsampling": ("bool",), "output_format": _FORMATS, "output_quality": _QUALITY}
_FILE: Field = ("file",)
_KONTEXT_API = {"input_image": _FILE, "aspect_ratio": ("enum", ("match_input_image", *KONTEXT_RATIOS)),
                "seed": _SEED, "output_format": ("enum", ("jpg", "png")), "safety_tolerance": ("int", 0, 6),
                "prompt_upsampling": ("bool",)}
_IDEOGRAM = {"resolution": ("enum", ("None", *IDEOGRAM_V3_RESOLUTIONS)),
             "aspect_ratio": ("enum", ("1:3", "3:1", "1:2", "2:1", "9:16", "16:9", "10:16", "16:10", "2:3", "3:2",
                                       "3:4", "4:3", "4:5", "5:4", "1:1")),
             "magic_prompt_option": ("enum", ("Auto", "On", "Off")),
             "style_type": ("enum", ("None", "Auto", "General", "Realistic", "Design")), "seed": _SEED}


class Schema(msgspec.Struct, frozen=True):
    """A model's documented inputs (besides ``prompt``) and output shape.  A field is
    ``("enum", values)``, ``("int"|"num", min, max)``, ``("bool",)``, ``("str",)``,
    ``("file",)`` (one file URI) or ``("files", max)`` (a list of them)."""

    fields: dict[str, Field]
    #: ``list`` (an array of file URLs) or ``string`` (one file URL).
    output: str
    #: Whether it is an official model (run by name, ``version: "hidden"``).
    official: bool = True
    #: Inputs besides ``prompt`` the model requires.
    required: tuple[str, ...] = ()


SCHEMAS: dict[str, Schema] = {
    "black-forest-labs/flux-schnell": Schema({**_FLUX_OPEN, "num_inference_steps": ("int", 1, 4)}, "list"),
    "black-forest-labs/flux-dev": Schema({**_FLUX_OPEN, "num_inference_steps": ("int", 1, 50),
                                          "guidance": ("num", 0, 10)}, "list"),
    "black-forest-labs/flux-pro": Schema({**_FLUX_PRO, "steps": ("int", 1, 50), "guidance": ("num", 2, 5),
                                          "interval": ("num", 1, 4)}, "string"),
    "black-forest-labs/flux-1.1-pro": Schema(_FLUX_PRO, "string"),
    "black-forest-labs/flux-1.1-pro-ultra": Schema(
        {"aspect_ratio": ("enum", ULTRA_RATIOS), "raw": ("bool",), "safety_tolerance": ("int", 1, 6),
         "output_format": ("enum", ("jpg", "png")), "seed": _SEED}, "string"),
    "stability-ai/stable-diffusion-3.5-large": Schema(
        {"aspect_ratio": ("enum", SD35_RATIOS), "cfg": ("num", 1, 10), "seed": _SEED,
         "output_format": _FORMATS}, "string"),
    "ideogram-ai/ideogram-v3-turbo": Schema(_IDEOGRAM, "string"),
    "ideogram-ai/ideogram-v3-balanced": Schema(_IDEOGRAM, "string"),
    "ideogram-ai/ideogram-v3-quality": Schema(_IDEOGRAM, "string"),
    "recraft-ai/recraft-v3": Schema(
        {"size": ("enum", RECRAFT_SIZES), "style": ("enum", RECRAFT_STYLES),
         "aspect_ratio": ("enum", ("Not set", "1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "1:2", "2:1",
                                   "7:5", "5:7", "4:5", "5:4", "3:5", "5:3"))}, "string"),
    "stability-ai/sdxl": Schema(
        {"width": ("int", 1, None), "height": ("int", 1, None), "num_outputs": ("int", 1, 4), "seed": _SEED,
         "negative_prompt": ("str",), "num_inference_steps": ("int", 1, 500), "guidance_scale": ("num", 1, 50)},
        "list", official=False),
    "black-forest-labs/flux-kontext-pro": Schema(_KONTEXT_API, "string"),
    "black-forest-labs/flux-kontext-max": Schema(_KONTEXT_API, "string"),
    "black-forest-labs/flux-kontext-dev": Schema(
        {"input_image": _FILE, "aspect_ratio": ("enum", ("match_input_image", *KONTEXT_DEV_RATIOS)),
         "num_inference_steps": ("int", 4, 50), "guidance": ("num", 0, 10), "seed": _SEED, "output_format": _FORMATS,
         "output_quality": _QUALITY, "disable_safety_checker": ("bool",), "go_fast": ("bool",)},
        "string", required=("input_image",)),
    "google/nano-banana": Schema({"image_input": ("files", None), "output_format": ("enum", ("jpg", "png"))},
                                 "string"),
    "bytedance/seedream-4": Schema(
        {"image_input": ("files", 10), "size": ("enum", ("1K", "2K", "4K", "custom")),
         "aspect_ratio": ("enum", ("match_input_image", *SEEDREAM_RATIOS)), "width": ("int", 1024, 4096),
         "height": ("int", 1024, 4096), "sequential_image_generation": ("enum", ("disabled", "auto")),
         "max_images": ("int", 1, 15), "enhance_prompt": ("bool",)}, "list"),
    "black-forest-labs/flux-fill-pro": Schema(
        {"image": _FILE, "mask": _FILE, "outpaint": ("str",), "seed": _SEED, "steps": ("int", 1, 50),
         "prompt_upsampling": ("bool",), "guidance": ("num", 2, 5), "safety_tolerance": ("int", 1, 6),
         "output_format": ("enum", ("jpg", "png"))}, "string", required=("image",)),
    "acme/pixel-art": Schema({"width": ("int", 64, 2048), "height": ("int", 64, 2048),
                              "num_outputs": ("int", 1, 8), "seed": _SEED}, "list", official=False),
}
VERSIONS = {SDXL_VERSION: "stability-ai/sdxl", COMMUNITY_VERSION: "acme/pixel-art"}


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    body = {"title": title, "detail": detail, "status": status, **extra}
    return web.Response(status=status, body=msgspec.json.encode(body), content_type=PROBLEM)


def invalid(fields: list[tuple[str, str, str]]) -> web.Response:
    """Replicate's 422 for bad input: ``(type, field, description)`` per problem."""
    detail = "".join(f"- {field}: {description}\n" for _, field, description in fields)
    return problem(422, "Input validation failed", detail,
                   invalid_fields=[{"type": t, "field": f, "description": d} for t, f, d in fields])


class FakePrediction(msgspec.Struct, kw_only=True):
    id: str
    model: str
    version: str
    input: dict[str, Any]
    status: str = "starting"
    output: Any = None
    error: str | None = None
    polls: int = 0
    #: Each file input's files as received, in order (None for a URL the fake does not host).
    files: dict[str, list[bytes | None]] = msgspec.field(default_factory=dict)


class FakeFile(msgspec.Struct, kw_only=True):
    """A file uploaded with ``POST /v1/files``."""

    id: str
    name: str
    content_type: str
    data: bytes
    deleted: bool = False


def install(upstream: FakeUpstream, *, steps: int = 0, fail: str | None = None, never: bool = False,
            images: Callable[[int], list[bytes]] | None = None) -> ReplicateFake:
    """Serve Replicate's predictions API on ``upstream`` (see :class:`ReplicateFake` for the options)."""
    return ReplicateFake(upstream, steps=steps, fail=fail, never=never, images=images).install()


class ReplicateFake:
    """Replicate's predictions API on a :class:`FakeUpstream` (paths under ``/v1``)."""

    def __init__(self, upstream: FakeUpstream, *, steps: int = 0, fail: str | None = None, never: bool = False,
                 images: Callable[[int], list[bytes]] | None = None) -> None:
        self.upstream = upstream
        #: Polls a prediction stays running (0: done within the sync wait).
        self.steps = steps
        #: The error a prediction fails with, if it should fail.
        self.fail = fail
        #: Predictions never finish.
        self.never = never
        counter = itertools.count(1)
        self.images = images or (lambda n: [make_png(next(counter)) for _ in range(n)])
        self.predictions: dict[str, FakePrediction] = {}
        #: Ids of predictions cancelled through the API.
        self.cancelled: list[str] = []
        #: Each succeeded prediction's images, in completion order.
        self.served: list[list[bytes]] = []
        #: Files uploaded with ``POST /v1/files``, by id, in upload order.
        self.files: dict[str, FakeFile] = {}
        #: Ids of files deleted through the API.
        self.deleted: list[str] = []
        #: The status output files answer instead of their image (404, 410: deleted), if set.
        self.gone: int | None = None

    def install(self) -> ReplicateFake:
        for name, schema in SCHEMAS.items():
            if schema.official:
                self.upstream.on("POST", f"/v1/models/{name}/predictions", self._creator(name))
        self.upstream.on("POST", "/v1/predictions", self._creator(None))
        self.upstream.on("POST", "/v1/files", self._upload)
        return self

    # -- files -----------------------------------------------------------------------
    async def _upload(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if not _authorized(request):
            return _unauthenticated()
        if request.content_type != "multipart/form-data":
            return problem(415, "Unsupported media type", "Content-Type must be multipart/form-data")
        try:
            parts = await form_parts(rec)
        except ValueError as e:
            return problem(400, "Bad request", f"Malformed multipart body: {e}")
        content = next((p for p in parts if p[0] == "content"), None)
        if content is None or content[1] is None:
            return invalid([("required", "content", "content is required: the file, with a file name")])
        _, filename, content_type, data = content
        file = FakeFile(id=secrets.token_hex(12), name=filename or "", data=data,
                        content_type=content_type or "application/octet-stream")
        self.files[file.id] = file
        self.upstream.on("DELETE", f"/v1/files/{file.id}", self._deleter(file))
        doc = {"id": file.id, "name": file.name, "content_type": file.content_type, "size": len(data),
               "checksums": {"sha256": hashlib.sha256(data).hexdigest()}, "metadata": {},
               "created_at": "2025-01-01T00:00:00.000Z", "expires_at": "2025-01-02T00:00:00.000Z",
               "urls": {"get": self._file_url(file.id)}}
        return web.json_response(doc, status=201)

    def _deleter(self, file: FakeFile) -> Callable[[web.Request, Recorded], Any]:
        async def delete(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if not _authorized(request):
                return _unauthenticated()
            if file.deleted:
                return problem(404, "Not found", "File not found")
            file.deleted = True
            self.deleted.append(file.id)
            return web.Response(status=204)

        return delete

    def _file_url(self, file_id: str) -> str:
        return f"{self.upstream.url}/v1/files/{file_id}"

    def _resolve(self, uri: str) -> bytes | None:
        """A file input's bytes: a data URI's, or a file uploaded here; None for another
        http(s) URL (taken, not fetched).  ``ValueError`` says what is wrong."""
        if uri.startswith("data:"):
            header, comma, payload = uri.partition(",")
            if not comma or not header.endswith(";base64"):
                raise ValueError("is not a base64 data URI")
            try:
                data = base64.b64decode(payload, validate=True)
            except binascii.Error:
                raise ValueError("is not valid base64") from None
            if not _is_image(data):
                raise ValueError("must be jpeg, png, gif, or webp")
            return data
        if uri.startswith(self._file_url("")):
            file = self.files.get(uri.removeprefix(self._file_url("")))
            if file is None or file.deleted:
                raise ValueError("names no file (not uploaded, or deleted)")
            return file.data
        if uri.startswith(("https://", "http://")):
            return None
        raise ValueError("Does not match format 'uri'")

    def deliveries(self) -> list[Recorded]:
        """The requests for output files (``/delivery/...``), in arrival order."""
        return [r for r in self.upstream.requests if r.path.startswith("/delivery/")]

    # -- create ----------------------------------------------------------------------
    def _creator(self, official: str | None) -> Callable[[web.Request, Recorded], Any]:
        async def create(request: web.Request, rec: Recorded) -> web.StreamResponse:
            refused = _check_headers(request)
            if refused is not None:
                return refused
            try:
                body = msgspec.json.decode(rec.body)
            except msgspec.DecodeError:
                return problem(400, "Invalid JSON", "The request body is not valid JSON")
            if not isinstance(body, dict):
                return problem(400, "Invalid JSON", "The request body must be a JSON object")
            allowed = _TOP_LEVEL if official else _TOP_LEVEL | {"version"}
            problems = [("additional_property_not_allowed", "", f"Additional property {k} is not allowed")
                        for k in body if k not in allowed]
            if not isinstance(body.get("input"), dict):
                problems.insert(0, ("required", "", "input is required"))
            if official is None and not isinstance(body.get("version"), str):
                problems.insert(0, ("required", "", "version is required"))
            if problems:
                return invalid(problems)
            model, version = official, "hidden"
            if official is None:
                version = body["version"].rpartition(":")[2]
                model = VERSIONS.get(version)
                if model is None:
                    return problem(422, "Invalid version or not permitted",
                                   "The specified version does not exist (or perhaps you don't have permission "
                                   "to use it?)")
            assert model is not None
            files: dict[str, list[bytes | None]] = {}
            bad = _check_input(SCHEMAS[model], body["input"], self._resolve, files)
            if bad:
                return invalid(bad)
            pred = FakePrediction(id=secrets.token_hex(13), model=model, version=version, input=body["input"],
                                  files=files)
            self.predictions[pred.id] = pred
            self.upstream.on("GET", f"/v1/predictions/{pred.id}", self._getter(pred))
            self.upstream.on("POST", f"/v1/predictions/{pred.id}/cancel", self._canceller(pred))
            waited = "Prefer" in request.headers
            if waited and self.steps == 0 and not self.never:
                self._finish(pred)
                return self._json(pred, 201)
            return self._json(pred, 202 if waited else 201)

        return create

    # -- get, cancel -------------------------------------------------------------------
    def _getter(self, pred: FakePrediction) -> Callable[[web.Request, Recorded], Any]:
        async def get(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if not _authorized(request):
                return _unauthenticated()
            if pred.status in ("starting", "processing"):
                pred.polls += 1
                pred.status = "processing"
                if not self.never and pred.polls >= max(self.steps, 1):
                    self._finish(pred)
            return self._json(pred)

        return get

    def _canceller(self, pred: FakePrediction) -> Callable[[web.Request, Recorded], Any]:
        async def cancel(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if not _authorized(request):
                return _unauthenticated()
            if rec.body:
                return problem(400, "Bad request", "cancel takes no body")
            self.cancelled.append(pred.id)
            if pred.status in ("starting", "processing"):
                pred.status = "canceled"
            return self._json(pred)

        return cancel

    def _finish(self, pred: FakePrediction) -> None:
        if self.fail is not None:
            pred.status, pred.error = "failed", self.fail
            return
        schema = SCHEMAS[pred.model]
        n = pred.input.get("num_outputs", 1) if "num_outputs" in schema.fields else 1
        images = self.images(n)
        self.served.append(images)
        urls = []
        for i, data in enumerate(images):
            path = f"/delivery/{pred.id}/out-{i}.png"
            self.upstream.on("GET", path, self._file(data))
            urls.append(self.upstream.url + path)
        pred.status = "succeeded"
        pred.output = urls if schema.output == "list" else urls[0]

    def _file(self, data: bytes) -> Callable[[web.Request, Recorded], Any]:
        async def serve(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if self.gone is not None:
                return web.Response(status=self.gone, text="Not Found", content_type="text/plain")
            return web.Response(body=data, content_type="image/png")

        return serve

    def _json(self, pred: FakePrediction, status: int = 200) -> web.Response:
        api = f"{self.upstream.url}/v1/predictions/{pred.id}"
        doc = {
            "id": pred.id, "model": pred.model, "version": pred.version, "input": pred.input, "logs": "",
            "output": pred.output, "data_removed": False, "error": pred.error, "status": pred.status,
            "created_at": "2025-01-01T00:00:00.000Z",
            "urls": {"get": api, "cancel": api + "/cancel", "web": f"https://replicate.com/p/{pred.id}"},
        }
        return web.json_response(doc, status=status)


def _authorized(request: web.Request) -> bool:
    auth = request.headers.get("Authorization", "")
    return auth.startswith("Bearer ") and len(auth) > len("Bearer ")


def _unauthenticated() -> web.Response:
    return problem(401, "Unauthenticated", "You did not pass a valid authentication token")


def _check_headers(request: web.Request) -> web.Response | None:
    if not _authorized(request):
        return _unauthenticated()
    if request.content_type != "application/json":
        return problem(415, "Unsupported media type", "Content-Type must be application/json")
    prefer = request.headers.get("Prefer")
    if prefer is not None and not _PREFER.fullmatch(prefer):
        return problem(400, "Invalid Prefer header", f"Prefer must be wait or wait=N with N from 1 to 60, got {prefer!r}")
    after = request.headers.get("Cancel-After")
    if after is not None:
        m = _DURATION.fullmatch(after)
        seconds = sum(int(v or 0) * k for v, k in zip(m.groups(), (3600, 60, 1), strict=True)) if m and after else 0
        if seconds < 5:
            return problem(400, "Invalid Cancel-After header", "Cancel-After must be a duration of at least 5s")
    return None


def _check_input(schema: Schema, inp: dict[str, Any], resolve: Callable[[str], bytes | None],
                 files: dict[str, list[bytes | None]]) -> list[tuple[str, str, str]]:
    out = [("required", "input", f"{key} is required") for key in ("prompt", *schema.required) if key not in inp]
    if "prompt" in inp and not isinstance(inp["prompt"], str):
        out.append(("invalid_type", "input.prompt", "Invalid type. Expected: string"))
    for key, value in inp.items():
        spec = schema.fields.get(key)
        if spec is None:
            continue  # Cog ignores inputs a model does not declare
        kind, field = spec[0], f"input.{key}"
        if kind in ("file", "files"):
            out.extend(_check_files(key, value, spec, resolve, files))
        elif kind == "enum" and value not in spec[1]:
            out.append(("enum", field, f"{key} must be one of the following: {', '.join(map(repr, spec[1]))}"))
        elif kind in ("int", "num"):
            types = (int,) if kind == "int" else (int, float)
            if not isinstance(value, types) or isinstance(value, bool):
                out.append(("invalid_type", field, f"Invalid type. Expected: {'integer' if kind == 'int' else 'number'}"))
            elif spec[1] is not None and value < spec[1]:
                out.append(("number_gte", field, f"Must be greater than or equal to {spec[1]}"))
            elif spec[2] is not None and value > spec[2]:
                out.append(("number_lte", field, f"Must be less than or equal to {spec[2]}"))
        elif kind == "bool" and not isinstance(value, bool):
            out.append(("invalid_type", field, "Invalid type. Expected: boolean"))
        elif kind == "str" and not isinstance(value, str):
            out.append(("invalid_type", field, "Invalid type. Expected: string"))
    return out


def _check_files(key: str, value: Any, spec: Field, resolve: Callable[[str], bytes | None],
                 files: dict[str, list[bytes | None]]) -> list[tuple[str, str, str]]:
    """A ``file`` input (one URI) or ``files`` input (a list of them, at most ``spec[1]``)."""
    field = f"input.{key}"
    many = spec[0] == "files"
    if many and not isinstance(value, list):
        return [("invalid_type", field, "Invalid type. Expected: array")]
    if many and spec[1] is not None and len(value) > spec[1]:
        return [("array_max_items", field, f"Array must have at most {spec[1]} items")]
    got = []
    for i, uri in enumerate(value if many else [value]):
        where = f"{field}.{i}" if many else field
        if not isinstance(uri, str):
            return [("invalid_type", where, "Invalid type. Expected: string")]
        try:
            got.append(resolve(uri))
        except ValueError as e:
            return [("format", where, f"{key} {e}")]
    files[key] = got
    return []


def _is_image(data: bytes) -> bool:
    """jpeg, png, gif or webp, by the first bytes."""
    return (data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a"))
            or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"))


async def form_parts(rec: Recorded) -> list[tuple[str, str | None, str | None, bytes]]:
    """``(name, filename, content type, bytes)`` per part of a multipart body, read with
    aiohttp's reader (``ValueError`` when it is malformed)."""
    # A limit above the body's size: fed whole, the stream never asks to pause reading.
    stream = StreamReader(BaseProtocol(asyncio.get_running_loop()), limit=max(2**16, len(rec.body)))
    stream.feed_data(rec.body)
    stream.feed_eof()
    reader = MultipartReader(rec.headers, stream)
    out = []
    while (part := await reader.next()) is not None:
        if isinstance(part, MultipartReader):
            raise ValueError("nested multipart")
        out.append((part.name or "", part.filename, part.headers.get("Content-Type"), bytes(await part.read())))
    return out
