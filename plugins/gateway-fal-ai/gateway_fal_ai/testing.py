"""A fake of fal's queue API that checks requests as fal documents them.

It follows fal's queue documentation (docs.fal.ai "Queue"), its error references ("Model
errors", "Request errors") and each endpoint's input schema (the generated types of
@fal-ai/client):

- every call needs ``Authorization: Key <key>`` (401 ``{"detail": ...}`` otherwise; fal's
  exact wording is not documented);
- ``POST {prefix}/{endpoint id}`` with a JSON object queues a request and answers
  ``{"status": "IN_QUEUE", "request_id", "response_url", "status_url", "cancel_url",
  "queue_position"}``; the URLs are under the endpoint's *app* id (``fal-ai/flux`` for
  ``fal-ai/flux/dev``), built on ``answer_base`` (default: the fake's own URL);
- ``GET {prefix}/{app}/requests/{id}/status`` answers ``IN_QUEUE`` (first poll),
  ``IN_PROGRESS``, then ``COMPLETED`` at poll ``steps`` (never with ``never=True``);
- ``GET {prefix}/{app}/requests/{id}`` answers the result once completed (400 "still in
  progress" before): the endpoint's output, or its error.  The input is checked against
  the endpoint's schema when the request runs, as fal's runners do, so a bad field is a
  422 ``{"detail": [{"loc": ["body", field], "msg", "type", "url", ...}]}`` on the
  result, not on the submit;
- ``PUT {prefix}/{app}/requests/{id}/cancel`` answers 202 ``CANCELLATION_REQUESTED`` (the
  request then ends as ``client_cancelled``, 499) or 400 ``ALREADY_COMPLETED``;
- status, result or cancel asked on the full endpoint id of a sub-path model
  (``fal-ai/flux/dev/requests/...``) is a 404: fal's documentation says the sub-path "should
  be used when making the request, but not when getting request status or results"
  (``FalFake.misrouted`` records them);
- a file input (``image_url``, ``image_urls``, ``mask_url``) takes an http(s) URL (taken,
  not fetched) or a base64 ``data:`` URI of an image, else a 422 ``image_load_error``;
- the first ``flaky`` status polls of each request answer 503 (``runner_scheduling_failure``);
- images are served at ``/media/files/{id}/{i}.png`` like fal.media (data URIs with
  ``sync_mode: true``); toolkit endpoints (FLUX.1, FLUX.2 [dev], Qwen-Image, Kontext, fast-sdxl)
  answer ``has_nsfw_concepts``, and an image ``nsfw`` flags is a black stand-in flagged
  ``true`` (unless ``enable_safety_checker`` is false); a prompt containing ``refuse`` is a 422
  ``content_policy_violation``.

``install(fake_upstream, ...)`` serves the API on a :class:`~gateway.testing.FakeUpstream`
and returns the :class:`FalFake` (its ``requests``, ``cancelled``, ``misrouted``, ``served``).
"""
from __future__ import annotations

import base64
import binascii
import itertools
import struct
import uuid
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import make_png
from gateway_fal_ai.models import FLUX_RATIOS, RECRAFT_V3_STYLES

#: A field's kind: ("str",), ("bool",), ("enum", values), ("int", lo, hi), ("num", lo, hi),
#: ("size", preset names), ("url",), ("urls",), ("list",).
Field = tuple[Any, ...]
PRESETS = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
           "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
MAX_SIDE = 14142
STR, BOOL, URL, URLS, LIST = ("str",), ("bool",), ("url",), ("urls",), ("list",)
SEED = ("int", None, None)
SIZE = ("size", tuple(PRESETS))


def _int(lo: int | None, hi: int | None) -> Field:
    return ("int", lo, hi)


def _enum(*values: str) -> Field:
    return ("enum", values)


@dataclass(frozen=True)
class Schema:
    """One endpoint's input and output, as its schema documents them."""

    fields: dict[str, Field]
    required: tuple[str, ...] = ("prompt",)
    #: Whether the output carries ``has_nsfw_concepts`` (fal's toolkit safety checker).
    nsfw: bool = False


_COMMON = {"prompt": STR, "seed": SEED, "sync_mode": BOOL}
_FORMAT = _enum("jpeg", "png")
_ACCEL = _enum("none", "regular", "high")
_FLUX1 = {**_COMMON, "image_size": SIZE, "num_images": _int(1, 4), "guidance_scale": ("num", 1, 20),
          "output_format": _FORMAT, "acceleration": _ACCEL, "enable_safety_checker": BOOL}
