"""A fake of Azure OpenAI's images API that checks requests as Azure documents them.

Sources: Azure OpenAI "How to use image generation models" (MicrosoftDocs/azure-ai-docs
``articles/ai-foundry/openai/how-to/dall-e.md``), the images API reference ("Image
generations - Create", "Image generations - Edit", ``generateImagesResponse``,
``dalleErrorResponse``: ``includes/api-versions/latest-inference-preview.md``), the v1
preview reference ("Create image edit": ``includes/api-versions/new-inference-preview.md``)
and the v1 API lifecycle page.

:class:`EntraFake` and :class:`ManagedIdentityFake` (at the end) fake the endpoints the tokens
of ``azure_auth_mode`` come from.

``install(upstream, root="/contoso/openai")`` puts an :class:`AzureOpenAIFake`
on a :class:`~gateway.testing.FakeUpstream`; it serves, below ``root`` (what
``https://contoso.openai.azure.com/openai`` is on the real service):

- ``POST /deployments/{deployment}/images/generations?api-version=...``: the
  dated API; an unknown ``api-version`` is Azure's 404, an unknown deployment
  its ``DeploymentNotFound``;
- ``POST /v1/images/generations``: the v1 API, no ``api-version`` (or
  ``preview``), the deployment named by the body's ``model``;
- ``POST /deployments/{deployment}/images/edits?api-version=2025-04-01-preview``
  and ``POST /v1/images/edits``: edits, multipart, the same two ways (an older
  dated version is Azure's 404: the edit endpoint came with the GPT image models).

Auth is ``api-key: <key>`` or ``Authorization: Bearer <token>``.  A generation
must be JSON with a ``prompt``; ``n``, ``size``, ``quality``, ``style``,
``response_format`` and ``output_format`` are checked against the deployment's
model.  An edit must be multipart with 1 to 16 ``image`` / ``image[]`` files
(PNG or JPEG, each under 50 MB), at most one ``mask`` (PNG, under 4 MB) and a
``prompt``, its text fields checked as a generation's; ``input_fidelity`` is
``high`` or ``low`` and not for gpt-image-1-mini; a dall-e-3 deployment does not
edit.  ``stream: true`` (gpt-image only, ``partial_images`` 0 to 3, API version
2025-04-01-preview or the v1 API) answers Server-Sent Events spaced
:data:`STREAM_GAP` apart.  A prompt containing ``content_policy`` is refused the
way Azure refuses it.  DALL-E 3 answers with links on Azure's image storage (or
base64), the gpt-image models with base64 and ``usage``.  :func:`form_parts`
reads back an edit the fake received, part by part.

Not documented by Azure, so modelled on its answers elsewhere: the error for an
edit to a dall-e-3 deployment (``OperationNotSupported``, Azure's code for an
operation a model does not do), and the stream's event shape (OpenAI's, which
Azure's guide shows the SDK reading: ``type``, ``b64_json``, ``partial_image_index``).
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import time
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from gateway.testing import FakeUpstream, Part, Recorded, image_events
from gateway.testing.provider_contract import make_png

__all__ = ["APP_SERVICE_PATH", "IMAGE_HOST", "IMDS_PATH", "STREAM_GAP", "AzureOpenAIFake", "EntraFake",
           "ManagedIdentityFake", "content_policy_refusal", "filter_results", "form_parts", "install"]

DATED_VERSIONS = frozenset({"2024-02-01", "2024-06-01", "2024-10-21", "2025-04-01-preview"})
#: Dated versions with the GPT image models' edit endpoint and streaming.
GPT_IMAGE_VERSIONS = frozenset({"2025-04-01-preview"})
#: Edits: at most 16 input images (Azure documents none; OpenAI's limit), PNG or JPEG under
#: 50 MB each; one PNG mask under 4 MB.
MAX_EDIT_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_MASK_BYTES = 4 * 1024 * 1024
_MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg"}
#: Seconds between the events of a streamed answer (a buffering relay would deliver them together).
STREAM_GAP = 0.2
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
NOT_AN_EDIT_MODEL = ("The imageEdit operation does not work with the specified model, {model}. Please choose different "
                     "model and try again. You can learn more about which models can be used with each operation here: "
                     "https://go.microsoft.com/fwlink/?linkid=2197993.")


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
        #: Further access tokens it takes (those the fake Entra ID and managed identity endpoints
        #: of :class:`EntraFake` and :class:`ManagedIdentityFake` issue).
        self.tokens: set[str] = set()
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
            self.upstream.on("POST", f"{self.root}/deployments/{name}/images/edits", self._dated_edit)
        self.upstream.on("POST", f"{self.root}/v1/images/generations", self._v1)
        self.upstream.on("POST", f"{self.root}/v1/images/edits", self._v1_edit)
        return self

    def dated_path(self, deployment: str, operation: str = "generations") -> str:
        return f"{self.root}/deployments/{deployment}/images/{operation}"

    # -- the two APIs ----------------------------------------------------------------
    async def _dated(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        version = request.query.get("api-version")
        if version not in DATED_VERSIONS:
            return error(404, "404", "Resource not found")
        deployment = rec.path.split("/")[-3]
        return await self._generate(request, rec, self.deployments.get(deployment), version in GPT_IMAGE_VERSIONS)

    async def _v1(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if request.query.get("api-version", "preview") != "preview":
            return bad_request("api-version is not allowed on the v1 API; use preview or leave it out")
        body = _json(rec)
        deployment = body.get("model") if isinstance(body, dict) else None
        if not isinstance(deployment, str):
            return bad_request("Missing required parameter: 'model'.", "model")
        return await self._generate(request, rec, self.deployments.get(deployment), True)

    async def _dated_edit(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if request.query.get("api-version") not in GPT_IMAGE_VERSIONS:
            return error(404, "404", "Resource not found")
        parts = await _multipart(request, rec)
        if isinstance(parts, web.Response):
            return parts
        return await self._edit(request, parts, self.deployments.get(rec.path.split("/")[-3]))

    async def _v1_edit(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if request.query.get("api-version", "preview") != "preview":
            return bad_request("api-version is not allowed on the v1 API; use preview or leave it out")
        parts = await _multipart(request, rec)
        if isinstance(parts, web.Response):
            return parts
        deployment = _fields(parts).get("model")
        if deployment is None:
            return bad_request("Missing required parameter: 'model'.", "model")
        return await self._edit(request, parts, self.deployments.get(deployment))

    async def _generate(self, request: web.Request, rec: Recorded, model: str | None,
                        streams: bool) -> web.StreamResponse:
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
        problem = _check_parameters(model, body) or _check_stream(model, body, streams)
        if problem is not None:
            return problem
        if body.get("stream") is True:
            return await self._stream(request, body, "image_generation")
        return self._answer(model, body)

    async def _edit(self, request: web.Request, parts: list[Part], model: str | None) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        if model is None:
            return error(404, "DeploymentNotFound", NO_DEPLOYMENT)
        if model == "dall-e-3":
            return error(400, "OperationNotSupported", NOT_AN_EDIT_MODEL.format(model=model))
        problem = _check_files(parts)
        if problem is not None:
            return problem
        fields = _fields(parts)
        prompt = fields.get("prompt")
        if not prompt:
            return bad_request("Missing required parameter: 'prompt'.", "prompt")
        if "content_policy" in prompt:
            return content_policy_refusal()
        body = {name: _typed(name, value) for name, value in fields.items()}
        problem = (_check_parameters(model, body) or _check_fidelity(model, body)
                   or _check_stream(model, body, True))
        if problem is not None:
            return problem
        if body.get("stream") is True:
            return await self._stream(request, body, "image_edit")
        images = sum(p.name in ("image", "image[]") for p in parts)
        return self._answer(model, body, image_tokens=40 * images)

    def _auth(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("api-key")
        auth = request.headers.get("Authorization")
        if key is not None:
            return None if key == self.key else error(401, "401", BAD_KEY)
        if auth is not None:
            ok = auth.startswith("Bearer ") and (auth[7:] == self.token or auth[7:] in self.tokens)
            return None if ok else error(401, "401", BAD_TOKEN)
        return error(401, "401", BAD_KEY)

    async def _stream(self, request: web.Request, body: dict[str, Any], kind: str) -> web.StreamResponse:
        """``partial_images`` partial events, then the completed one, :data:`STREAM_GAP` apart
        (``kind``: ``image_generation`` or ``image_edit``)."""
        image = make_png(next(self._images))
        self.served.append(image)
        return await image_events(request, body, image, kind=kind, gap=STREAM_GAP,
                                  headers={"apim-request-id": "fake-apim-1"},
                                  usage={"input_tokens": 12, "output_tokens": 4160, "total_tokens": 4172})

    def _answer(self, model: str, body: dict[str, Any], image_tokens: int = 0) -> web.Response:
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
            out["usage"] = {"input_tokens": 12 + image_tokens, "output_tokens": 4160,
                            "total_tokens": 4172 + image_tokens,
                            "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": 12}}
        return web.json_response(out, headers={"apim-request-id": "fake-apim-1", "x-ms-region": "Sweden Central"})


def install(upstream: FakeUpstream, **options: Any) -> AzureOpenAIFake:
    """One Azure OpenAI resource answering on ``upstream``; ``options`` as :class:`AzureOpenAIFake`
    takes them (``root``, ``key``, ``token``, ``deployments``)."""
    return AzureOpenAIFake(upstream, **options).install()


async def form_parts(rec: Recorded) -> list[Part]:
    """The parts of a multipart body the fake received (``upstream.last``), in order, with their bytes."""
    return await rec.form()


async def _multipart(request: web.Request, rec: Recorded) -> list[Part] | web.Response:
    if request.content_type != "multipart/form-data":
        return bad_request(f"Unsupported content type {request.content_type!r}; expected multipart/form-data")
    try:
        return await form_parts(rec)
    except (ValueError, AssertionError) as e:
        return bad_request(f"The multipart body could not be parsed: {e}")


def _fields(parts: list[Part]) -> dict[str, str]:
    return {p.name: p.data.decode() for p in parts if p.filename is None}


def _typed(name: str, value: str) -> Any:
    """A form field as the JSON body would carry it: ``n`` and ``partial_images`` as numbers
    (left as text when they are not, for the checks to refuse), ``stream`` as a boolean."""
    if name in ("n", "partial_images") and value.isdigit():
        return int(value)
    if name == "stream":
        return value == "true"
    return value


def _check_files(parts: list[Part]) -> web.Response | None:
    """The edit's files: 1 to 16 PNG or JPEG images under 50 MB, at most one PNG mask under 4 MB."""
    images = [p for p in parts if p.name in ("image", "image[]")]
    masks = [p for p in parts if p.name == "mask"]
    stray = [p for p in parts if p.filename is not None and p not in images and p not in masks]
    if stray:
        return bad_request(f"Unexpected file in '{stray[0].name}'.", stray[0].name)
    if not images:
        return bad_request("Missing required parameter: 'image'.", "image")
    if len(images) > MAX_EDIT_IMAGES:
        return bad_request(f"Invalid 'image': at most {MAX_EDIT_IMAGES} images.", "image")
    if len(masks) > 1:
        return bad_request("Invalid 'mask': one mask at most.", "mask")
    for p in images:
        if _format(p.data) is None or len(p.data) >= MAX_IMAGE_BYTES:
            return bad_request("Invalid image file: each image must be a png or jpg file less than 50MB.", "image")
    for p in masks:
        if _format(p.data) != "png" or len(p.data) >= MAX_MASK_BYTES:
            return bad_request("Invalid mask file: the mask must be a valid PNG file, less than 4MB.", "mask")
    return None


