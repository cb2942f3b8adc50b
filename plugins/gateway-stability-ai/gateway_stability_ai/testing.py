"""A fake of Stability AI's image APIs that checks requests as Stability documents them.

``install(upstream)`` answers on a :class:`~gateway.testing.FakeUpstream`:

- ``POST /v1/generation/{engine}/text-to-image`` for ``stable-diffusion-xl-1024-v1-0``
  and ``stable-diffusion-v1-6``: a Bearer key, a JSON body with ``text_prompts``,
  each field's documented range (engine dimensions, pixel count, ``samples``
  1-10 and only with ``Accept: application/json``, ...).  ``Accept: image/png``
  answers the PNG bytes with ``Finish-Reason`` and ``Seed`` headers, as the
  real API does; otherwise ``{"artifacts": [{"base64", "seed", "finishReason"}]}``.
- ``POST /v2beta/stable-image/generate/{core,ultra,sd3}``: a Bearer key, a
  ``multipart/form-data`` body whose fields are the endpoint's documented ones
  with their documented values; sd3 ``mode=image-to-image`` needs ``image`` and
  ``strength`` (and takes no ``aspect_ratio``), ultra needs ``strength`` with an ``image``.
- ``POST /v2beta/stable-image/edit/{inpaint,erase,outpaint,search-and-replace,
  search-and-recolor,remove-background}``: the same, with each route's fields
  (``search_prompt``, ``select_prompt``, outpaint's directions, ``grow_mask`` ...),
  ``mask`` files only on inpaint and erase, and the input image's documented
  limits (sides, pixel count, aspect ratio) read from its header.
  ``Accept: application/json`` answers ``{"image", "finish_reason", "seed"}``;
  ``image/*`` (the default) the bytes.  A body over 10 MiB is a 413.

Errors use Stability's bodies: v1 ``{"id", "name", "message"}``, v2beta
``{"id", "name", "errors": [...]}``.  The fake is stricter than Stability in one
way: a field the endpoint does not document is a 400, so a gateway sending
anything else is caught.  Prompts carrying :data:`REFUSE` are refused on
content grounds (v1 ``invalid_prompts``, v2beta 403 ``content_moderation``);
:data:`BLUR` gives ``CONTENT_FILTERED``; :data:`FAIL` a v1 ``ERROR`` artifact.
What every request carried is in ``upstream.requests`` (``await rec.form()``
gives a multipart body's parts in order, with their bytes).

Field rules follow Stability's OpenAPI document (https://api.stability.ai/v1
and v2beta reference, https://platform.stability.ai/docs/api-reference).
"""
from __future__ import annotations

import base64
import itertools
import struct
import uuid
import zlib
from collections.abc import Callable, Mapping
from email import policy
from email.parser import BytesParser
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing import PNG_1X1
from gateway_stability_ai.images import probe
from gateway_stability_ai.models import (
    ASPECT_RATIOS,
    EDIT_IMAGE,
    EDIT_IMAGE_SHAPED,
    MAX_REQUEST_BYTES,
    OUTPAINT_DIRECTIONS,
    OUTPUT_FORMATS,
    REMOVE_BACKGROUND_IMAGE,
    SD3_IMAGE,
    SD3_MODELS,
    SDXL_SIZES,
    STYLE_PRESETS,
    ULTRA_IMAGE,
    V2_MAX_SEED,
    ImageRules,
)

REFUSE = "[refuse]"
BLUR = "[blur]"
FAIL = "[fail]"

V1_ENGINES = ("stable-diffusion-xl-1024-v1-0", "stable-diffusion-v1-6")
V2_ENDPOINTS = ("core", "ultra", "sd3")
SAMPLERS = ("DDIM", "DDPM", "K_DPMPP_2M", "K_DPMPP_2S_ANCESTRAL", "K_DPM_2", "K_DPM_2_ANCESTRAL", "K_EULER",
            "K_EULER_ANCESTRAL", "K_HEUN", "K_LMS")
