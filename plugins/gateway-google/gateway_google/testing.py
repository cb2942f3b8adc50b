"""Fakes of Google's image APIs that check requests as Google documents them.

:func:`install` serves the Gemini API's ``POST /v1beta/models/{model}:generateContent``;
:func:`install_vertex` Vertex AI's ``POST /v1/projects/{project}/locations/{location}/publishers/google/
models/{model}:generateContent``; :func:`install_token_endpoint` Google's OAuth token endpoint for a
service account made by :func:`make_service_account`.  Each on a :class:`~gateway.testing.FakeUpstream`.

What the fakes enforce (their own table of the models, :data:`MODELS`, from Google's model pages):

- auth: the Gemini API key in ``x-goog-api-key`` (missing: 403 ``PERMISSION_DENIED``; wrong: 400
  ``INVALID_ARGUMENT`` "API key not valid"), and, stricter than Google, no ``key`` in the query
  (a key in a URL reaches logs: the gateway must never put it there); Vertex AI an
  ``Authorization: Bearer`` access token it knows (the caller's :data:`ACCESS_TOKEN`, or one the
  token endpoint issued), else 401 ``UNAUTHENTICATED``;
- the body: JSON with only documented fields (an unknown one is Google's 400 "Unknown name");
  ``contents`` of ``role``/``parts``, each part a ``text`` or an ``inlineData`` of a supported image
  type whose base64 decodes to that type, at most the model's input images; ``generationConfig``
  with ``responseModalities`` of ``TEXT``/``IMAGE``, ``candidateCount`` 1 at most, ``imageConfig``
  ``aspectRatio`` among the model's, ``imageSize`` among its tiers (Gemini 2.5 Flash Image has
  none), and the image-output fields Vertex AI alone takes; ``safetySettings`` a list of
  ``{category, threshold}``; a model it does not know is a 404 ``NOT_FOUND``;
- the answer: ``candidates[0].content.parts`` with, for the thinking models (Gemini 3), a thought
  text part and an interim thought image (``thought: true``) before the final image, a text part
  when ``TEXT`` was asked for, ``finishReason: STOP`` and ``usageMetadata`` with the documented
  image token counts per tier.  A prompt holding ``[block-prompt]`` is blocked
  (``promptFeedback.blockReason``), ``[image-safety]`` filtered (``finishReason: IMAGE_SAFETY``),
  ``[text-only]`` answered with text and no image (``finishReason: STOP``), ``[no-image]`` with
  ``finishReason: NO_IMAGE``.

Errors are Google's ``{"error": {"code", "message", "status"}}``.  The token endpoint takes RFC
7523's JWT bearer grant and verifies the assertion with google-auth against the account's public
key (``iss``, ``aud``, ``scope``, ``iat``/``exp`` at most an hour apart).

Sources: https://ai.google.dev/gemini-api/docs/image-generation,
https://ai.google.dev/api/generate-content, https://docs.cloud.google.com/vertex-ai/generative-ai/docs/
models/gemini/3-pro-image (and ``3-1-flash-image``, ``2-5-flash-image``),
https://developers.google.com/identity/protocols/oauth2/service-account, and the google-genai SDK.
"""
from __future__ import annotations

import base64
import binascii
import functools
import itertools
import time
from typing import Any
from urllib.parse import parse_qs

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_errors
from google.auth import jwt

from gateway.testing import FakeUpstream, Recorded
from gateway.testing.provider_contract import make_png

__all__ = [
    "ACCESS_TOKEN", "KEY", "LOCATION", "MODELS", "PROJECT", "GoogleFake", "TokenEndpoint", "answer_doc", "error",
    "error_doc", "install", "install_token_endpoint", "install_vertex", "make_service_account", "vertex_path",
]

#: The Gemini API key the fake accepts unless told another.
KEY = "gemini-test-key-0123"
#: An access token a caller got itself (``Authorization: Bearer``) that the Vertex fake accepts.
ACCESS_TOKEN = "ya29.caller-access-token"
PROJECT = "test-project"
LOCATION = "us-central1"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"

_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_RATIOS_31 = _RATIOS + ("1:4", "4:1", "1:8", "8:1")


