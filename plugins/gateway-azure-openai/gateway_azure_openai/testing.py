"""A fake of Azure OpenAI's images API that checks requests as Azure documents them.

Sources: Azure OpenAI "How to use image generation models" and the images
API reference ("Image generations - Create", ``generateImagesResponse``,
``dalleErrorResponse``), and the v1 API lifecycle page.

``install(upstream, root="/contoso/openai")`` puts an :class:`AzureOpenAIFake`
on a :class:`~gateway.testing.FakeUpstream`; it serves, below ``root`` (what
``https://contoso.openai.azure.com/openai`` is on the real service):

- ``POST /deployments/{deployment}/images/generations?api-version=...``: the
  dated API; an unknown ``api-version`` is Azure's 404, an unknown deployment
  its ``DeploymentNotFound``;
- ``POST /v1/images/generations``: the v1 API, no ``api-version`` (or
  ``preview``), the deployment named by the body's ``model``.

Auth is ``api-key: <key>`` or ``Authorization: Bearer <token>``.  The body must
be JSON with a ``prompt``; ``n``, ``size``, ``quality``, ``style``,
``response_format`` and ``output_format`` are checked against the deployment's
model.  A prompt containing ``content_policy`` is refused the way Azure refuses
it.  DALL-E 3 answers with links on Azure's image storage (or base64), the
gpt-image models with base64 and ``usage``.
"""
from __future__ import annotations

import base64
import itertools
import time
from typing import Any

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Recorded
from gateway.testing.provider_contract import make_png

__all__ = ["IMAGE_HOST", "AzureOpenAIFake", "content_policy_refusal", "filter_results", "install"]

DATED_VERSIONS = frozenset({"2024-02-01", "2024-06-01", "2024-10-21", "2025-04-01-preview"})
GPT_IMAGE_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
SIZES = {
    "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"},
    "gpt-image-1": GPT_IMAGE_SIZES,
    "gpt-image-1-mini": GPT_IMAGE_SIZES,
    "gpt-image-1.5": GPT_IMAGE_SIZES,
}
QUALITIES = {"dall-e-3": {"standard", "hd"}}
GPT_IMAGE_QUALITIES = {"low", "medium", "high", "auto"}
IMAGE_HOST = "https://dalleprodsec.blob.core.windows.net"
SAFE = {"filtered": False, "severity": "safe"}
BAD_KEY = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
           "for an active subscription and use a correct regional API endpoint for your resource.")
BAD_TOKEN = ("Unauthorized. Access token is missing, invalid, audience is incorrect "
             "(https://cognitiveservices.azure.com), or have expired.")
NO_DEPLOYMENT = ("The API deployment for this resource does not exist. If you created the deployment within the "
                 "last 5 minutes, please wait a moment and try again.")
REFUSED = ("Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
           "allowed by our safety system.")


def error(status: int, code: str, message: str, **more: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **more}}, status=status)


def bad_request(message: str, param: str | None = None) -> web.Response:
    return error(400, "invalid_request_error", message, param=param, type="invalid_request_error")


def filter_results(**flagged: str) -> dict[str, Any]:
    out: dict[str, Any] = {k: dict(SAFE) for k in ("hate", "self_harm", "sexual", "violence")}
    for name, severity in flagged.items():
        out[name] = {"filtered": True, "severity": severity}
    return out


def content_policy_refusal() -> web.Response:
    """A refused prompt, as Azure's images API answers it (``dalleErrorResponse``)."""
    return web.json_response({"error": {
        "code": "content_policy_violation", "message": REFUSED, "type": "invalid_request_error", "param": None,
        "inner_error": {"code": "ResponsibleAIPolicyViolation",
                        "content_filter_results": filter_results(violence="medium"),
                        "revised_prompt": "A scene the filter refused"},
    }}, status=400)


