"""A fake of Black Forest Labs' FLUX API that checks requests as BFL documents them.

It follows BFL's API reference (generated from https://api.bfl.ai/openapi.json) and its
integration guide:

- every call needs the key in ``x-key`` (403 ``{"detail": "Not authenticated"}`` otherwise);
- ``POST {prefix}/v1/{model}`` takes a JSON object checked against that model's documented
  inputs (:data:`SCHEMAS`: types, ranges, enums, FLUX.2's sides of 64 or more in multiples of
  16, Kontext's and Ultra's ``aspect_ratio`` between 21:9 and 9:21, input images as base64 of
  a jpeg/png/webp/gif or an http(s) URL).  A bad body is FastAPI's 422
  ``{"detail": [{"type", "loc": ["body", field], "msg", "input"}]}``.  Unknown fields are a
  422 too (``extra_forbidden``): stricter than BFL may be, so a test sees a stray field;
- it answers ``{"id", "polling_url", "cost", "input_mp", "output_mp"}``, the ``polling_url`` on
  the fake's own URL under the same prefix (or on ``polling_base`` when a test sets one);
- ``GET {prefix}/v1/get_result?id=...`` answers ``{"id", "status", "result", "progress",
  "details", "preview"}``: ``Pending`` for ``steps`` polls, then ``Ready`` with
  ``result.sample`` (a URL on the fake, ``/delivery/{id}/sample.{jpeg|png}``, served without a
  key), or what ``ending`` says: ``Request Moderated`` / ``Content Moderated`` (with
  ``details: {"Moderation Reasons": [...]}``), ``Error``, or never (``never=True``).  An unknown
  id (every id with ``forget``) is a 200 ``Task not found``; a missing one a 422.  With
  ``expired`` the result URLs answer 403, as a signed URL past its ten minutes does;
- a task counts as active until it ends: more than ``limit`` active tasks (more than
  ``model_limits`` of one model: 6 of ``flux-kontext-max``) is a 429 ``{"detail": ...}``;
  with ``credits`` set, each task costs one and none left is a 402;
- ``GET {prefix}/v1/credits`` answers ``{"credits": ...}`` (for passthrough).

``install(fake_upstream, ...)`` serves it under each of ``prefixes`` (``""``: the fake's URL is
the base URL; ``"/eu"``: a region's base URL) and returns the :class:`BlackForestLabsFake`.

Sources: https://docs.bfl.ai/api-reference (per-model request bodies, get_result),
https://docs.bfl.ai/api_integration/errors, https://docs.bfl.ai/api_integration/integration_guidelines.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets
import struct
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Recorded
from gateway.testing.provider_contract import make_png

__all__ = ["SCHEMAS", "BlackForestLabsFake", "FakeTask", "install", "make_jpeg"]

Field = tuple[Any, ...]
#: One validation error: FastAPI's ``type``, the ``loc`` below ``body``, ``msg``, ``input``.
Problem = tuple[str, list[Any], str, Any]
_SEED: Field = ("int", None, None)
_STR: Field = ("str",)
_BOOL: Field = ("bool",)
_IMAGE: Field = ("image",)
_FORMAT: Field = ("enum", ("jpeg", "png"))
_WEBHOOK = {"webhook_url": _STR, "webhook_secret": _STR}


def _flux2(images: int, **more: Field) -> dict[str, Field]:
    refs = {("input_image" if i == 1 else f"input_image_{i}"): _IMAGE for i in range(1, images + 1)}
    return {"prompt": _STR, **refs, "seed": _SEED, "width": ("side", 64, None, 16), "height": ("side", 64, None, 16),
            "safety_tolerance": ("int", 0, 5), "output_format": _FORMAT, **_WEBHOOK, **more}


_KONTEXT = {"prompt": _STR, "input_image": _IMAGE, "input_image_2": _IMAGE, "input_image_3": _IMAGE,
            "input_image_4": _IMAGE, "seed": _SEED, "aspect_ratio": ("ratio",), "output_format": _FORMAT,
            "prompt_upsampling": _BOOL, "safety_tolerance": ("int", 0, 6), **_WEBHOOK}
_PRO_SIDES = {"width": ("side", 256, 1440, 32), "height": ("side", 256, 1440, 32)}
_FLUX1 = {"prompt": _STR, "image_prompt": _IMAGE, **_PRO_SIDES, "prompt_upsampling": _BOOL, "seed": _SEED,
          "safety_tolerance": ("int", 0, 6), "output_format": _FORMAT, **_WEBHOOK}


class Schema(msgspec.Struct, frozen=True):
    """A model's documented body: ``("str",)``, ``("bool",)``, ``("int"|"num", min, max)``,
    ``("enum", values)``, ``("side", min, max, multiple)``, ``("ratio",)`` (``W:H`` between
    21:9 and 9:21) or ``("image",)`` (base64 of an image, or an http(s) URL)."""

    fields: dict[str, Field]
    required: tuple[str, ...] = ()
    #: The ``output_format`` when none is sent.
    default_format: str = "jpeg"


SCHEMAS: dict[str, Schema] = {
    **{name: Schema(_flux2(8), ("prompt",)) for name in ("flux-2-pro", "flux-2-pro-preview", "flux-2-max")},
    "flux-2-flex": Schema(_flux2(8, prompt_upsampling=_BOOL, guidance=("num", 1.5, 10), steps=("int", 1, 50)),
                          ("prompt",)),
    **{name: Schema(_flux2(4), ("prompt",))
       for name in ("flux-2-klein-4b", "flux-2-klein-9b", "flux-2-klein-9b-preview")},
    "flux-kontext-pro": Schema(_KONTEXT, ("prompt",), "png"),
    "flux-kontext-max": Schema(_KONTEXT, ("prompt",), "png"),
    "flux-pro-1.1": Schema(_FLUX1),
    "flux-pro-1.1-ultra": Schema({
        "prompt": _STR, "prompt_upsampling": _BOOL, "seed": _SEED, "aspect_ratio": ("ratio",),
        "safety_tolerance": ("int", 0, 6), "output_format": _FORMAT, "raw": _BOOL, "image_prompt": _IMAGE,
        "image_prompt_strength": ("num", 0, 1), **_WEBHOOK}),
    "flux-pro": Schema({**_FLUX1, "steps": ("int", 1, 50), "guidance": ("num", 1.5, 5), "interval": ("num", 1, 4)}),
    "flux-dev": Schema({**_FLUX1, "steps": ("int", 1, 50), "guidance": ("num", 1.5, 5)}),
    "flux-pro-1.0-fill": Schema({
        "image": _IMAGE, "mask": _IMAGE, "prompt": _STR, "steps": ("int", 15, 50), "prompt_upsampling": _BOOL,
        "seed": _SEED, "guidance": ("num", 1.5, 100), "output_format": _FORMAT, "safety_tolerance": ("int", 0, 6),
        **_WEBHOOK}, ("image",)),
}

#: A 1x1 JPEG; :func:`make_jpeg` makes distinct ones from it.
_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hn"
    "Pk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
    "Y2P/wAARCAABAAEDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQID"
    "AAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlq"
    "c3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3"
    "+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEI"
    "FEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImK"
    "kpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDL"
    "oooriPpj/9k=")
_URL = re.compile(r"https?://\S+")
_RATIO = re.compile(r"([1-9][0-9]{0,2}):([1-9][0-9]{0,2})")
#: BFL's limit on tasks one account has running at once ("Standard: 24").
ACTIVE_LIMIT = 24
#: Models BFL runs fewer active tasks of.
MODEL_ACTIVE_LIMITS = {"flux-kontext-max": 6}


def make_jpeg(k: int) -> bytes:
    """A valid 1x1 JPEG made distinct by a comment segment carrying ``k``."""
    comment = f"fake-bfl-{k}".encode()
    return _JPEG[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + _JPEG[2:]


def _default_image(output_format: str, k: int) -> bytes:
    return make_png(k) if output_format == "png" else make_jpeg(k)


class FakeTask(msgspec.Struct, kw_only=True):
    """One task as the fake keeps it."""

    id: str
    model: str
    body: dict[str, Any]
    prefix: str
    #: Decoded input images by field (None for a URL, taken and not fetched).
    inputs: dict[str, bytes | None]
    polls: int = 0
    status: str = "Pending"
    sample: str | None = None


class BlackForestLabsFake:
    """The fake's state: tasks, what it served, and knobs a test turns."""

    def __init__(self, upstream: FakeUpstream, *, steps: int = 1, ending: str = "Ready", never: bool = False,
                 prefixes: tuple[str, ...] = ("",), images: Callable[[str, int], bytes] = _default_image,
                 limit: int = ACTIVE_LIMIT, model_limits: dict[str, int] | None = None,
                 credits: int | None = None) -> None:
        self.upstream = upstream
        #: Polls a task answers ``Pending`` before it ends.
        self.steps = steps
        #: How a task ends: ``Ready``, ``Request Moderated``, ``Content Moderated`` or ``Error``.
        self.ending = ending
        #: Tasks stay ``Pending`` for ever.
        self.never = never
        self.prefixes = prefixes
        #: ``(output_format, k)`` -> the k-th result image's bytes.
        self.images = images
        self.limit = limit
        #: Tasks the account can still pay for (None: no end).
        self.credits = credits
        #: The ``polling_url``'s base instead of the fake's own URL and prefix (foreign-host tests).
        self.polling_base: str | None = None
        #: Tasks are gone when polled (``Task not found``: expired, or another region's).
        self.forget = False
        #: Result URLs answer 403, as a signed URL past its ten minutes does.
        self.expired = False
        self.tasks: dict[str, FakeTask] = {}
        #: The images each task served, in the order tasks were ready; and by task id.
        self.served: list[list[bytes]] = []
        self.results: dict[str, bytes] = {}
        #: Requests for result images (to check no key went there).
        self.deliveries: list[Recorded] = []
        self.model_limits = dict(MODEL_ACTIVE_LIMITS if model_limits is None else model_limits)
        self.active = 0
        self.max_active = 0
        #: Active tasks per model, and the most there were of each at once.
        self.active_of: dict[str, int] = {}
        self.max_active_of: dict[str, int] = {}
        self._counter = itertools.count(1)

    def install(self) -> BlackForestLabsFake:
        for prefix in self.prefixes:
            for model in SCHEMAS:
                self.upstream.on("POST", f"{prefix}/v1/{model}", self._creator(model, prefix))
            self.upstream.on("GET", f"{prefix}/v1/get_result", self._getter)
            self.upstream.on("GET", f"{prefix}/v1/credits", self._credits)
        return self

    def polls(self) -> list[Recorded]:
        """The ``get_result`` requests the fake received."""
        return [r for r in self.upstream.requests if r.method == "GET" and r.path.endswith("/v1/get_result")]

    def creates(self) -> list[Recorded]:
        """The task submissions the fake received."""
        return [r for r in self.upstream.requests if r.method == "POST" and "/v1/" in r.path]

    # -- create ------------------------------------------------------------------------
    def _creator(self, model: str, prefix: str) -> Callable[[web.Request, Recorded], Any]:
        async def create(request: web.Request, rec: Recorded) -> web.StreamResponse:
            if not request.headers.get("x-key"):
                return _detail(403, "Not authenticated")
            try:
                body = msgspec.json.decode(rec.body)
            except msgspec.DecodeError:
                return _invalid([("json_invalid", [], "JSON decode error", None)])
            if not isinstance(body, dict):
                return _invalid([("model_attributes_type", [], "Input should be a valid dictionary", body)])
            inputs: dict[str, bytes | None] = {}
            problems = _check(SCHEMAS[model], body, inputs)
            if problems:
                return _invalid(problems)
            if self.credits is not None and self.credits <= 0:
                return _detail(402, "Insufficient credits. Add credits at https://dashboard.bfl.ai to continue.")
            if self.active >= self.limit:
                return _detail(429, f"You have exceeded the number of active tasks ({self.limit}). Wait for a "
                                    "task to finish before submitting another.")
            own = self.model_limits.get(model)
            if own is not None and self.active_of.get(model, 0) >= own:
                return _detail(429, f"You have exceeded the number of active tasks ({own}) for {model}. Wait for a "
                                    "task to finish before submitting another.")
            if self.credits is not None:
                self.credits -= 1
            task = FakeTask(id=secrets.token_hex(8) + "-" + secrets.token_hex(4), model=model, body=body,
                            prefix=prefix, inputs=inputs)
            self.tasks[task.id] = task
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.active_of[model] = self.active_of.get(model, 0) + 1
            self.max_active_of[model] = max(self.max_active_of.get(model, 0), self.active_of[model])
            base = self.polling_base or self.upstream.url + prefix
            return web.json_response({"id": task.id, "polling_url": f"{base}/v1/get_result?id={task.id}",
                                      "cost": 3.0, "input_mp": 0.0, "output_mp": 1.0})

        return create

    # -- poll --------------------------------------------------------------------------
    async def _getter(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if not request.headers.get("x-key"):
            return _detail(403, "Not authenticated")
        task_id = rec.query.get("id")
        if task_id is None:
            return _invalid([("missing", ["query", "id"], "Field required", None)], where="query")
        task = None if self.forget else self.tasks.get(task_id)
        if task is None:
            return web.json_response({"id": task_id, "status": "Task not found", "result": None, "progress": None,
                                      "details": None, "preview": None})
        if task.status == "Pending":
            task.polls += 1
            if not self.never and task.polls > self.steps:
                self._finish(task)
        return web.json_response(self._status(task))

    def _finish(self, task: FakeTask) -> None:
        self.active -= 1
        self.active_of[task.model] -= 1
        task.status = self.ending
        if self.ending != "Ready":
            return
        fmt = task.body.get("output_format") or SCHEMAS[task.model].default_format
        data = self.images(fmt, next(self._counter))
        self.served.append([data])
        self.results[task.id] = data
        path = f"/delivery/{task.id}/sample.{fmt}"
        self.upstream.on("GET", path, self._delivery(data, f"image/{fmt}"))
        task.sample = self.upstream.url + path

    def _status(self, task: FakeTask) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": task.id, "status": task.status, "result": None, "progress": None,
                               "details": None, "preview": None}
        if task.status == "Pending":
            doc["progress"] = 0.5
        elif task.status == "Ready":
            doc["result"] = {"sample": task.sample, "prompt": task.body.get("prompt", ""),
                             "seed": task.body.get("seed") or 1234, "start_time": 1700000000.0,
                             "end_time": 1700000002.5, "duration": 2.5}
        elif task.status in ("Request Moderated", "Content Moderated"):
            doc["details"] = {"Moderation Reasons": ["Derivative Works"]}
        elif task.status == "Error":
            doc["details"] = {"error": "Internal error while generating the image"}
        return doc

    def _delivery(self, data: bytes, content_type: str) -> Callable[[web.Request, Recorded], Any]:
        async def serve(request: web.Request, rec: Recorded) -> web.StreamResponse:
            self.deliveries.append(rec)
            if self.expired:
                return web.Response(status=403, text="Signature not valid in the specified time frame")
            return web.Response(body=data, content_type=content_type)

        return serve

    async def _credits(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if not request.headers.get("x-key"):
            return _detail(403, "Not authenticated")
        return web.json_response({"credits": 100.0 if self.credits is None else float(self.credits)})


def install(upstream: FakeUpstream, **knobs: Any) -> BlackForestLabsFake:
    """Serve the fake BFL API on ``upstream`` (see :class:`BlackForestLabsFake` for the knobs)."""
    return BlackForestLabsFake(upstream, **knobs).install()


def _detail(status: int, message: str) -> web.Response:
    return web.json_response({"detail": message}, status=status)


def _invalid(problems: list[Problem], where: str = "body") -> web.Response:
    detail = [{"type": kind, "loc": [where, *loc], "msg": msg, "input": value} for kind, loc, msg, value in problems]
    return web.json_response({"detail": detail}, status=422)


def _check(schema: Schema, body: dict[str, Any], inputs: dict[str, bytes | None]) -> list[Problem]:
    out: list[Problem] = [
        ("missing", [key], "Field required", None) for key in schema.required if body.get(key) is None]
    for key, value in body.items():
        spec = schema.fields.get(key)
        if spec is None:
            out.append(("extra_forbidden", [key], "Extra inputs are not permitted", value))
            continue
        if value is None:
            continue  # every documented field is nullable or has a default
        problem = _field(key, spec, value, inputs)
        if problem is not None:
            out.append((problem[0], [key], problem[1], value))
    return out


def _field(key: str, spec: Field, value: Any, inputs: dict[str, bytes | None]) -> tuple[str, str] | None:
    kind = spec[0]
    if kind == "str":
        return None if isinstance(value, str) else ("string_type", "Input should be a valid string")
    if kind == "bool":
        return None if isinstance(value, bool) else ("bool_type", "Input should be a valid boolean")
    if kind == "enum":
        return None if value in spec[1] else ("enum", f"Input should be {' or '.join(map(repr, spec[1]))}")
    if kind in ("int", "num", "side"):
        return _number(kind, spec, value)
    if kind == "ratio":
        m = _RATIO.fullmatch(value) if isinstance(value, str) else None
        if m is None or not 9 / 21 - 1e-9 <= int(m.group(1)) / int(m.group(2)) <= 21 / 9 + 1e-9:
            return "value_error", "Value error, aspect ratio must be between 21:9 and 9:21"
        return None
    return _image(key, value, inputs)


def _number(kind: str, spec: Field, value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int if kind in ("int", "side") else (int, float)):
        return ("int_type", "Input should be a valid integer") if kind != "num" else \
            ("float_type", "Input should be a valid number")
    lo, hi = spec[1], spec[2]
    if lo is not None and value < lo:
        return "greater_than_equal", f"Input should be greater than or equal to {lo}"
    if hi is not None and value > hi:
        return "less_than_equal", f"Input should be less than or equal to {hi}"
    if kind == "side" and value % spec[3]:
        return "multiple_of", f"Input should be a multiple of {spec[3]}"
    return None


def _image(key: str, value: Any, inputs: dict[str, bytes | None]) -> tuple[str, str] | None:
    if not isinstance(value, str):
        return "string_type", "Input should be a valid string"
    if _URL.fullmatch(value):
        inputs[key] = None
        return None
    try:
        data = base64.b64decode(value, validate=True)
    except binascii.Error:
        return "value_error", "Value error, not a valid base64 image or URL"
    if not (data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a"))
            or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
        return "value_error", "Value error, the image must be jpeg, png, webp or gif"
    inputs[key] = data
    return None