class FakeModel(msgspec.Struct, frozen=True):
    ratios: tuple[str, ...]
    #: imageSize tier -> output image tokens (Google's model pages); empty: no imageSize.
    tiers: dict[str, int]
    input_images: int
    #: Gemini 3 models think, and show interim images as thought parts.
    thinks: bool
    #: Image tokens when there are no tiers.
    image_tokens: int = 1290


_PRO = FakeModel(_RATIOS, {"1K": 1120, "2K": 1120, "4K": 2000}, 14, True)
_FLASH_31 = FakeModel(_RATIOS_31, {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}, 14, True)
#: The image models the fakes serve.
MODELS: dict[str, FakeModel] = {
    "gemini-3.1-flash-image": _FLASH_31,
    "gemini-3.1-flash-image-preview": _FLASH_31,
    "gemini-3-pro-image": _PRO,
    "gemini-3-pro-image-preview": _PRO,
    "gemini-2.5-flash-image": FakeModel(_RATIOS, {}, 3, False),
}
_IMAGE_TYPES = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "image/webp": (b"RIFF",),
                "image/heic": (b"",), "image/heif": (b"",)}
_BODY_FIELDS = frozenset({"contents", "generationConfig", "safetySettings", "systemInstruction", "tools",
                          "toolConfig", "cachedContent"})
_VERTEX_BODY_FIELDS = _BODY_FIELDS | {"labels"}
_CONFIG_FIELDS = frozenset({"responseModalities", "imageConfig", "seed", "temperature", "topP", "topK",
                            "candidateCount", "maxOutputTokens", "stopSequences", "thinkingConfig"})
_IMAGE_CONFIG = frozenset({"aspectRatio", "imageSize"})
_VERTEX_IMAGE_CONFIG = _IMAGE_CONFIG | {"personGeneration", "prominentPeople", "imageOutputOptions"}
_GRPC = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
         429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def error_doc(status: int, message: str, grpc_status: str | None = None) -> dict[str, Any]:
    """Google's error body."""
    return {"error": {"code": status, "message": message, "status": grpc_status or _GRPC.get(status, "UNKNOWN")}}


def error(status: int, message: str, grpc_status: str | None = None) -> web.Response:
    return web.json_response(error_doc(status, message, grpc_status), status=status)


def answer_doc(images: list[bytes], *, model: str = "gemini-3-pro-image", thoughts: bool = False,
               text: str | None = None, image_tokens: int = 1120, prompt_tokens: int = 12,
               mime_type: str = "image/png") -> dict[str, Any]:
    """A ``generateContent`` answer carrying ``images`` as ``inlineData`` parts (with thought parts
    first when ``thoughts``), as Google documents it."""
    parts: list[dict[str, Any]] = []
    thought_tokens = 0
    if thoughts:
        parts.append({"text": "**Composing the scene**\n\nPlacing the subject ...", "thought": True})
        parts.append({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(make_png(0xDEAD)).decode()},
                      "thought": True})
        thought_tokens = 180
    if text is not None:
        parts.append({"text": text})
    for image in images:
        parts.append({"inlineData": {"mimeType": mime_type, "data": base64.b64encode(image).decode()},
                      "thoughtSignature": "c2lnbmF0dXJl"})
    output = image_tokens * len(images) + (8 if text else 0)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens, "candidatesTokenCount": output,
        "totalTokenCount": prompt_tokens + output + thought_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": image_tokens * len(images)}]
        + ([{"modality": "TEXT", "tokenCount": 8}] if text else []),
    }
    if thought_tokens:
        usage["thoughtsTokenCount"] = thought_tokens
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": model, "responseId": "resp-1"}


def vertex_path(model: str, project: str = PROJECT, location: str = LOCATION) -> str:
    return f"/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent"


