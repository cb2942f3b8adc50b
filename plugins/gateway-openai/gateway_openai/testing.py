"""A fake of OpenAI's images API that checks requests as OpenAI documents them.

``install(upstream, prefix="/v1")`` answers ``POST {prefix}/images/generations``
and ``POST {prefix}/images/edits`` on a :class:`~gateway.testing.FakeUpstream`: a
Bearer key is required; a generation must be JSON with a ``prompt``, an edit
multipart with ``image`` (or up to 16 ``image[]``) files, a ``prompt`` and an
optional png ``mask``; ``n`` and ``size`` are checked per model, ``response_format``
is refused for the GPT image models, ``stream: true`` answers Server-Sent Events
spaced out in time, and the answer is OpenAI's shape (``url`` or ``b64_json``,
``revised_prompt`` for dall-e-3, ``usage`` for gpt-image).  Errors use OpenAI's
error body.  :func:`form_parts` reads back an edit the fake received, part by part.

Source: openai-python ``src/openai/types/image_generate_params.py``,
``image_edit_params.py``, ``image_edit_stream_event.py``, ``resources/images.py``.
"""
from __future__ import annotations

import base64
import time
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import PNG_1X1, FakeUpstream, Part, Recorded, image_events

SIZES = {
    "dall-e-2": {"256x256", "512x512", "1024x1024"},
    "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"},
}
MAX_N = {"dall-e-2": 10, "dall-e-3": 1}
#: The GPT image family: the three standard sizes or auto; gpt-image-2 and later any
#: WIDTHxHEIGHT divisible by 16, between 1:3 and 3:1, at most 3840x2160 (openai-python's
#: `image_generate_params.py`).
GPT_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}


def gpt_image(model: str) -> bool:
    return model.startswith(("gpt-image-", "chatgpt-image-"))


def size_error(model: str, size: str) -> str | None:
    """Why ``size`` is not one ``model`` takes, or None."""
    if not gpt_image(model):
        return None if size in SIZES[model] else f"Supported values are: {sorted(SIZES[model])}."
    if not model.startswith("gpt-image-2"):
        return None if size in GPT_SIZES else f"Supported values are: {sorted(GPT_SIZES)}."
    if size == "auto":
        return None
    w, _, h = size.partition("x")
    if not (w.isdigit() and h.isdigit()) or int(w) % 16 or int(h) % 16:
        return "Width and height must both be divisible by 16."
    w_, h_ = int(w), int(h)
    if max(w_, h_) > 3 * min(w_, h_):
        return "The aspect ratio must be between 1:3 and 3:1."
    if max(w_, h_) > 3840 or w_ * h_ > 3840 * 2160:
        return "The maximum supported resolution is 3840x2160."
    return None


def error(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
          code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status)


#: Seconds between the events of a streamed answer (a buffering relay would deliver them together).
STREAM_GAP = 0.2


async def stream_events(request: web.Request, body: dict[str, Any], image: bytes,
                        kind: str = "image_generation") -> web.StreamResponse:
    """``stream: true``: ``partial_images`` partial events, then the completed one, spaced out
    (``kind``: ``image_generation`` or ``image_edit``)."""
    return await image_events(request, body, image, kind=kind, gap=STREAM_GAP, headers={"x-request-id": "req_fake"},
                              usage={"input_tokens": 10, "output_tokens": 100, "total_tokens": 110})