def _format(data: bytes) -> str | None:
    return next((fmt for magic, fmt in _MAGIC.items() if data.startswith(magic)), None)


def _check_fidelity(model: str, body: dict[str, Any]) -> web.Response | None:
    fidelity = body.get("input_fidelity")
    if fidelity is None:
        return None
    if model.startswith("gpt-image-1-mini"):
        return bad_request(f"'input_fidelity' is not supported for {model}.", "input_fidelity")
    if fidelity not in ("high", "low"):
        return bad_request("Invalid 'input_fidelity': supported values are high and low.", "input_fidelity")
    return None


def _check_stream(model: str, body: dict[str, Any], streams: bool) -> web.Response | None:
    """``stream`` and ``partial_images``: gpt-image only, on an API version that has them, 0 to 3 partials."""
    if "stream" not in body and "partial_images" not in body:
        return None
    if not streams:
        return bad_request("Unrecognized request argument supplied: stream", "stream")
    if body.get("stream") is True and not model.startswith("gpt-image"):
        return bad_request(f"Streaming is not supported for {model}.", "stream")
    partial = body.get("partial_images", 0)
    if not isinstance(partial, int) or isinstance(partial, bool) or not 0 <= partial <= 3:
        return bad_request("Invalid 'partial_images': must be between 0 and 3.", "partial_images")
    return None


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