CLIP_GUIDANCE_PRESETS = ("FAST_BLUE", "FAST_GREEN", "NONE", "SIMPLE", "SLOW", "SLOWER", "SLOWEST")
V1_FIELDS = frozenset({"text_prompts", "height", "width", "cfg_scale", "clip_guidance_preset", "sampler", "samples",
                       "seed", "steps", "style_preset", "extras"})
V2_FIELDS = {
    "core": frozenset({"prompt", "aspect_ratio", "negative_prompt", "seed", "style_preset", "output_format"}),
    "ultra": frozenset({"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format", "image", "strength",
                        "style_preset"}),
    "sd3": frozenset({"prompt", "mode", "image", "strength", "aspect_ratio", "model", "seed", "output_format",
                      "style_preset", "negative_prompt", "cfg_scale"}),
}
#: File fields of each generate endpoint.
V2_FILES = {"core": frozenset(), "ultra": frozenset({"image"}), "sd3": frozenset({"image"})}
EDIT_ENDPOINTS = ("inpaint", "erase", "outpaint", "search-and-replace", "search-and-recolor", "remove-background")
#: Text fields of each edit route (its file fields: ``image``, and ``mask`` where :data:`EDIT_FILES` says).
EDIT_FIELDS = {
    "inpaint": frozenset({"prompt", "negative_prompt", "grow_mask", "seed", "output_format", "style_preset"}),
    "erase": frozenset({"grow_mask", "seed", "output_format"}),
    "outpaint": frozenset({*OUTPAINT_DIRECTIONS, "creativity", "prompt", "seed", "output_format", "style_preset"}),
    "search-and-replace": frozenset({"prompt", "search_prompt", "negative_prompt", "grow_mask", "seed",
                                     "output_format", "style_preset"}),
    "search-and-recolor": frozenset({"prompt", "select_prompt", "negative_prompt", "grow_mask", "seed",
                                     "output_format", "style_preset"}),
    "remove-background": frozenset({"output_format"}),
}
EDIT_FILES = {name: frozenset({"image", "mask"} if name in ("inpaint", "erase") else {"image"})
              for name in EDIT_ENDPOINTS}
#: Edit routes whose ``prompt`` is required (outpaint's is optional; erase and remove-background take none).
PROMPTED_EDITS = frozenset({"inpaint", "search-and-replace", "search-and-recolor"})
EDIT_IMAGE_RULES = {
    "inpaint": EDIT_IMAGE, "erase": EDIT_IMAGE, "outpaint": EDIT_IMAGE_SHAPED,
    "search-and-replace": EDIT_IMAGE_SHAPED, "search-and-recolor": EDIT_IMAGE_SHAPED,
    "remove-background": REMOVE_BACKGROUND_IMAGE,
}
#: Stand-ins for the other output formats (enough for the gateway to tell the type).
FORMAT_BYTES = {"jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-jpeg", "webp": b"RIFF\x10\x00\x00\x00WEBPVP8 fake"}

ImageFactory = Callable[[], bytes]


# -- v1 ---------------------------------------------------------------------------------

def v1_error(status: int, name: str, message: str) -> Reply:
    return Reply(status, json={"id": uuid.uuid4().hex, "name": name, "message": message})


def check_v1(engine: str, rec: Recorded) -> tuple[Reply | None, dict[str, Any]]:
    """An error reply for a request Stability's v1 API would refuse (else None), and the body."""
    if engine not in V1_ENGINES:
        return v1_error(404, "not_found", f"The specified engine (ID {engine}) was not found."), {}
    auth = rec.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or len(auth) <= 7:
        return v1_error(401, "unauthorized", "missing authorization header"), {}
    if rec.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
        return v1_error(400, "bad_request", "content-type: must be application/json"), {}
    accept = _accept(rec, "application/json")
    if accept not in ("application/json", "image/png"):
        return v1_error(400, "bad_request", f"accept: must be application/json or image/png, not {accept!r}"), {}
    try:
        body = msgspec.json.decode(rec.body)
    except msgspec.DecodeError:
        return v1_error(400, "bad_request", "body: not valid JSON"), {}
    if not isinstance(body, dict):
        return v1_error(400, "bad_request", "body: must be an object"), {}
    problem = _v1_fields(engine, body, accept)
    if problem is not None:
        return problem, body
    texts = [p["text"] for p in body["text_prompts"]]
    if any(REFUSE in t for t in texts):
        return v1_error(400, "invalid_prompts", "One or more prompts contains filtered words."), body
    return None, body