class AzureOpenAIFake:
    """One Azure OpenAI resource on a :class:`FakeUpstream`."""

    def __init__(self, upstream: FakeUpstream, *, root: str = "/contoso/openai", key: str = "azure-key-1",
                 token: str | None = "entra-token-1",
                 deployments: dict[str, str | None] | None = None) -> None:
        self.upstream = upstream
        self.root = root
        self.key = key
        self.token = token
        #: deployment name -> model; None answers DeploymentNotFound.
        self.deployments = deployments if deployments is not None else {
            "img": "gpt-image-1", "mini": "gpt-image-1-mini", "dalle": "dall-e-3", "gone": None,
        }
        self._images = itertools.count(1)
        #: Every image answered, in order.
        self.served: list[bytes] = []

    def install(self) -> AzureOpenAIFake:
        for name in self.deployments:
            self.upstream.on("POST", f"{self.root}/deployments/{name}/images/generations", self._dated)
        self.upstream.on("POST", f"{self.root}/v1/images/generations", self._v1)
        return self

    def dated_path(self, deployment: str) -> str:
        return f"{self.root}/deployments/{deployment}/images/generations"

    # -- the two APIs ----------------------------------------------------------------
    async def _dated(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if request.query.get("api-version") not in DATED_VERSIONS:
            return error(404, "404", "Resource not found")
        deployment = rec.path.split("/")[-3]
        return self._generate(request, rec, deployment, self.deployments.get(deployment))

    async def _v1(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if request.query.get("api-version", "preview") != "preview":
            return bad_request("api-version is not allowed on the v1 API; use preview or leave it out")
        body = _json(rec)
        deployment = body.get("model") if isinstance(body, dict) else None
        if not isinstance(deployment, str):
            return bad_request("Missing required parameter: 'model'.", "model")
        return self._generate(request, rec, deployment, self.deployments.get(deployment))

    def _generate(self, request: web.Request, rec: Recorded, deployment: str, model: str | None) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        if model is None:
            return error(404, "DeploymentNotFound", NO_DEPLOYMENT)
        if request.content_type != "application/json":
            return bad_request(f"Unsupported content type {request.content_type!r}; expected application/json")
        body = _json(rec)
        if not isinstance(body, dict):
            return bad_request("The request body is not valid JSON.")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return bad_request("Missing required parameter: 'prompt'.", "prompt")
        if "content_policy" in prompt:
            return content_policy_refusal()
        problem = _check_parameters(model, body)
        if problem is not None:
            return problem
        return self._answer(model, body)

    def _auth(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("api-key")
        auth = request.headers.get("Authorization")
        if key is not None:
            return None if key == self.key else error(401, "401", BAD_KEY)
        if auth is not None:
            ok = self.token is not None and auth == f"Bearer {self.token}"
            return None if ok else error(401, "401", BAD_TOKEN)
        return error(401, "401", BAD_KEY)

    def _answer(self, model: str, body: dict[str, Any]) -> web.Response:
        n = body.get("n", 1)
        data = []
        for _ in range(n):
            image = make_png(next(self._images))
            self.served.append(image)
            if model == "dall-e-3":
                item: dict[str, Any] = {"revised_prompt": "A revised " + body["prompt"],
                                        "prompt_filter_results": filter_results(),
                                        "content_filter_results": filter_results()}
                if body.get("response_format", "url") == "url":
                    item["url"] = f"{IMAGE_HOST}/private/images/{len(self.served):04d}/generated_00.png?se=x&sig=y"
                else:
                    item["b64_json"] = base64.b64encode(image).decode()
            else:
                item = {"b64_json": base64.b64encode(image).decode()}
            data.append(item)
        out: dict[str, Any] = {"created": int(time.time()), "data": data}
        if model != "dall-e-3":
            out["usage"] = {"input_tokens": 12, "output_tokens": 4160, "total_tokens": 4172,
                            "input_tokens_details": {"image_tokens": 0, "text_tokens": 12}}
        return web.json_response(out, headers={"apim-request-id": "fake-apim-1", "x-ms-region": "Sweden Central"})


def install(upstream: FakeUpstream, **options: Any) -> AzureOpenAIFake:
    """One Azure OpenAI resource answering on ``upstream``; ``options`` as :class:`AzureOpenAIFake`
    takes them (``root``, ``key``, ``token``, ``deployments``)."""
    return AzureOpenAIFake(upstream, **options).install()


def _json(rec: Recorded) -> Any:
    try:
        return msgspec.json.decode(rec.body)
    except msgspec.DecodeError:
        return None


def _check_parameters(model: str, body: dict[str, Any]) -> web.Response | None:
    gpt_image = model.startswith("gpt-image")
    n = body.get("n", 1)
    top = 1 if model == "dall-e-3" else 10
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= top:
        return bad_request(f"Invalid 'n': must be between 1 and {top} for {model}.", "n")
    size = body.get("size")
    if size is not None and size not in SIZES[model]:
        return bad_request(f"Invalid value: '{size}'. Supported values are: {sorted(SIZES[model])}.", "size")
    quality = body.get("quality")
    qualities = GPT_IMAGE_QUALITIES if gpt_image else QUALITIES[model]
    if quality is not None and quality not in qualities:
        return bad_request(f"Invalid value: '{quality}'. Supported values are: {sorted(qualities)}.", "quality")
    if "style" in body and (gpt_image or body["style"] not in ("vivid", "natural")):
        return bad_request(f"Invalid 'style' for {model}.", "style")
    if "response_format" in body and (gpt_image or body["response_format"] not in ("url", "b64_json")):
        return bad_request(f"'response_format' is not supported for {model}.", "response_format")
    if "output_format" in body and (not gpt_image or body["output_format"] not in ("png", "jpeg")):
        return bad_request("Invalid 'output_format': supported values are png and jpeg.", "output_format")
    return None
