"""A fake of Replicate's predictions API that checks requests as Replicate documents them.

It follows the OpenAPI description of api.replicate.com/v1 (``predictions.create``,
``models.predictions.create``, ``predictions.get``, ``predictions.cancel``):

- every API call needs ``Authorization: Bearer <token>`` (401 problem document otherwise);
- ``Prefer`` must match ``wait`` or ``wait=N`` (N 1..60), ``Cancel-After`` a duration of 5 s or more;
- the body is JSON with ``input`` (and ``version`` on ``/predictions``); other top-level
  keys are a 422 listing ``invalid_fields``, as Replicate answers since 2024-05;
- ``input`` is checked against the model's documented schema (enums, ranges); a bad
  field is a 422 ``Input validation failed`` with ``detail`` and ``invalid_fields``;
- a prediction finishes within the sync wait when ``steps`` is 0 and ``Prefer: wait``
  was sent, else after ``steps`` polls (at least one without ``Prefer``); its output
  files are served at ``/delivery/{id}/out-{i}.png`` like replicate.delivery.

``install(fake_upstream, steps=..., fail=..., never=...)`` serves the API on a
:class:`~gateway.testing.FakeUpstream` under ``/v1`` and returns the
:class:`ReplicateFake` (its ``predictions``, ``cancelled`` and ``served``).
"""
from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Recorded
from gateway.testing.provider_contract import make_png
from gateway_replicate.models import (
    FLUX_RATIOS, IDEOGRAM_V3_RESOLUTIONS, RECRAFT_SIZES, RECRAFT_STYLES, SD35_RATIOS, SDXL_VERSION, ULTRA_RATIOS,
)

__all__ = ["COMMUNITY_VERSION", "NSFW", "PROBLEM", "SCHEMAS", "ReplicateFake", "install"]

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
_IDEOGRAM = {"resolution": ("enum", ("None", *IDEOGRAM_V3_RESOLUTIONS)),
             "aspect_ratio": ("enum", ("1:3", "3:1", "1:2", "2:1", "9:16", "16:9", "10:16", "16:10", "2:3", "3:2",
                                       "3:4", "4:3", "4:5", "5:4", "1:1")),
             "magic_prompt_option": ("enum", ("Auto", "On", "Off")),
             "style_type": ("enum", ("None", "Auto", "General", "Realistic", "Design")), "seed": _SEED}


class Schema(msgspec.Struct, frozen=True):
    """A model's documented inputs (besides ``prompt``) and output shape."""

    fields: dict[str, Field]
    #: ``list`` (an array of file URLs) or ``string`` (one file URL).
    output: str
    #: Whether it is an official model (run by name, ``version: "hidden"``).
    official: bool = True


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

    def install(self) -> ReplicateFake:
        for name, schema in SCHEMAS.items():
            if schema.official:
                self.upstream.on("POST", f"/v1/models/{name}/predictions", self._creator(name))
        self.upstream.on("POST", "/v1/predictions", self._creator(None))
        return self

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
            bad = _check_input(SCHEMAS[model], body["input"])
            if bad:
                return invalid(bad)
            pred = FakePrediction(id=secrets.token_hex(13), model=model, version=version, input=body["input"])
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
            self.upstream.on("GET", path, _file(data))
            urls.append(self.upstream.url + path)
        pred.status = "succeeded"
        pred.output = urls if schema.output == "list" else urls[0]

    def _json(self, pred: FakePrediction, status: int = 200) -> web.Response:
        api = f"{self.upstream.url}/v1/predictions/{pred.id}"
        doc = {
            "id": pred.id, "model": pred.model, "version": pred.version, "input": pred.input, "logs": "",
            "output": pred.output, "data_removed": False, "error": pred.error, "status": pred.status,
            "created_at": "2025-01-01T00:00:00.000Z",
            "urls": {"get": api, "cancel": api + "/cancel", "web": f"https://replicate.com/p/{pred.id}"},
        }
        return web.json_response(doc, status=status)


def _file(data: bytes) -> Callable[[web.Request, Recorded], Any]:
    async def serve(request: web.Request, rec: Recorded) -> web.StreamResponse:
        return web.Response(body=data, content_type="image/png")

    return serve


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


def _check_input(schema: Schema, inp: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    if not isinstance(inp.get("prompt"), str):
        out.append(("required", "input", "prompt is required"))
    for key, value in inp.items():
        spec = schema.fields.get(key)
        if spec is None:
            continue  # Cog ignores inputs a model does not declare
        kind, field = spec[0], f"input.{key}"
        if kind == "enum" and value not in spec[1]:
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