def _v1_fields(engine: str, body: dict[str, Any], accept: str) -> Reply | None:
    unknown = sorted(set(body) - V1_FIELDS)
    if unknown:
        return v1_error(400, "bad_request", f"{unknown[0]}: unknown field")
    prompts = body.get("text_prompts")
    if not isinstance(prompts, list) or not prompts:
        return v1_error(400, "bad_request", "text_prompts: is required")
    for i, p in enumerate(prompts):
        if not isinstance(p, dict) or set(p) - {"text", "weight"} or not isinstance(p.get("text"), str):
            return v1_error(400, "bad_request", f"text_prompts[{i}]: must be {{text, weight?}}")
        if len(p["text"]) > 2000:
            return v1_error(400, "bad_request", f"text_prompts[{i}].text: at most 2000 characters")
        if "weight" in p and not _number(p["weight"]):
            return v1_error(400, "bad_request", f"text_prompts[{i}].weight: must be a number")
    default = 1024 if engine == "stable-diffusion-xl-1024-v1-0" else 512
    width, height = body.get("width", default), body.get("height", default)
    for name, side in (("width", width), ("height", height)):
        if not _int(side) or side < 128 or side % 64:
            return v1_error(400, "invalid_height_or_width", "Height and width must be specified in increments of 64")
    if engine == "stable-diffusion-xl-1024-v1-0" and f"{width}x{height}" not in SDXL_SIZES:
        return v1_error(400, "invalid_height_or_width",
                        f"for stable-diffusion-xl-1024-v1-0 width x height must be one of {', '.join(SDXL_SIZES)}")
    if engine == "stable-diffusion-v1-6":
        if not (320 <= width <= 1536 and 320 <= height <= 1536):
            return v1_error(400, "invalid_height_or_width", "for stable-diffusion-v1-6 sides must be 320 to 1536")
        if not 262_144 <= width * height <= 1_048_576:
            return v1_error(400, "invalid_pixel_count",
                            "Incorrect number of pixels specified: 262,144 <= height * width <= 1,048,576")
    samples = body.get("samples", 1)
    if not _int(samples) or not 1 <= samples <= 10:
        return v1_error(400, "bad_request", "samples: must be 1 to 10")
    if samples > 1 and accept != "application/json":
        return v1_error(400, "invalid_samples",
                        "Sample count may only be greater than 1 when the accept header is set to application/json")
    rules: list[tuple[str, Callable[[Any], bool], str]] = [
        ("cfg_scale", lambda v: _number(v) and 0 <= v <= 35, "a number from 0 to 35"),
        ("steps", lambda v: _int(v) and 10 <= v <= 150, "a whole number from 10 to 150"),
        ("seed", lambda v: _int(v) and 0 <= v <= 4294967295, "a whole number from 0 to 4294967295"),
        ("sampler", lambda v: v in SAMPLERS, f"one of {', '.join(SAMPLERS)}"),
        ("clip_guidance_preset", lambda v: v in CLIP_GUIDANCE_PRESETS, f"one of {', '.join(CLIP_GUIDANCE_PRESETS)}"),
        ("style_preset", lambda v: v in STYLE_PRESETS, f"one of {', '.join(STYLE_PRESETS)}"),
        ("extras", lambda v: isinstance(v, dict), "an object"),
    ]
    for name, ok, what in rules:
        if name in body and not ok(body[name]):
            return v1_error(400, "bad_request", f"{name}: must be {what}")
    return None