_FLUX_API = {**_COMMON, "num_images": _int(1, 4), "output_format": _FORMAT, "enhance_prompt": BOOL,
             "safety_tolerance": _enum("1", "2", "3", "4", "5", "6")}
_FLUX2_API = {**_COMMON, "image_size": SIZE, "output_format": _FORMAT, "enable_safety_checker": BOOL,
              "safety_tolerance": _enum("1", "2", "3", "4", "5")}
_SEEDREAM4 = {**_COMMON, "image_size": ("size", (*PRESETS, "auto", "auto_2K", "auto_4K")),
              "num_images": _int(1, 6), "max_images": _int(1, 6), "enable_safety_checker": BOOL,
              "enhance_prompt_mode": _enum("standard", "fast")}
_IDEOGRAM3 = {**_COMMON, "num_images": _int(1, 8), "rendering_speed": _enum("TURBO", "BALANCED", "QUALITY"),
              "expand_prompt": BOOL, "negative_prompt": STR, "image_urls": URLS, "style_codes": LIST}
_QWEN = {**_COMMON, "image_size": SIZE, "num_images": _int(1, 4), "guidance_scale": ("num", 0, 20),
         "negative_prompt": STR, "output_format": _FORMAT, "acceleration": _ACCEL, "enable_safety_checker": BOOL}

#: The endpoints the fake serves, by endpoint id.
SCHEMAS: dict[str, Schema] = {
    "fal-ai/flux/dev": Schema({**_FLUX1, "num_inference_steps": _int(1, 50)}, nsfw=True),
    "fal-ai/flux/schnell": Schema({**_FLUX1, "num_inference_steps": _int(1, 12)}, nsfw=True),
    "fal-ai/flux-pro/v1.1": Schema({**_FLUX_API, "image_size": SIZE}, nsfw=True),
    "fal-ai/flux-pro/v1.1-ultra": Schema({**_FLUX_API, "aspect_ratio": STR, "raw": BOOL, "image_url": URL,
                                          "image_prompt_strength": ("num", 0, 1)}, nsfw=True),
    "fal-ai/flux-2": Schema({**_COMMON, "image_size": SIZE, "num_images": _int(1, 4), "guidance_scale": ("num", 0, 20),
                             "num_inference_steps": _int(4, 50), "output_format": _enum("jpeg", "png", "webp"),
                             "acceleration": _ACCEL, "enable_safety_checker": BOOL, "enable_prompt_expansion": BOOL},
                            nsfw=True),
    "fal-ai/flux-2-pro": Schema(_FLUX2_API),
    "fal-ai/flux-2-pro/edit": Schema({**_FLUX2_API, "image_size": ("size", (*PRESETS, "auto")), "image_urls": URLS},
                                     required=("prompt", "image_urls")),
    "fal-ai/flux-pro/kontext": Schema({**_FLUX_API, "aspect_ratio": _enum(*FLUX_RATIOS),
                                       "guidance_scale": ("num", 1, 20), "image_url": URL},
                                      required=("prompt", "image_url"), nsfw=True),
    "fal-ai/bytedance/seedream/v4/text-to-image": Schema(_SEEDREAM4),
    "fal-ai/bytedance/seedream/v4/edit": Schema({**_SEEDREAM4, "image_urls": URLS},
                                                required=("prompt", "image_urls")),
    "fal-ai/recraft/v3/text-to-image": Schema({"prompt": STR, "image_size": SIZE, "style": _enum(*RECRAFT_V3_STYLES),
                                               "style_id": STR, "colors": LIST, "enable_safety_checker": BOOL}),
    "fal-ai/ideogram/v3": Schema({**_IDEOGRAM3, "image_size": SIZE,
                                  "style": _enum("AUTO", "GENERAL", "REALISTIC", "DESIGN")}),
    "fal-ai/ideogram/v3/edit": Schema({**_IDEOGRAM3, "image_url": URL, "mask_url": URL},
                                      required=("prompt", "image_url", "mask_url")),
    "fal-ai/qwen-image": Schema({**_QWEN, "num_inference_steps": _int(2, 250), "use_turbo": BOOL}, nsfw=True),
    "fal-ai/qwen-image-edit": Schema({**_QWEN, "num_inference_steps": _int(2, 50), "image_url": URL},
                                     required=("prompt", "image_url"), nsfw=True),
    # Not in the gateway's tables: the generic mapping's endpoint in tests.
    "fal-ai/fast-sdxl": Schema({**_COMMON, "image_size": SIZE, "num_images": _int(1, 8), "negative_prompt": STR,
                                "num_inference_steps": _int(1, 50), "enable_safety_checker": BOOL,
                                "format": _FORMAT}, nsfw=True),
}
#: Endpoint id namespaces whose app id has three segments.
NAMESPACES = frozenset({"workflows", "comfy"})