class GoogleFake:
    """One API (the Gemini API or Vertex AI) on a FakeUpstream."""

    def __init__(self, fake: FakeUpstream, *, vertex: bool, key: str = KEY,
                 access_tokens: tuple[str, ...] = (ACCESS_TOKEN,), served: list[list[bytes]] | None = None) -> None:
        self.fake = fake
        self.vertex = vertex
        self.key = key
        #: Access tokens Vertex AI takes (a token endpoint adds those it issues).
        self.access_tokens = set(access_tokens)
        self._counter = itertools.count(1)
        #: The final images answered, one list per call, in order.
        self.served: list[list[bytes]] = served if served is not None else []

    def generations(self) -> list[Recorded]:
        """The generateContent requests received."""
        return [r for r in self.fake.requests if r.path.endswith(":generateContent")]

    def handler(self, model: str) -> Any:
        async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
            refused = self._auth(rec)
            if refused is not None:
                return refused
            return self._answer(model, rec)
        return handle

    def _auth(self, rec: Recorded) -> web.Response | None:
        if self.vertex:
            auth = rec.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
                return error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                  "login cookie or other valid authentication credential.")
            return None
        if "key" in rec.query:
            return error(400, "fake: the API key must not be sent in the URL (use the x-goog-api-key header)")
        given = rec.headers.get("x-goog-api-key")
        if given is None:
            return error(403, "Method doesn't allow unregistered callers (callers without established identity). "
                              "Please use API Key or other form of API consumer identity to call this API.")
        if given != self.key:
            return error(400, "API key not valid. Please pass a valid API key.")
        return None

    def _answer(self, name: str, rec: Recorded) -> web.Response:
        model = MODELS[name]
        if not rec.headers.get("Content-Type", "").startswith("application/json"):
            return error(400, "Invalid JSON payload received: the Content-Type must be application/json")
        try:
            body = rec.json()
        except msgspec.DecodeError:
            return error(400, "Invalid JSON payload received.")
        if not isinstance(body, dict):
            return error(400, "Invalid JSON payload received: expected an object")
        problem = self._check(model, body)
        if problem is not None:
            return error(400, problem)
        prompt = " ".join(p["text"] for c in body["contents"] for p in c["parts"] if "text" in p)
        config = body.get("generationConfig", {})
        if "[block-prompt]" in prompt:
            return web.json_response({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                                      "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
                                      "modelVersion": name})
        if "[image-safety]" in prompt:
            return web.json_response({"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0,
                                                      "finishMessage": "Unable to show the generated image."}],
                                      "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
                                      "modelVersion": name})
        # Without responseModalities an image model answers text and image (the image guide).
        modalities = config.get("responseModalities", ["TEXT", "IMAGE"])
        if "[text-only]" in prompt or "[no-image]" in prompt or "IMAGE" not in modalities:
            reason = "NO_IMAGE" if "[no-image]" in prompt else "STOP"
            parts = [] if reason == "NO_IMAGE" else [{"text": "I can describe it instead: a lighthouse."}]
            return web.json_response({"candidates": [{"content": {"role": "model", "parts": parts},
                                                      "finishReason": reason, "index": 0}],
                                      "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 10,
                                                        "totalTokenCount": 19}, "modelVersion": name})
        image = make_png(next(self._counter))
        self.served.append([image])
        tier = config.get("imageConfig", {}).get("imageSize", "1K")
        tokens = model.tiers.get(tier, model.image_tokens) if model.tiers else model.image_tokens
        inputs = sum(1 for c in body["contents"] for p in c["parts"] if "inlineData" in p)
        doc = answer_doc([image], model=name, thoughts=model.thinks, image_tokens=tokens,
                         text="Here is the image." if "TEXT" in modalities else None,
                         prompt_tokens=9 + 560 * inputs)
        if inputs:
            doc["usageMetadata"]["promptTokensDetails"].append({"modality": "IMAGE", "tokenCount": 560 * inputs})
        return web.json_response(doc)

    def _check(self, model: FakeModel, body: dict[str, Any]) -> str | None:
        """Google's 400 message for what the body gets wrong, or None."""
        allowed = _VERTEX_BODY_FIELDS if self.vertex else _BODY_FIELDS
        for field in body:
            if field not in allowed:
                return f'Invalid JSON payload received. Unknown name "{field}": Cannot find field.'
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        images = 0
        for content in contents:
            if not isinstance(content, dict) or content.get("role", "user") not in ("user", "model"):
                return "Please use a valid role: user, model."
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                return "* GenerateContentRequest.contents.parts: contents.parts must not be empty."
            for part in parts:
                problem = _part_problem(part)
                if problem is not None:
                    return problem
                images += "inlineData" in part
        if images > model.input_images:
            return f"Too many images in the request: at most {model.input_images} are supported by this model."
        problem = self._config_problem(model, body.get("generationConfig", {}))
        if problem is not None:
            return problem
        settings = body.get("safetySettings", [])
        if not isinstance(settings, list) or not all(
                isinstance(s, dict) and isinstance(s.get("category"), str) and isinstance(s.get("threshold"), str)
                for s in settings):
            return "* GenerateContentRequest.safety_settings: each setting needs a category and a threshold"
        return None

    def _config_problem(self, model: FakeModel, config: Any) -> str | None:
        if not isinstance(config, dict):
            return "Invalid value at 'generation_config': expected an object"
        for field in config:
            if field not in _CONFIG_FIELDS:
                return f'Invalid JSON payload received. Unknown name "{field}" at \'generation_config\'.'
        modalities = config.get("responseModalities", ["TEXT", "IMAGE"])
        if not isinstance(modalities, list) or not all(m in ("TEXT", "IMAGE") for m in modalities):
            return "Invalid value at 'generation_config.response_modalities': expected TEXT or IMAGE"
        if config.get("candidateCount", 1) != 1:
            return "Multiple candidates is not enabled for this model."
        seed = config.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            return "Invalid value at 'generation_config.seed' (TYPE_INT32)"
        temperature = config.get("temperature", 1.0)
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 <= temperature <= 2:
            return "* GenerationConfig.temperature: must be between 0 and 2"
        image = config.get("imageConfig", {})
        if not isinstance(image, dict):
            return "Invalid value at 'generation_config.image_config': expected an object"
        for field in image:
            if field not in (_VERTEX_IMAGE_CONFIG if self.vertex else _IMAGE_CONFIG):
                return f'Invalid JSON payload received. Unknown name "{field}" at \'generation_config.image_config\'.'
        ratio = image.get("aspectRatio")
        if ratio is not None and ratio not in model.ratios:
            return f"Unsupported aspect ratio: {ratio}. Supported: {', '.join(model.ratios)}"
        size = image.get("imageSize")
        if size is not None and size not in model.tiers:
            return f"Unsupported image size: {size}" + (f". Supported: {', '.join(model.tiers)}" if model.tiers
                                                         else ": this model does not support image_size")
        person = image.get("personGeneration")
        if person is not None and person not in ("ALLOW_ALL", "ALLOW_ADULT", "ALLOW_NONE"):
            return f"Invalid value at 'generation_config.image_config.person_generation': {person}"
        output = image.get("imageOutputOptions", {})
        if not isinstance(output, dict) or set(output) - {"mimeType", "compressionQuality"}:
            return "Invalid value at 'generation_config.image_config.image_output_options'"
        return None