def v1_answer(rec: Recorded, body: dict[str, Any], images: list[bytes]) -> Reply:
    """The v1 success answer for a request that passed :func:`check_v1`, carrying ``images``."""
    texts = " ".join(p["text"] for p in body["text_prompts"])
    reason = "CONTENT_FILTERED" if BLUR in texts else "ERROR" if FAIL in texts else "SUCCESS"
    first_seed = body.get("seed") or 1000
    if _accept(rec, "application/json") == "image/png":
        return Reply(body=images[0], content_type="image/png",
                     headers={"Finish-Reason": reason, "Seed": str(first_seed)})
    artifacts = [{"base64": base64.b64encode(img).decode(), "seed": first_seed + i, "finishReason": reason}
                 for i, img in enumerate(images)]
    return Reply(json={"artifacts": artifacts})


def v1_samples(body: dict[str, Any]) -> int:
    return body.get("samples", 1)


# -- v2beta -------------------------------------------------------------------------------

def v2_error(status: int, name: str, *errors: str) -> Reply:
    return Reply(status, json={"id": uuid.uuid4().hex, "name": name, "errors": list(errors)})


def parse_form(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]] | None:
    """``name -> (filename, content)`` of a multipart/form-data body; None if it is not one
    (or names a field twice)."""
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        return None
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        return None
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields:
            return None
        payload = part.get_payload(decode=True)
        fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def check_v2(endpoint: str, rec: Recorded) -> tuple[Reply | None, dict[str, str]]:
    """An error reply for a generate request Stability's v2beta API would refuse (else None), and the
    text fields.  sd3 ``mode=image-to-image`` and ultra with an ``image`` are checked as documented."""
    if endpoint not in V2_ENDPOINTS:
        return v2_error(404, "not_found", f"stable-image/generate/{endpoint}: not found"), {}
    problem, fields, files = _v2_request(rec, V2_FIELDS[endpoint], V2_FILES[endpoint])
    if problem is None:
        problem = _v2_fields(endpoint, fields) or _v2_image(endpoint, fields, files)
    return problem or _moderated(fields), fields


def _v2_fields(endpoint: str, fields: dict[str, str]) -> Reply | None:
    prompt = fields.get("prompt")
    if not prompt or len(prompt) > 10000:
        return v2_error(400, "bad_request", "prompt: is required (1 to 10000 characters)")
    choices = {"aspect_ratio": ASPECT_RATIOS, "output_format": OUTPUT_FORMATS, "style_preset": STYLE_PRESETS,
               "model": SD3_MODELS, "mode": ("text-to-image", "image-to-image")}
    for name, allowed in choices.items():
        if name in fields and fields[name] not in allowed:
            return v2_error(400, "bad_request", f"{name}: must be one of {', '.join(allowed)}")
    return _ranges(fields, [("seed", 0, V2_MAX_SEED, True), ("cfg_scale", 1, 10, False),
                            ("strength", 0, 1, False)]) or _lengths(fields, ("negative_prompt",))


def _v2_image(endpoint: str, fields: dict[str, str], files: dict[str, bytes]) -> Reply | None:
    """sd3: ``image`` and ``strength`` only, and both, for image-to-image; ultra: ``strength`` with an image."""
    if endpoint == "sd3":
        if fields.get("mode", "text-to-image") == "text-to-image":
            extra = sorted({"image", "strength"} & (set(files) | set(fields)))
            if extra:
                return v2_error(400, "bad_request", f"{extra[0]}: is only valid for image-to-image requests")
            return None
        if "aspect_ratio" in fields:
            return v2_error(400, "bad_request", "aspect_ratio: is only valid for text-to-image requests")
        if "image" not in files:
            return v2_error(400, "bad_request", "image: is required for image-to-image requests")
    if "image" not in files:
        return None
    if "strength" not in fields:
        return v2_error(400, "bad_request", "strength: is required when image is provided")
    return _image("image", files["image"], SD3_IMAGE if endpoint == "sd3" else ULTRA_IMAGE)


def check_edit(endpoint: str, rec: Recorded) -> tuple[Reply | None, dict[str, str]]:
    """An error reply for an edit Stability's v2beta API would refuse (else None), and the text fields."""
    if endpoint not in EDIT_ENDPOINTS:
        return v2_error(404, "not_found", f"stable-image/edit/{endpoint}: not found"), {}
    problem, fields, files = _v2_request(rec, EDIT_FIELDS[endpoint], EDIT_FILES[endpoint])
    if problem is None:
        problem = _edit_fields(endpoint, fields) or _edit_files(endpoint, files)
    return problem or _moderated(fields), fields