def app_of(endpoint: str) -> str:
    parts = endpoint.split("/")
    return "/".join(parts[:3 if parts[0] in NAMESPACES else 2])


def black_png() -> bytes:
    """A 1x1 black PNG: the safety checker's stand-in for a flagged image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00")) + chunk(b"IEND", b""))


@dataclass
class FakeRequest:
    """One queued request, as the fake keeps it."""

    id: str
    endpoint: str
    app: str
    input: dict[str, Any]
    status: str = "IN_QUEUE"
    polls: int = 0
    #: The result once completed: (HTTP status, JSON body).
    result: tuple[int, bytes] | None = None
    cancelled: bool = False
    #: Each file input's bytes as received (None for an http(s) URL), by field.
    files: dict[str, list[bytes | None]] = field(default_factory=dict)


class FalFake:
    """The queue API on a :class:`FakeUpstream`, and what it was asked."""

    def __init__(self, upstream: FakeUpstream, *, prefix: str = "", steps: int = 3, never: bool = False,
                 result: Reply | None = None, nsfw: Collection[int] | Callable[[FakeRequest, int], bool] = (),
                 refuse: str | None = None, answer_base: str | None = None, flaky: int = 0) -> None:
        self.upstream = upstream
        self.prefix = prefix
        #: The status poll at which a request completes (1: the first).
        self.steps = steps
        #: Requests never complete.
        self.never = never
        #: What every result answers instead of running the endpoint.
        self.result = result
        #: Which images (index within a request) the safety checker flags.
        self.nsfw = nsfw if callable(nsfw) else (lambda req, i, flagged=frozenset(nsfw): i in flagged)
        #: A prompt containing this is refused by the content checker.
        self.refuse = refuse
        #: Where the answers' status/response/cancel URLs point.
        self.answer_base = answer_base
        #: Status polls of each request answered 503 (no runner yet) before the real status.
        self.flaky = flaky
        self.counter = itertools.count(1)
        self.requests: dict[str, FakeRequest] = {}
        #: Ids of requests cancelled through the API.
        self.cancelled: list[str] = []
        #: Paths asked on a sub-path model's full endpoint id instead of its app id.
        self.misrouted: list[str] = []
        #: Each completed request's images as served, in completion order.
        self.served: list[list[bytes]] = []

    def install(self) -> FalFake:
        for endpoint in SCHEMAS:
            self.upstream.on("POST", f"{self.prefix}/{endpoint}", self.submitter(endpoint))
        return self

    # -- submit ----------------------------------------------------------------------------
    def submitter(self, endpoint: str) -> Callable[[web.Request, Recorded], Any]:
        """The submit handler of ``endpoint`` (a test may wrap it to script one answer)."""
        async def submit(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if not _authorized(request):
                return _unauthorized()
            try:
                body = msgspec.json.decode(rec.body)
            except msgspec.DecodeError:
                return _invalid([_problem(["body"], "json_invalid", "Input should be a valid JSON object", None)])
            if not isinstance(body, dict):
                return _invalid([_problem(["body"], "dict_type", "Input should be a valid dictionary", body)])
            req = FakeRequest(id=str(uuid.uuid4()), endpoint=endpoint, app=app_of(endpoint), input=body)
            self.requests[req.id] = req
            base = f"{self.prefix}/{req.app}/requests/{req.id}"
            self.upstream.on("GET", base + "/status", self._status(req))
            self.upstream.on("GET", base, self._result(req))
            self.upstream.on("PUT", base + "/cancel", self._canceller(req))
            if endpoint != req.app:
                wrong = f"{self.prefix}/{endpoint}/requests/{req.id}"
                for method, path in (("GET", wrong + "/status"), ("GET", wrong), ("PUT", wrong + "/cancel")):
                    self.upstream.on(method, path, self._misrouted)
            return web.json_response({"status": "IN_QUEUE", **self._urls(req), "queue_position": 0})

        return submit

    def _urls(self, req: FakeRequest) -> dict[str, str]:
        url = f"{self.answer_base or self.upstream.url + self.prefix}/{req.app}/requests/{req.id}"
        return {"request_id": req.id, "response_url": url, "status_url": url + "/status",
                "cancel_url": url + "/cancel"}

    async def _misrouted(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        self.misrouted.append(rec.path)
        return web.json_response({"detail": "Request not found"}, status=404)

    # -- status, result, cancel --------------------------------------------------------------
    def _status(self, req: FakeRequest) -> Callable[[web.Request, Recorded], Any]:
        async def status(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if not _authorized(request):
                return _unauthorized()
            req.polls += 1
            if req.polls <= self.flaky:
                return web.json_response({"detail": "No runner could be allocated",
                                          "error_type": "runner_scheduling_failure"}, status=503)
            if req.result is None:
                polls = req.polls - self.flaky
                if not self.never and polls >= self.steps:
                    self._finish(req)
                elif polls >= 2:
                    req.status = "IN_PROGRESS"
            doc: dict[str, Any] = {"status": req.status, **self._urls(req), "logs": None}
            if req.status == "IN_QUEUE":
                doc["queue_position"] = 0
            if req.status == "COMPLETED":
                doc["metrics"] = {"inference_time": 0.42}
            return web.json_response(doc)

        return status

    def _result(self, req: FakeRequest) -> Callable[[web.Request, Recorded], Any]:
        async def result(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if not _authorized(request):
                return _unauthorized()
            if req.result is None:
                return web.json_response({"detail": "Request is still in progress"}, status=400)
            status, body = req.result
            return web.Response(status=status, body=body, content_type="application/json")

        return result

    def _canceller(self, req: FakeRequest) -> Callable[[web.Request, Recorded], Any]:
        async def cancel(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if not _authorized(request):
                return _unauthorized()
            if req.result is not None:
                return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
            self.cancelled.append(req.id)
            req.cancelled, req.status = True, "COMPLETED"
            cancelled = {"detail": "Request was cancelled", "error_type": "client_cancelled"}
            req.result = (499, msgspec.json.encode(cancelled))
            return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)

        return cancel

    # -- running the endpoint -----------------------------------------------------------------
    def _finish(self, req: FakeRequest) -> None:
        req.status = "COMPLETED"
        if self.result is not None:
            req.result = (self.result.status, self.result.body)
            return
        schema = SCHEMAS[req.endpoint]
        problems = _check(schema, req)
        if not problems and self.refuse and self.refuse in str(req.input.get("prompt", "")):
            problems = [{**_problem(["body", "prompt"], "content_policy_violation",
                                    "The content could not be processed because it contained material flagged by "
                                    "a content checker.", req.input["prompt"]), "categories": ["sexual"]}]
        if problems:
            req.result = (422, msgspec.json.encode({"detail": problems}))
            return
        self._output(schema, req)

    def _output(self, schema: Schema, req: FakeRequest) -> None:
        inp = req.input
        n = inp.get("num_images", 1) if "num_images" in schema.fields else 1
        width, height = _dims(inp.get("image_size"))
        checked = schema.nsfw and inp.get("enable_safety_checker", True) is not False
        flags = [checked and self.nsfw(req, i) for i in range(n)]
        images = [black_png() if flagged else make_png(next(self.counter)) for flagged in flags]
        self.served.append(images)
        out = []
        for i, data in enumerate(images):
            if inp.get("sync_mode") is True:
                url = "data:image/png;base64," + base64.b64encode(data).decode()
            else:
                path = f"/media/files/{req.id}/{i}.png"
                self.upstream.on("GET", path, Reply(body=data, content_type="image/png"))
                url = self.upstream.url + path
            out.append({"url": url, "width": width, "height": height, "content_type": "image/png"})
        doc: dict[str, Any] = {"images": out, "seed": inp.get("seed", 42), "prompt": inp.get("prompt"),
                               "timings": {"inference": 0.42}}
        if schema.nsfw:
            doc["has_nsfw_concepts"] = flags
        req.result = (200, msgspec.json.encode(doc))


def _dims(size: Any) -> tuple[int, int]:
    if isinstance(size, dict):
        return size.get("width", 512), size.get("height", 512)
    return PRESETS.get(size, (1024, 768)) if isinstance(size, str) else (1024, 768)


def _check(schema: Schema, req: FakeRequest) -> list[dict[str, Any]]:
    """The input's problems, as pydantic words them (fields a schema does not list are ignored)."""
    inp = req.input
    out = [_problem(["body", key], "missing", "Field required", inp) for key in schema.required if key not in inp]
    for key, value in inp.items():
        spec = schema.fields.get(key)
        if spec is not None:
            out.extend(_check_value(["body", key], spec, value, req))
    return out