def _part_problem(part: Any) -> str | None:
    if not isinstance(part, dict):
        return "Invalid value at 'contents.parts': expected an object"
    data_fields = [f for f in ("text", "inlineData", "fileData", "functionCall", "functionResponse") if f in part]
    if len(data_fields) != 1:
        return "* GenerateContentRequest.contents.parts: a part must have exactly one data field"
    for field in part:
        if field not in ("text", "inlineData", "fileData", "thought", "thoughtSignature"):
            return f'Invalid JSON payload received. Unknown name "{field}" at \'contents.parts\'.'
    if "text" in part:
        return None if isinstance(part["text"], str) else "Invalid value at 'contents.parts.text' (TYPE_STRING)"
    blob = part.get("inlineData")
    if not isinstance(blob, dict) or set(blob) - {"mimeType", "data"}:
        return "Invalid value at 'contents.parts.inline_data'"
    mime = blob.get("mimeType")
    if mime not in _IMAGE_TYPES:
        return f"Unsupported MIME type: {mime}"
    try:
        data = base64.b64decode(blob.get("data", ""), validate=True)
    except (binascii.Error, TypeError):
        return "Invalid value at 'contents.parts.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
    if not data or not data.startswith(_IMAGE_TYPES[mime]):
        return f"Unable to process input image: the data is not {mime}"
    return None