def _edit_fields(endpoint: str, fields: dict[str, str]) -> Reply | None:
    required = {"search_prompt", "select_prompt", *(("prompt",) if endpoint in PROMPTED_EDITS else ())}
    for name in sorted(required & EDIT_FIELDS[endpoint]):
        if not fields.get(name):
            return v2_error(400, "bad_request", f"{name}: is required")
    problem = _lengths(fields, ("prompt", "negative_prompt", "search_prompt", "select_prompt"))
    if problem is not None:
        return problem
    formats = ("png", "webp") if endpoint == "remove-background" else OUTPUT_FORMATS
    for name, allowed in (("output_format", formats), ("style_preset", STYLE_PRESETS)):
        if name in fields and fields[name] not in allowed:
            return v2_error(400, "bad_request", f"{name}: must be one of {', '.join(allowed)}")
    grow = 100 if endpoint == "inpaint" else 20
    problem = _ranges(fields, [("seed", 0, V2_MAX_SEED, True), ("grow_mask", 0, grow, True),
                               ("creativity", 0, 1, False), *((d, 0, 2000, True) for d in OUTPAINT_DIRECTIONS)])
    if problem is not None:
        return problem
    if endpoint == "outpaint" and not any(int(fields.get(d, "0")) for d in OUTPAINT_DIRECTIONS):
        return v2_error(400, "bad_request", "left, right, up, down: at least one outpaint direction must be above 0")
    return None


def _edit_files(endpoint: str, files: dict[str, bytes]) -> Reply | None:
    if "image" not in files:
        return v2_error(400, "bad_request", "image: is required")
    problem = _image("image", files["image"], EDIT_IMAGE_RULES[endpoint])
    if problem is None and "mask" in files and probe(files["mask"]) is None:
        # Any size: Stability resizes the mask to the image.
        problem = v2_error(400, "bad_request", "mask: must be a jpeg, png or webp image")
    return problem


def _v2_request(rec: Recorded, text: frozenset[str], files: frozenset[str]) -> tuple[
        Reply | None, dict[str, str], dict[str, bytes]]:
    """The checks every v2beta route shares (key, size, ``Accept``, a multipart form of known
    fields), then the form's text fields and files."""
    auth = rec.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or len(auth) <= 7:
        return v2_error(401, "unauthorized", "authorization: missing or invalid API key"), {}, {}
    if len(rec.body) > MAX_REQUEST_BYTES:
        return v2_error(413, "payload_too_large", "Your request was larger than 10MiB."), {}, {}
    accept = _accept(rec, "image/*")
    if accept not in ("image/*", "application/json"):
        return v2_error(400, "bad_request", f"accept: must be image/* or application/json, not {accept!r}"), {}, {}
    form = parse_form(rec.headers.get("Content-Type", ""), rec.body)
    if form is None:
        return v2_error(400, "bad_request", "content-type: must be multipart/form-data"), {}, {}
    unknown = sorted(set(form) - text - files)
    if unknown:
        return v2_error(400, "bad_request", f"{unknown[0]}: unknown field"), {}, {}
    for name, (filename, _) in sorted(form.items()):
        if (filename is None) == (name in files):
            return v2_error(400, "bad_request", f"{name}: must be {'a file' if name in files else 'a text field'}"), {}, {}
    fields = {k: content.decode() for k, (filename, content) in form.items() if filename is None}
    return None, fields, {k: content for k, (filename, content) in form.items() if filename is not None}


def _image(name: str, data: bytes, rules: ImageRules) -> Reply | None:
    info = probe(data)
    if info is None:
        return v2_error(400, "bad_request", f"{name}: must be a jpeg, png or webp image")
    problem = rules.problem(info.width, info.height)
    return None if problem is None else v2_error(400, "bad_request", f"{name}: {problem}")