def _check_value(loc: list[Any], spec: Field, value: Any, req: FakeRequest) -> list[dict[str, Any]]:
    kind = spec[0]
    if kind == "str" and not isinstance(value, str):
        return [_problem(loc, "string_type", "Input should be a valid string", value)]
    if kind == "bool" and not isinstance(value, bool):
        return [_problem(loc, "bool_type", "Input should be a valid boolean", value)]
    if kind == "list" and not isinstance(value, list):
        return [_problem(loc, "list_type", "Input should be a valid list", value)]
    if kind == "enum" and value not in spec[1]:
        listed = ", ".join(repr(v) for v in spec[1])
        return [_problem(loc, "enum", f"Input should be {listed}", value, {"expected": listed})]
    if kind in ("int", "num"):
        return _check_number(loc, spec, value)
    if kind == "size":
        if isinstance(value, str):
            return [] if value in spec[1] else _check_value(loc, ("enum", spec[1]), value, req)
        if not isinstance(value, dict):
            return [_problem(loc, "model_type", "Input should be a valid dictionary or instance of ImageSize", value)]
        return [p for side in ("width", "height") if side in value
                for p in _check_number([*loc, side], _int(None, MAX_SIDE), value[side])]
    if kind in ("url", "urls"):
        return _check_files(loc, kind == "urls", value, req)
    return []