def make_handler(image: bytes = PNG_1X1, url_base: str = "https://oaidalleapiprodscus.blob.core.windows.net/private/img"):
    async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= 7:
            return error(401, "You didn't provide an API key.", param=None, code=None)
        if not request.content_type == "application/json":
            return error(400, "Invalid content type; expected application/json")
        try:
            body: dict[str, Any] = msgspec.json.decode(rec.body)
        except msgspec.DecodeError:
            return error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return error(400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
        if "content_policy" in body["prompt"]:
            return error(400, "Your request was rejected as a result of our safety system.",
                         code="content_policy_violation")
        model = body.get("model", "dall-e-2")
        if model not in SIZES and not gpt_image(model):
            return error(404, f"The model '{model}' does not exist.", code="model_not_found")
        n = body.get("n", 1)
        max_n = MAX_N.get(model, 10)
        if not isinstance(n, int) or not 1 <= n <= max_n:
            return error(400, f"Invalid 'n': must be between 1 and {max_n}.", param="n", code="invalid_value")
        size = body.get("size", "1024x1024")
        problem = size_error(model, size) if isinstance(size, str) else "Expected a string."
        if problem is not None:
            return error(400, f"Invalid value: '{size}'. {problem}", param="size", code="invalid_value")
        if body.get("stream") is True:
            if not gpt_image(model):
                return error(400, "Streaming is only supported for the GPT image models.", param="stream",
                             code="invalid_value")
            partial = body.get("partial_images", 0)
            if not isinstance(partial, int) or not 0 <= partial <= 3:
                return error(400, "Invalid 'partial_images': must be between 0 and 3.", param="partial_images",
                             code="invalid_value")
            if "response_format" in body:
                return error(400, "Unknown parameter: 'response_format'.", param="response_format",
                             code="unknown_parameter")
            return await stream_events(request, body, image)
        fmt = body.get("response_format", "url")
        if gpt_image(model) and "response_format" in body:
            return error(400, "Unknown parameter: 'response_format'.", param="response_format",
                         code="unknown_parameter")
        data = []
        for i in range(n):
            item: dict[str, Any]
            if gpt_image(model) or fmt == "b64_json":
                item = {"b64_json": base64.b64encode(image).decode()}
            else:
                item = {"url": f"{url_base}-{i}.png?sig=abc"}
            if model == "dall-e-3":
                item["revised_prompt"] = "A revised " + body["prompt"]
            data.append(item)
        out: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image(model):
            out["usage"] = {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110}
            for key in ("background", "output_format", "quality", "size"):
                if key in body:
                    out[key] = body[key]
        return web.json_response(out, headers={"x-request-id": "req_fake", "openai-processing-ms": "12"})

    return handle


#: Edits: GPT image models take up to 16 images (png, webp, jpg, each under 50 MB);
#: dall-e-2 one square png under 4 MB.  The mask is one png.
MAX_EDIT_IMAGES = 16
_MAGIC = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpg", b"RIFF": "webp"}


async def form_parts(rec: Recorded) -> list[Part]:
    """The parts of a multipart body the fake received (``upstream.last``), in order, with their bytes."""
    return await rec.form()


def make_edit_handler(image: bytes = PNG_1X1):
    async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= 7:
            return error(401, "You didn't provide an API key.")
        if request.content_type != "multipart/form-data":
            return error(400, "Invalid content type; expected multipart/form-data")
        try:
            parts = await form_parts(rec)
        except (ValueError, AssertionError) as e:
            return error(400, f"Could not parse multipart form: {e}")
        fields = {p.name: p.data.decode() for p in parts if p.filename is None}
        images = [p for p in parts if p.name in ("image", "image[]")]
        masks = [p for p in parts if p.name == "mask"]
        if not images:
            return error(400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter")
        if "prompt" not in fields:
            return error(400, "Missing required parameter: 'prompt'.", param="prompt",
                         code="missing_required_parameter")
        model = fields.get("model", "gpt-image-1.5")
        if model not in SIZES and not gpt_image(model):
            return error(404, f"The model '{model}' does not exist.", code="model_not_found")
        if model == "dall-e-3":
            return error(400, "Invalid value: 'dall-e-3'. Edits support dall-e-2 and the GPT image models.",
                         param="model", code="invalid_value")
        limit = MAX_EDIT_IMAGES if gpt_image(model) else 1
        if len(images) > limit:
            return error(400, f"Invalid 'image': at most {limit} images.", param="image", code="invalid_value")
        for p in images + masks:
            if not any(p.data.startswith(m) for m in _MAGIC) or (p.name == "mask" or not gpt_image(model)) \
                    and not p.data.startswith(b"\x89PNG"):
                return error(400, f"Invalid image file for '{p.name}': unsupported format.", param=p.name,
                             code="invalid_image_format")
        if gpt_image(model) and "response_format" in fields:
            return error(400, "Unknown parameter: 'response_format'.", param="response_format",
                         code="unknown_parameter")
        if "input_fidelity" in fields and (not gpt_image(model) or model.startswith("gpt-image-1-mini")):
            return error(400, f"Unknown parameter: 'input_fidelity' for model {model}.", param="input_fidelity",
                         code="unknown_parameter")
        n = int(fields.get("n", "1"))
        if not 1 <= n <= 10:
            return error(400, "Invalid 'n': must be between 1 and 10.", param="n", code="invalid_value")
        size = fields.get("size", "auto" if gpt_image(model) else "1024x1024")
        problem = size_error(model, size)
        if problem is not None:
            return error(400, f"Invalid value: '{size}'. {problem}", param="size", code="invalid_value")
        if fields.get("stream") == "true":
            if not gpt_image(model):
                return error(400, "Streaming is only supported for the GPT image models.", param="stream")
            body = {k: v for k, v in fields.items() if k != "stream"}
            body["partial_images"] = int(body.get("partial_images", "0"))
            return await stream_events(request, body, image, kind="image_edit")
        b64 = base64.b64encode(image).decode()
        data = [{"b64_json": b64} for _ in range(n)]
        if not gpt_image(model) and fields.get("response_format", "url") == "url":
            data = [{"url": f"https://oaidalleapiprodscus.blob.core.windows.net/private/edit-{i}.png?sig=abc"}
                    for i in range(n)]
        out: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image(model):
            out["usage"] = {"input_tokens": 10 + 5 * len(images), "output_tokens": 100, "total_tokens": 115,
                            "input_tokens_details": {"image_tokens": 5 * len(images), "text_tokens": 10}}
        return web.json_response(out, headers={"x-request-id": "req_fake_edit"})

    return handle


def install(upstream: FakeUpstream, prefix: str = "/v1", **kw: Any) -> FakeUpstream:
    """Serve OpenAI's generations and edits endpoints on ``upstream`` under ``prefix``."""
    upstream.on("POST", f"{prefix}/images/edits", make_edit_handler(kw.get("image", PNG_1X1)))
    return upstream.on("POST", f"{prefix}/images/generations", make_handler(**kw))