def _ranges(fields: Mapping[str, str], rules: list[tuple[str, float, float, bool]]) -> Reply | None:
    """A 400 for the first of ``(name, lowest, highest, whole)`` present and out of its range."""
    for name, lo, hi, whole in rules:
        if name not in fields:
            continue
        try:
            value = int(fields[name]) if whole else float(fields[name])
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            what = f"a whole number from {lo:.0f} to {hi:.0f}" if whole else f"a number from {lo:g} to {hi:g}"
            return v2_error(400, "bad_request", f"{name}: must be {what}")
    return None


def _lengths(fields: Mapping[str, str], names: tuple[str, ...]) -> Reply | None:
    for name in names:
        if len(fields.get(name, "")) > 10000:
            return v2_error(400, "bad_request", f"{name}: at most 10000 characters")
    return None


def _moderated(fields: Mapping[str, str]) -> Reply | None:
    if any(REFUSE in fields.get(name, "") for name in ("prompt", "search_prompt", "select_prompt")):
        return v2_error(403, "content_moderation", "Your request was flagged by our content moderation system, "
                        "as a result your request was denied and you were not charged.")
    return None


def v2_answer(rec: Recorded, fields: Mapping[str, str], image: bytes) -> Reply:
    """The v2beta success answer for a request that passed :func:`check_v2` or :func:`check_edit`,
    carrying ``image``."""
    fmt = fields.get("output_format", "png")
    if fmt != "png":
        image = FORMAT_BYTES[fmt]
    reason = "CONTENT_FILTERED" if BLUR in fields.get("prompt", "") else "SUCCESS"
    seed = int(fields.get("seed") or 0) or 343940597
    if _accept(rec, "image/*") == "application/json":
        doc = {"image": base64.b64encode(image).decode(), "finish_reason": reason, "seed": seed}
        return Reply(body=msgspec.json.encode(doc), content_type=f"application/json; type=image/{fmt}")
    return Reply(body=image, content_type=f"image/{fmt}", headers={"finish-reason": reason, "seed": str(seed)})


def png(width: int, height: int, *, alpha: bool = False, marker: bytes = b"") -> bytes:
    """A real PNG of ``width`` x ``height`` black pixels (RGBA, fully transparent, with ``alpha``),
    with ``marker`` after its end so that files of one size can be told apart."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    channels = 4 if alpha else 3
    rows = b"".join(b"\x00" + bytes(width * channels) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b"") + marker)


# -- installing -------------------------------------------------------------------------------

def install(upstream: FakeUpstream, images: ImageFactory | None = None) -> FakeUpstream:
    """Serve the v1 engines, the v2beta generate endpoints and the v2beta edit routes on
    ``upstream``; ``images`` makes each image (default: the same 1x1 PNG)."""
    make = images or itertools.repeat(PNG_1X1).__next__

    def v1(engine: str) -> Any:
        async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
            problem, body = check_v1(engine, rec)
            reply = problem or v1_answer(rec, body, [make() for _ in range(v1_samples(body))])
            return await upstream.respond(request, reply)
        return handle

    def v2(check: Callable[[str, Recorded], tuple[Reply | None, dict[str, str]]], endpoint: str) -> Any:
        async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
            problem, fields = check(endpoint, rec)
            return await upstream.respond(request, problem or v2_answer(rec, fields, make()))
        return handle

    for engine in V1_ENGINES:
        upstream.on("POST", f"/v1/generation/{engine}/text-to-image", v1(engine))
    for endpoint in V2_ENDPOINTS:
        upstream.on("POST", f"/v2beta/stable-image/generate/{endpoint}", v2(check_v2, endpoint))
    for endpoint in EDIT_ENDPOINTS:
        upstream.on("POST", f"/v2beta/stable-image/edit/{endpoint}", v2(check_edit, endpoint))
    return upstream


def _accept(rec: Recorded, default: str) -> str:
    """The Accept header; absent or ``*/*`` means the endpoint's default."""
    accept = rec.headers.get("Accept", "*/*").strip()
    return default if accept == "*/*" else accept


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
