"""The demo provider's own API: a small image service in OpenAI's images shape, run by
``gateway demo`` next to the gateway, so the gateway talks HTTP to it like to any provider.

- ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart: ``image`` or
  ``image[]``, an optional ``mask``), answering ``{"created", "data": [{"b64_json",
  "revised_prompt"}], "output_format": "png", "size", "quality", "usage"}``;
- ``GET /v1/models``;
- errors as OpenAI writes them: ``{"error": {"message", "type", "param", "code"}}``.

It needs no key (any ``Authorization`` or none).  Every call waits ``latency`` seconds (give or
take a quarter) before it answers, and fails with a 503 ``overloaded`` error at ``fail_rate``.
A prompt holding ``[fail]`` always fails that way, one holding ``[refuse]`` is refused with
``content_policy_violation``: a way to show errors and fallbacks on purpose.
"""
from __future__ import annotations

import asyncio
import base64
import random
import time
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

from gateway.demo import pictures

#: Sizes the demo models make (OpenAI's gpt-image sizes and two small ones).
SIZES = ("256x256", "512x512", "1024x1024", "1536x1024", "1024x1536")
QUALITIES = ("low", "medium", "high")
#: Images one call makes; the gateway splits a larger ``n`` into parallel calls.
MAX_N = 2
MAX_PROMPT = 4000
MAX_INPUT_IMAGES = 4
MODELS = ("demo-1",)
#: Model names the API takes: the listed ones and any ``demo-*`` (a new version works at once).
MODEL_PREFIX = "demo-"
_FIELDS = frozenset({"prompt", "model", "n", "size", "quality", "response_format", "user", "output_format"})
_encode = msgspec.json.Encoder().encode


class DemoError(Exception):
    """An answer in OpenAI's error shape."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.param, self.code = status, type_, param, code

    def response(self) -> web.Response:
        body = {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}
        headers = {"Retry-After": "1"} if self.status == 503 else None
        return web.Response(status=self.status, body=_encode(body), content_type="application/json",
                            headers=headers)


class DemoApi:
    """The fake image service: ``latency`` seconds per call, failing at ``fail_rate`` (0 to 1)."""

    def __init__(self, latency: float = 2.0, fail_rate: float = 0.0, rng: random.Random | None = None) -> None:
        self.latency = latency
        self.fail_rate = fail_rate
        self.rng = rng or random.Random()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_errors])
        app.router.add_post("/v1/images/generations", self.generations)
        app.router.add_post("/v1/images/edits", self.edits)
        app.router.add_get("/v1/models", self.models)
        return app

    # -- routes ------------------------------------------------------------------------
    async def generations(self, request: web.Request) -> web.Response:
        if not request.content_type.endswith("json"):
            raise DemoError(400, "Send the request as JSON (Content-Type: application/json).")
        try:
            body = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            raise DemoError(400, "The body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise DemoError(400, "The body must be a JSON object.")
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise DemoError(400, f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0],
                            code="unknown_parameter")
        params = _params(body)
        await self._work(params["prompt"])
        width, height = params["width"], params["height"]
        label = f"{params['model']} · {params['size']}"
        images = await asyncio.gather(*(
            asyncio.to_thread(pictures.generate, params["prompt"], width, height, index=i,
                              label=f"{label} · {i + 1}/{params['n']}")
            for i in range(params["n"])))
        return _answer(params, images)

    async def edits(self, request: web.Request) -> web.Response:
        if request.content_type != "multipart/form-data":
            raise DemoError(400, "Send an edit as multipart/form-data.")
        fields: dict[str, Any] = {}
        images: list[bytes] = []
        mask: bytes | None = None
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise DemoError(400, "Nested multipart parts are not accepted.")
            name = part.name or ""
            if name in ("image", "image[]"):
                images.append(bytes(await part.read()))
            elif name == "mask":
                mask = bytes(await part.read())
            elif name in _FIELDS:
                fields[name] = await part.text()
            else:
                raise DemoError(400, f"Unrecognized request argument supplied: {name}", param=name,
                                code="unknown_parameter")
        if not images:
            raise DemoError(400, "An edit needs at least one `image`.", param="image")
        if len(images) > MAX_INPUT_IMAGES:
            raise DemoError(400, f"At most {MAX_INPUT_IMAGES} images per edit.", param="image")
        if "n" in fields:
            fields["n"] = _int(fields["n"], "n")
        try:
            sources = [pictures.size_of(data) for data in images]
            if mask is not None and pictures.size_of(mask) != sources[0]:
                raise DemoError(400, "The mask must have the size of the first image.", param="mask")
        except ValueError as e:
            raise DemoError(400, f"Invalid image: {e}.", param="image") from None
        if fields.get("size") in (None, "auto"):
            own = "x".join(map(str, sources[0]))
            fields["size"] = own if own in SIZES else "1024x1024"
        params = _params(fields)
        await self._work(params["prompt"])
        label = f"{params['model']} edit · {params['size']}"
        out = await asyncio.gather(*(
            asyncio.to_thread(pictures.edit, images[0], params["prompt"], params["width"], params["height"],
                              mask=mask, index=i, label=f"{label} · {i + 1}/{params['n']}")
            for i in range(params["n"])))
        return _answer(params, out)

    async def models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "gateway-demo"} for m in MODELS]
        return web.json_response({"object": "list", "data": data}, dumps=lambda o: _encode(o).decode())

    # -- the simulated work ------------------------------------------------------------
    async def _work(self, prompt: str) -> None:
        """Wait as a real model would, then fail when told to."""
        if self.latency > 0:
            await asyncio.sleep(self.latency * self.rng.uniform(0.75, 1.25))
        if "[refuse]" in prompt:
            raise DemoError(400, "Your request was rejected by the demo's safety system (the prompt says [refuse]).",
                            type_="image_generation_user_error", code="content_policy_violation")
        if "[fail]" in prompt or (self.fail_rate > 0 and self.rng.random() < self.fail_rate):
            raise DemoError(503, "The demo provider is overloaded (a simulated failure). Try again.",
                            type_="server_error", code="overloaded")


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every answer in OpenAI's shape, an unknown path included."""
    try:
        return await handler(request)
    except DemoError as e:
        return e.response()
    except web.HTTPRequestEntityTooLarge:
        return DemoError(413, "The request is too large.").response()
    except web.HTTPException as e:
        if e.status >= 400:
            return DemoError(e.status, f"{request.method} {request.path}: {e.reason}",
                             code="not_found" if e.status == 404 else None).response()
        raise