def install(fake: FakeUpstream, *, key: str = KEY, prefix: str = "/v1beta",
            served: list[list[bytes]] | None = None) -> GoogleFake:
    """The Gemini API on ``fake`` under ``prefix``, taking ``key`` (``served`` gets each call's image)."""
    api = GoogleFake(fake, vertex=False, key=key, served=served)
    for name in MODELS:
        fake.on("POST", f"{prefix}/models/{name}:generateContent", api.handler(name))
    return api


def install_vertex(fake: FakeUpstream, *, project: str = PROJECT, location: str = LOCATION,
                   access_tokens: tuple[str, ...] = (ACCESS_TOKEN,), api: GoogleFake | None = None,
                   served: list[list[bytes]] | None = None) -> GoogleFake:
    """Vertex AI on ``fake`` for ``project`` in ``location`` (call again, with ``api``, for more)."""
    api = api or GoogleFake(fake, vertex=True, access_tokens=access_tokens, served=served)
    for name in MODELS:
        fake.on("POST", vertex_path(name, project, location), api.handler(name))
    return api


# -- service accounts and Google's token endpoint -----------------------------------------------

@functools.cache
def _key_pair() -> tuple[str, str]:
    """A throwaway RSA key (private PEM, public PEM), made once per test process."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def make_service_account(token_uri: str, *, project_id: str = PROJECT,
                         client_email: str = "gateway-test@test-project.iam.gserviceaccount.com") -> dict[str, Any]:
    """A service-account key file's JSON (as IAM hands it out) with a throwaway key."""
    private, _ = _key_pair()
    return {"type": "service_account", "project_id": project_id, "private_key_id": "0123456789abcdef",
            "private_key": private, "client_email": client_email, "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/gateway-test"}


class TokenEndpoint:
    """Google's OAuth 2.0 token endpoint for one service account's key pair."""

    def __init__(self, fake: FakeUpstream, path: str, *, client_email: str, expires_in: int,
                 vertex: GoogleFake | None) -> None:
        self.fake = fake
        self.path = path
        self.client_email = client_email
        #: Seconds each issued token lives (``expires_in``).
        self.expires_in = expires_in
        self.vertex = vertex
        #: Tokens issued, in order, and the claims of each assertion accepted.
        self.issued: list[str] = []
        self.claims: list[dict[str, Any]] = []
        #: Answer the next requests with this instead (``(status, body)``), for error tests.
        self.refuse: tuple[int, dict[str, Any]] | None = None

    def requests(self) -> list[Recorded]:
        return [r for r in self.fake.requests if r.path == self.path]

    async def handle(self, request: web.Request, rec: Recorded) -> web.Response:
        if self.refuse is not None:
            return web.json_response(self.refuse[1], status=self.refuse[0])
        if not rec.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return _grant_error("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        form = {k: v[0] for k, v in parse_qs(rec.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return _grant_error("unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        try:
            claims = jwt.decode(form.get("assertion", ""), certs=_key_pair()[1], audience=GOOGLE_TOKEN_URI,
                                clock_skew_in_seconds=10)
        except (auth_errors.GoogleAuthError, ValueError):
            return _grant_error("invalid_grant", "Invalid JWT Signature.")
        if claims.get("iss") != self.client_email:
            return _grant_error("invalid_grant", "Invalid JWT: the issuer is not the service account.")
        if claims.get("scope") != SCOPE:
            return _grant_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        if not 0 < claims["exp"] - claims["iat"] <= 3600 or claims["iat"] > time.time() + 10:
            return _grant_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                                                 "in a reasonable timeframe.")
        token = f"ya29.fake-{len(self.issued) + 1}-{claims['iat']}"
        self.issued.append(token)
        self.claims.append(dict(claims))
        if self.vertex is not None:
            self.vertex.access_tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})


def _grant_error(code: str, description: str) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=400)


def install_token_endpoint(fake: FakeUpstream, *, path: str = "/token", expires_in: int = 3599,
                           client_email: str = "gateway-test@test-project.iam.gserviceaccount.com",
                           vertex: GoogleFake | None = None) -> TokenEndpoint:
    """Google's token endpoint at ``path`` for :func:`make_service_account`'s key; the tokens it
    issues are taken by ``vertex``."""
    endpoint = TokenEndpoint(fake, path, client_email=client_email, expires_in=expires_in, vertex=vertex)
    fake.on("POST", path, endpoint.handle)
    return endpoint