# -- the endpoints tokens come from ----------------------------------------------------
#
# - :class:`EntraFake`: Microsoft Entra ID's token endpoint, ``POST /{tenant}/oauth2/v2.0/token``
#   below the authority host (the fake's root), as the Microsoft identity platform documents it
#   ("OAuth 2.0 client credentials flow"): form-encoded, ``grant_type=client_credentials``, a
#   ``client_id``, a ``scope`` ending in ``/.default``, and either ``client_secret`` or
#   ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` with a
#   ``client_assertion`` (workload identity federation).  It answers ``{"token_type": "Bearer",
#   "expires_in", "ext_expires_in", "access_token"}``; refusals are Entra ID's error shape
#   ``{"error", "error_description" ("AADSTSnnnn: ..." then trace lines), "error_codes",
#   "timestamp", "trace_id", "correlation_id", "error_uri"}``: an unknown application
#   (AADSTS700016), a missing parameter (AADSTS900144), a scope without ``/.default``
#   (AADSTS1002012) are 400s; a wrong secret (AADSTS7000215) is a 401 ``invalid_client``.
# - :class:`ManagedIdentityFake`: the Instance Metadata Service, ``GET /metadata/identity/oauth2/token``
#   ("How to use managed identities for Azure resources on a VM to acquire an access token"):
#   ``Metadata: true`` required, ``api-version=2018-02-01``, a ``resource``, an optional
#   ``client_id`` of a user-assigned identity; it answers ``expires_in`` and ``expires_on`` as
#   strings.  With ``app_service=True`` it is App Service's local identity endpoint instead
#   (``GET /msi/token``, ``X-IDENTITY-HEADER``, ``api-version=2019-08-01``, answering
#   ``expires_on`` only).
#
# Every token issued is added to the fake Azure OpenAI resource's accepted tokens, and the
# requests are counted (``requests``) so a test sees when the gateway fetched one.
#
# Not documented to the letter, so modelled: the AADSTS code for an assertion no federated
# credential matches (AADSTS70021, ``invalid_client``) and App Service's refusal body.