def _params(body: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters checked as the API documents them (400 naming the bad one)."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DemoError(400, "`prompt` is required: a non-empty string.", param="prompt")
    if len(prompt) > MAX_PROMPT:
        raise DemoError(400, f"`prompt` is longer than {MAX_PROMPT} characters.", param="prompt")
    model = body.get("model", MODELS[0])
    if not isinstance(model, str) or not model.startswith(MODEL_PREFIX):
        raise DemoError(400, f"The model {model!r} does not exist; the demo has {', '.join(MODELS)}.",
                        param="model", code="model_not_found")
    n = body.get("n", 1)
    if type(n) is not int or not 1 <= n <= MAX_N:
        raise DemoError(400, f"`n` must be an integer from 1 to {MAX_N}.", param="n")
    size = body.get("size", "1024x1024")
    if size == "auto":
        size = "1024x1024"
    if size not in SIZES:
        raise DemoError(400, f"`size` must be one of {', '.join(SIZES)} or auto.", param="size")
    quality = body.get("quality", "medium")
    if quality == "auto":
        quality = "medium"
    if quality not in QUALITIES:
        raise DemoError(400, f"`quality` must be one of {', '.join(QUALITIES)} or auto.", param="quality")
    if body.get("response_format", "b64_json") != "b64_json":
        raise DemoError(400, "`response_format` must be b64_json: the demo answers base64 only.",
                        param="response_format")
    if body.get("output_format", "png") != "png":
        raise DemoError(400, "`output_format` must be png.", param="output_format")
    width, height = map(int, size.split("x"))
    return {"prompt": prompt, "model": model, "n": n, "size": size, "quality": quality,
            "width": width, "height": height}


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DemoError(400, f"`{name}` must be an integer.", param=name) from None


def _answer(params: dict[str, Any], images: list[bytes]) -> web.Response:
    """OpenAI's images answer, with made-up token usage (words of the prompt, pixels made)."""
    prompt_tokens = len(params["prompt"].split())
    output_tokens = len(images) * params["width"] * params["height"] // 4096
    body = {
        "created": int(time.time()),
        "data": [{"b64_json": _b64(png), "revised_prompt": params["prompt"]} for png in images],
        "output_format": "png", "size": params["size"], "quality": params["quality"],
        "usage": {"input_tokens": prompt_tokens, "output_tokens": output_tokens,
                  "total_tokens": prompt_tokens + output_tokens,
                  "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0}},
    }
    return web.Response(body=_encode(body), content_type="application/json")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