def _check_number(loc: list[Any], spec: Field, value: Any) -> list[dict[str, Any]]:
    kind, lo, hi = spec
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind == "num" else int):
        name = "int_type" if kind == "int" else "float_type"
        return [_problem(loc, name, f"Input should be a valid {'integer' if kind == 'int' else 'number'}", value)]
    if lo is not None and value < lo:
        return [_problem(loc, "greater_than_equal", f"Input should be greater than or equal to {lo}", value,
                         {"ge": lo})]
    if hi is not None and value > hi:
        return [_problem(loc, "less_than_equal", f"Input should be less than or equal to {hi}", value, {"le": hi})]
    return []


def _check_files(loc: list[Any], many: bool, value: Any, req: FakeRequest) -> list[dict[str, Any]]:
    if many and not isinstance(value, list):
        return [_problem(loc, "list_type", "Input should be a valid list", value)]
    got: list[bytes | None] = []
    for i, uri in enumerate(value if many else [value]):
        where = [*loc, i] if many else loc
        if not isinstance(uri, str):
            return [_problem(where, "string_type", "Input should be a valid string", uri)]
        if uri.startswith(("https://", "http://")):
            got.append(None)
            continue
        data = _data_uri(uri)
        if data is None:
            return [_problem(where, "image_load_error", "Failed to load the image. Please ensure the image file is "
                                                        "not corrupted and is in a supported format.", uri[:64])]
        got.append(data)
    req.files[str(loc[-1])] = got
    return []


def _data_uri(uri: str) -> bytes | None:
    """A base64 image data URI's bytes (jpeg, png, gif, webp), else None."""
    header, comma, payload = uri.partition(",")
    if not comma or not header.startswith("data:image/") or not header.endswith(";base64"):
        return None
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error:
        return None
    image = (data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a"))
             or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"))
    return data if image else None


def _problem(loc: list[Any], kind: str, msg: str, value: Any, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"loc": loc, "msg": msg, "type": kind, "url": f"https://docs.fal.ai/errors#{kind}", "input": value}
    if ctx is not None:
        out["ctx"] = ctx
    return out


def _authorized(request: web.Request) -> bool:
    auth = request.headers.get("Authorization", "")
    return auth.startswith("Key ") and len(auth) > len("Key ")


def _unauthorized() -> web.Response:
    return web.json_response({"detail": "Authentication is required to access this endpoint"}, status=401)


def _invalid(problems: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"detail": problems}, status=422)


def install(upstream: FakeUpstream, **kwargs: Any) -> FalFake:
    """Serve fal's queue API on ``upstream`` (see the module's docstring for ``kwargs``)."""
    return FalFake(upstream, **kwargs).install()