JWT_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
IMDS_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_PATH = "/msi/token"
COGNITIVE_RESOURCE = "https://cognitiveservices.azure.com/"


def entra_error(status: int, error: str, code: int, description: str) -> web.Response:
    """A refusal as Entra ID's token endpoint words it."""
    return web.json_response({
        "error": error,
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: 0000-trace\r\nCorrelation ID: 0000-corr\r\n"
                             "Timestamp: 2026-01-01 00:00:00Z",
        "error_codes": [code], "timestamp": "2026-01-01 00:00:00Z", "trace_id": "0000-trace",
        "correlation_id": "0000-corr", "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }, status=status)


class _Issuer:
    """Tokens issued and requests received, shared by the fakes."""

    def __init__(self, azure: AzureOpenAIFake | None, prefix: str, expires_in: int) -> None:
        self.azure = azure
        self.prefix = prefix
        #: Seconds each token lives (``expires_in``).
        self.expires_in = expires_in
        self._count = itertools.count(1)
        #: Tokens issued, in order.
        self.issued: list[str] = []
        #: Every token request received (answered or refused).
        self.requests: list[Recorded] = []
        #: Seconds each answer takes (so that concurrent requests overlap one fetch).
        self.delay = 0.0

    def issue(self) -> str:
        token = f"{self.prefix}-{next(self._count)}"
        self.issued.append(token)
        if self.azure is not None:
            self.azure.tokens.add(token)
        return token


class EntraFake(_Issuer):
    """Microsoft Entra ID's token endpoint for ``tenant``: ``clients`` maps client ids to their
    secret (None: no secret), ``federated`` client ids to the assertion they accept."""

    def __init__(self, upstream: FakeUpstream, azure: AzureOpenAIFake | None = None, *, tenant: str = "contoso-tenant",
                 clients: dict[str, str | None] | None = None, federated: dict[str, str] | None = None,
                 expires_in: int = 3599) -> None:
        super().__init__(azure, "entra-issued", expires_in)
        self.upstream = upstream
        self.tenant = tenant
        self.clients = clients if clients is not None else {}
        self.federated = federated if federated is not None else {}

    def install(self) -> EntraFake:
        self.upstream.on("POST", f"/{self.tenant}/oauth2/v2.0/token", self.handle)
        return self

    async def handle(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        self.requests.append(rec)
        await asyncio.sleep(self.delay)
        if request.content_type != "application/x-www-form-urlencoded":
            return entra_error(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'grant_type'.")
        form = dict(parse_qsl(rec.body.decode(), keep_blank_values=True))
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name):
                return entra_error(400, "invalid_request", 900144,
                                   f"The request body must contain the following parameter: '{name}'.")
        if form["grant_type"] != "client_credentials":
            return entra_error(400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type.")
        if not form["scope"].endswith("/.default"):
            return entra_error(400, "invalid_scope", 1002012,
                               f"The provided value for scope {form['scope']} is not valid. Client credential flows "
                               "must have a scope value with /.default suffixed to the resource identifier.")
        client = form["client_id"]
        if client not in self.clients and client not in self.federated:
            return entra_error(400, "unauthorized_client", 700016,
                               f"Application with identifier '{client}' was not found in the directory "
                               f"'{self.tenant}'.")
        if "client_assertion" in form or "client_assertion_type" in form:
            if form.get("client_assertion_type") != JWT_ASSERTION or not form.get("client_assertion"):
                return entra_error(400, "invalid_request", 900144,
                                   "The request body must contain the following parameter: 'client_assertion'.")
            if self.federated.get(client) != form["client_assertion"]:
                return entra_error(400, "invalid_client", 70021,
                                   "No matching federated identity record found for presented assertion.")
        elif "client_secret" not in form:
            return entra_error(401, "invalid_client", 7000218,
                               "The request body must contain the following parameter: 'client_assertion' or "
                               "'client_secret'.")
        elif self.clients.get(client) != form["client_secret"]:
            return entra_error(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the request is the "
                               f"client secret value, not the client secret ID, for a secret added to app '{client}'.")
        return web.json_response({"token_type": "Bearer", "expires_in": self.expires_in,
                                  "ext_expires_in": self.expires_in, "access_token": self.issue()})


class ManagedIdentityFake(_Issuer):
    """The managed identity endpoint of a host with a system-assigned identity and the
    user-assigned ones ``user_assigned`` lists (client ids): IMDS, or App Service's."""

    def __init__(self, upstream: FakeUpstream, azure: AzureOpenAIFake | None = None, *,
                 user_assigned: tuple[str, ...] = (), system_assigned: bool = True, app_service: bool = False,
                 identity_header: str = "app-service-identity-header", expires_in: int = 3599) -> None:
        super().__init__(azure, "managed-issued", expires_in)
        self.upstream = upstream
        self.user_assigned = user_assigned
        self.system_assigned = system_assigned
        self.app_service = app_service
        self.identity_header = identity_header

    @property
    def path(self) -> str:
        return APP_SERVICE_PATH if self.app_service else IMDS_PATH

    def install(self) -> ManagedIdentityFake:
        self.upstream.on("GET", self.path, self.handle)
        return self

    async def handle(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        self.requests.append(rec)
        await asyncio.sleep(self.delay)
        query = request.query
        if self.app_service:
            if request.headers.get("X-IDENTITY-HEADER") != self.identity_header:
                return web.json_response({"statusCode": 400, "message": "Unable to validate X-IDENTITY-HEADER"},
                                         status=400)
            version = "2019-08-01"
        else:
            if request.headers.get("Metadata") != "true":
                return _imds_error(400, "invalid_request", "Required metadata header not specified")
            version = "2018-02-01"
        if query.get("api-version") != version:
            return _imds_error(400, "invalid_request", "Required query variable 'api-version' is missing or invalid")
        if query.get("resource") != COGNITIVE_RESOURCE:
            return _imds_error(400, "invalid_resource", "AADSTS500011: The resource principal named "
                                                        f"{query.get('resource')} was not found in the tenant.")
        client = query.get("client_id")
        if (client is None and not self.system_assigned) or (client is not None and client not in self.user_assigned):
            return _imds_error(400, "invalid_request", "Identity not found")
        now = int(time.time())
        doc: dict[str, Any] = {"access_token": self.issue(), "expires_on": str(now + self.expires_in),
                               "resource": COGNITIVE_RESOURCE, "token_type": "Bearer"}
        if self.app_service:
            doc["client_id"] = client or "system-assigned-client"
        else:
            doc.update({"client_id": client or "system-assigned-client", "expires_in": str(self.expires_in),
                        "ext_expires_in": str(self.expires_in), "not_before": str(now), "refresh_token": ""})
        return web.json_response(doc)


def _imds_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)
