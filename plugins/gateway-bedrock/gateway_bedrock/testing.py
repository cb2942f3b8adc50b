"""A fake bedrock-runtime InvokeModel for image models, on a FakeUpstream.

``install(fake_upstream)`` routes every listed model (and its cross-region ids)
and returns the :class:`BedrockFake`, which records what it verified.

It checks what AWS checks before a model runs, and answers as Bedrock does:

- authentication: a SigV4 signature recomputed with botocore from the request
  as received (method, raw path and query, the headers named in SignedHeaders,
  the body bytes) with the known secret; the credential scope (date, region,
  service ``bedrock``); ``X-Amz-Date`` within five minutes; the session token.
  Or ``Authorization: Bearer <Bedrock API key>``.  Failures are 403s with
  Bedrock's ``{"message"}`` and ``x-amzn-ErrorType``.
- the body of each model family, field by field, as the Bedrock user guide
  documents it (unknown keys, ranges, sizes): a ``ValidationException`` 400.
- edits: Titan and Nova ``INPAINTING``/``OUTPAINTING`` (one base64 PNG or JPEG
  ``image``; exactly one of ``maskPrompt`` and ``maskImage``, the mask the image's
  size and pure black and white; no width or height) and ``IMAGE_VARIATION`` (one
  to five ``images``, ``similarityStrength`` 0.2 to 1); Nova refuses input PNGs
  with transparent pixels.  SD3 ``image-to-image`` needs ``image`` and ``strength``
  (0 to 1) and takes no ``aspect_ratio``; Stable Image Inpaint takes ``image``,
  ``prompt``, an optional ``mask`` of the image's size and ``grow_mask`` 0 to 20.
  Pixels are checked for PNGs (:func:`read_png`); other formats by their kind only.
- answers: SDXL ``{"result", "artifacts": [{"seed", "base64", "finishReason"}]}``;
  SD3/Ultra/Core and the image services ``{"seeds", "finish_reasons", "images"}``;
  Titan and Nova ``{"images"}`` (``"error"`` when images were filtered).

Prompts steer refusals: ``forbidden`` is refused on input, ``filtered-output``
has its output filtered.  :func:`png` and :func:`mask_png` make real test images.

:class:`StsFake` (at the end) is STS's AssumeRole, for ``aws_auth_type: assumedRole``.
"""
from __future__ import annotations

import asyncio
import base64
import datetime
import hmac
import itertools
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

import msgspec
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.sdk import sniff
from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import make_png

__all__ = [
    "ACCESS_KEY", "ACCOUNT", "API_KEY", "MODELS", "ROLE_ARN", "SECRET_KEY", "SESSION_TOKEN", "TEMP_ACCESS_KEY",
    "TEMP_SECRET_KEY", "BedrockFake", "Signed", "StsFake", "TrustPolicy", "clean_aws_environment", "encoded", "error",
    "install", "mask_png", "path_of", "png", "read_png", "verify_sigv4",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TEMP_ACCESS_KEY = "ASIAIOSFODNN7EXAMPLE"
TEMP_SECRET_KEY = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"

SDXL_SIZES = {(1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640), (640, 1536), (768, 1344),
              (832, 1216), (896, 1152)}
SDXL_STYLES = {"3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
               "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami",
               "photographic", "pixel-art", "tile-texture"}
RATIOS = {"16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"}
TITAN_SIZES = {(1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576), (1152, 768), (576, 384),
               (768, 1280), (384, 640), (1280, 768), (640, 384), (896, 1152), (448, 576), (1152, 896), (576, 448),
               (768, 1408), (384, 704), (1408, 768), (704, 384), (640, 1408), (320, 704), (1408, 640), (704, 320),
               (1152, 640), (1173, 640)}
NOVA_STYLES = {"3D_ANIMATED_FAMILY_FILM", "DESIGN_SKETCH", "FLAT_VECTOR_ILLUSTRATION", "GRAPHIC_NOVEL_ILLUSTRATION",
               "MAXIMALISM", "MIDCENTURY_RETRO", "PHOTOREALISM", "SOFT_DIGITAL_PAINTING"}

MODELS = ("stability.stable-diffusion-xl-v1", "stability.sd3-large-v1:0", "stability.sd3-5-large-v1:0",
          "stability.stable-image-ultra-v1:0", "stability.stable-image-core-v1:0", "stability.stable-image-core-v1:1",
          "stability.stable-image-inpaint-v1:0", "amazon.titan-image-generator-v1",
          "amazon.titan-image-generator-v2:0", "amazon.nova-canvas-v1:0")
#: Titan and Nova tasks and the field holding each one's parameters.
AMAZON_TASKS = {"TEXT_IMAGE": "textToImageParams", "INPAINTING": "inPaintingParams",
                "OUTPAINTING": "outPaintingParams", "IMAGE_VARIATION": "imageVariationParams"}
AMAZON_TYPES = ("image/png", "image/jpeg")
STABILITY_TYPES = ("image/png", "image/jpeg", "image/webp")
PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")

_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


class Signed(msgspec.Struct):
    """What one verified SigV4 request signed."""

    access_key: str
    region: str
    service: str
    signed_headers: list[str]
    token: str | None


class ValidationError(Exception):
    pass


def path_of(model: str) -> str:
    """The route FakeUpstream matches (the decoded path)."""
    return f"/model/{model}/invoke"


class BedrockFake:
    """Bedrock runtime on ``fake``: ``route()`` routes every listed model (and its
    cross-region ids); ``signed`` lists what each verified SigV4 request covered."""

    def __init__(self, fake: FakeUpstream, region: str = "us-east-1") -> None:
        self.fake = fake
        self.region = region
        self.keys = {ACCESS_KEY: (SECRET_KEY, None), TEMP_ACCESS_KEY: (TEMP_SECRET_KEY, SESSION_TOKEN)}
        self.api_keys = {API_KEY}
        self.signed: list[Signed] = []
        #: Paths (and queries) exactly as they arrived, percent-encoding kept.
        self.raw_paths: list[str] = []
        self.bearer_used = 0
        #: Application inference profiles: ARN -> the foundation model behind it.
        self.profiles: dict[str, str] = {}
        self._counter = itertools.count(1)
        #: Images each successful generation answered with, in order.
        self.served: list[list[bytes]] = []

    def route(self, models: tuple[str, ...] = MODELS) -> BedrockFake:
        for model in models:
            for prefix in ("", *PREFIXES):
                self.fake.on("POST", path_of(prefix + model), self.handle)
        return self

    # -- authentication -----------------------------------------------------------
    def check_auth(self, request: web.Request, rec: Recorded) -> Reply | None:
        auth = rec.headers.get("Authorization")
        if not auth:
            return error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        if auth.startswith("Bearer "):
            if auth[7:] not in self.api_keys:
                return error(403, "UnrecognizedClientException", "Invalid API Key format: Must start with pre-defined prefix")
            self.bearer_used += 1
            return None
        checked = verify_sigv4(request, rec, self.keys, self.region, "bedrock")
        if not isinstance(checked, Signed):
            return error(*checked)
        self.signed.append(checked)
        return None

    # -- InvokeModel ----------------------------------------------------------------
    async def handle(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        return await self.fake.respond(request, self.reply(request, rec))

    def reply(self, request: web.Request, rec: Recorded) -> Reply:
        self.raw_paths.append(request.raw_path)
        denied = self.check_auth(request, rec)
        if denied is not None:
            return denied
        if rec.headers.get("Content-Type") != "application/json":
            return error(400, "ValidationException", "The provided content type is not supported")
        if rec.headers.get("Accept", "application/json") not in ("application/json", "*/*"):
            return error(400, "ValidationException", "The provided accept type is not supported")
        model = rec.path[len("/model/"):-len("/invoke")]
        model = bare(self.profiles.get(model, model))
        try:
            doc = msgspec.json.decode(rec.body)
            if not isinstance(doc, dict):
                raise ValidationError("Malformed input request, please reformat your input and try again.")
            if model == "stability.stable-diffusion-xl-v1":
                return self.sdxl(doc)
            if model.startswith("stability.stable-image-inpaint"):
                return self.inpaint(doc)
            if model.startswith("stability."):
                return self.stability(model, doc)
            return self.amazon(model, doc)
        except msgspec.DecodeError:
            return error(400, "ValidationException", "Malformed input request, please reformat your input and try again.")
        except ValidationError as e:
            return error(400, "ValidationException", str(e))

    def images(self, n: int) -> list[bytes]:
        images = [make_png(next(self._counter)) for _ in range(n)]
        self.served.append(images)
        return images

    def sdxl(self, doc: dict[str, Any]) -> Reply:
        allowed = {"text_prompts", "height", "width", "cfg_scale", "clip_guidance_preset", "sampler", "samples",
                   "seed", "steps", "style_preset", "extras"}
        extraneous(doc, allowed)
        prompts = doc.get("text_prompts")
        if not isinstance(prompts, list) or not prompts or not all(
                isinstance(p, dict) and isinstance(p.get("text"), str) and set(p) <= {"text", "weight"} for p in prompts):
            raise ValidationError("required key [text_prompts] not found")
        if ("width" in doc or "height" in doc) and (doc.get("width"), doc.get("height")) not in SDXL_SIZES:
            raise ValidationError("Invalid dimensions: width and height must be one of the supported SDXL sizes")
        if doc.get("samples", 1) != 1:
            raise ValidationError("samples: Bedrock supports generating one image; samples must be 1")
        if "style_preset" in doc and doc["style_preset"] not in SDXL_STYLES:
            raise ValidationError("style_preset: invalid value")
        number(doc, "steps", 10, 50)
        number(doc, "cfg_scale", 0, 35)
        number(doc, "seed", 0, 4294967295)
        text = " ".join(p["text"] for p in prompts if p.get("weight", 1) > 0)
        if "forbidden" in text:
            raise ValidationError("This request has been blocked by our content filters.")
        if "filtered-output" in text:
            return Reply(json={"result": "success", "artifacts": [
                {"seed": 1, "base64": "", "finishReason": "CONTENT_FILTERED"}]})
        [image] = self.images(1)
        return Reply(json={"result": "success", "artifacts": [
            {"seed": doc.get("seed", 7), "base64": b64(image), "finishReason": "SUCCESS"}]})

    def stability(self, model: str, doc: dict[str, Any]) -> Reply:
        allowed = {"prompt", "aspect_ratio", "output_format", "seed", "negative_prompt"}
        if model.startswith("stability.sd3"):
            allowed |= {"mode", "image", "strength"}
        extraneous(doc, allowed)
        prompt = doc.get("prompt")
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= 10000:
            raise ValidationError("required key [prompt] not found or not 1 to 10000 characters")
        if "aspect_ratio" in doc and doc["aspect_ratio"] not in RATIOS:
            raise ValidationError(f"aspect_ratio: {doc['aspect_ratio']} is not a valid enum value")
        if doc.get("output_format", "png") not in ("png", "jpeg"):
            raise ValidationError("output_format: must be one of png, jpeg")
        mode = doc.get("mode", "text-to-image")
        if mode not in ("text-to-image", "image-to-image"):
            raise ValidationError("mode: must be one of text-to-image, image-to-image")
        if mode == "image-to-image":
            if "image" not in doc or "strength" not in doc or "aspect_ratio" in doc:
                raise ValidationError("image-to-image takes `image` and `strength`, and no `aspect_ratio`")
            decoded(doc["image"], "image", STABILITY_TYPES)
            number(doc, "strength", 0, 1)
        elif "image" in doc or "strength" in doc:
            raise ValidationError("`image` and `strength` are for mode image-to-image")
        number(doc, "seed", 0, 4294967294)
        return self.stability_answer(prompt, doc)

    def inpaint(self, doc: dict[str, Any]) -> Reply:
        """Stable Image Inpaint (Stability AI Image Services)."""
        extraneous(doc, {"prompt", "image", "mask", "negative_prompt", "seed", "output_format", "grow_mask",
                         "style_preset"})
        prompt = doc.get("prompt")
        if not isinstance(prompt, str) or not 1 <= len(prompt) <= 10000:
            raise ValidationError("required key [prompt] not found or not 1 to 10000 characters")
        if "image" not in doc:
            raise ValidationError("required key [image] not found")
        image = decoded(doc["image"], "image", STABILITY_TYPES)
        if "mask" in doc:
            same_size(image, decoded(doc["mask"], "mask", STABILITY_TYPES))
        if doc.get("output_format", "png") not in ("png", "jpeg", "webp"):
            raise ValidationError("output_format: must be one of png, jpeg, webp")
        if "style_preset" in doc and doc["style_preset"] not in SDXL_STYLES:
            raise ValidationError("style_preset: invalid value")
        number(doc, "grow_mask", 0, 20)
        number(doc, "seed", 0, 4294967294)
        return self.stability_answer(prompt, doc)

    def stability_answer(self, prompt: str, doc: dict[str, Any]) -> Reply:
        if "forbidden" in prompt:
            return Reply(json={"finish_reasons": ["Filter reason: prompt"]})
        if "filtered-output" in prompt:
            return Reply(json={"seeds": [3], "finish_reasons": ["Filter reason: output image"], "images": [""]})
        [image] = self.images(1)
        return Reply(json={"seeds": [doc.get("seed", 12)], "finish_reasons": [None], "images": [b64(image)]})

    def amazon(self, model: str, doc: dict[str, Any]) -> Reply:
        nova = model.startswith("amazon.nova-canvas")
        task = doc.get("taskType")
        if task not in AMAZON_TASKS:
            raise ValidationError(f"taskType: {task!r} is not one of {', '.join(AMAZON_TASKS)}")
        field = AMAZON_TASKS[task]
        extraneous(doc, {"taskType", field, "imageGenerationConfig"})
        params = doc.get(field)
        if not isinstance(params, dict):
            raise ValidationError(f"required key [{field}] not found")
        where = f"#/{field}"
        limit = 1024 if nova else 512
        if task == "TEXT_IMAGE":
            allowed = {"text", "negativeText"}
            if model != "amazon.titan-image-generator-v1":
                allowed |= {"conditionImage", "controlMode", "controlStrength"}
            if nova:
                allowed.add("style")
            extraneous(params, allowed, where)
            if "text" not in params:
                raise ValidationError(f"{where}/text: required key not found")
            if "style" in params and params["style"] not in NOVA_STYLES:
                raise ValidationError(f"{where}/style: invalid value")
        elif task == "IMAGE_VARIATION":
            extraneous(params, {"images", "text", "negativeText", "similarityStrength"}, where)
            self.variation_images(params, nova)
            number(params, "similarityStrength", 0.2, 1.0)
        else:
            self.masked(params, task, nova, where)
        for key in ("text", "negativeText"):
            if key in params and not (isinstance(params[key], str) and 1 <= len(params[key]) <= limit):
                raise ValidationError(f"{where}/{key}: expected 1 to {limit} characters")
        n = self.amazon_config(doc.get("imageGenerationConfig", {}), task, nova)
        text = params.get("text", "")
        if "forbidden" in text:
            raise ValidationError("This request has been blocked by our content filters. Please adjust your text "
                                  "prompt to submit a new request.")
        if "filtered-output" in text:
            return Reply(json={"images": [],
                               "error": "All of the generated images have been blocked by our content filters."})
        return Reply(json={"images": [b64(img) for img in self.images(n)]})

    def variation_images(self, params: dict[str, Any], nova: bool) -> None:
        images = params.get("images")
        if not isinstance(images, list) or not 1 <= len(images) <= 5:
            raise ValidationError("#/imageVariationParams/images: expected 1 to 5 images")
        for i, value in enumerate(images):
            image = decoded(value, f"#/imageVariationParams/images/{i}", AMAZON_TYPES)
            if nova:
                opaque(image, f"#/imageVariationParams/images/{i}")

    def masked(self, params: dict[str, Any], task: str, nova: bool, where: str) -> None:
        """INPAINTING and OUTPAINTING: one image, and a mask image or a mask prompt."""
        allowed = {"image", "text", "negativeText", "maskPrompt", "maskImage"}
        if task == "OUTPAINTING":
            allowed.add("outPaintingMode")
        extraneous(params, allowed, where)
        if "image" not in params:
            raise ValidationError(f"{where}/image: required key not found")
        image = decoded(params["image"], f"{where}/image", AMAZON_TYPES)
        if nova:
            opaque(image, f"{where}/image")
        if ("maskPrompt" in params) == ("maskImage" in params):
            raise ValidationError(f"{where}: exactly one of maskPrompt or maskImage is required")
        if "maskImage" in params:
            mask = decoded(params["maskImage"], f"{where}/maskImage", AMAZON_TYPES)
            same_size(image, mask)
            black_and_white(mask, f"{where}/maskImage")
        elif not isinstance(params["maskPrompt"], str) or not params["maskPrompt"]:
            raise ValidationError(f"{where}/maskPrompt: expected a non-empty string")
        if params.get("outPaintingMode", "DEFAULT") not in ("DEFAULT", "PRECISE"):
            raise ValidationError(f"{where}/outPaintingMode: must be DEFAULT or PRECISE")

    def amazon_config(self, config: Any, task: str, nova: bool) -> int:
        """Check ``imageGenerationConfig``; the number of images asked."""
        if not isinstance(config, dict):
            raise ValidationError("#/imageGenerationConfig: expected an object")
        allowed = {"numberOfImages", "quality", "cfgScale", "seed"}
        if task in ("TEXT_IMAGE", "IMAGE_VARIATION"):
            # In- and outpainting keep the input image's size.
            allowed |= {"width", "height"}
        extraneous(config, allowed, "#/imageGenerationConfig")
        n = number(config, "numberOfImages", 1, 5) or 1
        number(config, "cfgScale", 1.1, 10)
        number(config, "seed", 0, 2147483646)
        if config.get("quality", "standard") not in ("standard", "premium"):
            raise ValidationError("#/imageGenerationConfig/quality: must be standard or premium")
        w, hgt = config.get("width", 1024), config.get("height", 1024)
        if nova:
            if not (320 <= w <= 4096 and 320 <= hgt <= 4096 and w % 16 == 0 and hgt % 16 == 0
                    and w * hgt <= 4_194_304 and max(w, hgt) <= 4 * min(w, hgt)):
                raise ValidationError(f"The provided image resolution {w}x{hgt} is not supported")
        elif (w, hgt) not in TITAN_SIZES:
            raise ValidationError(f"The provided image resolution {w}x{hgt} is not supported")
        return n


def verify_sigv4(request: web.Request, rec: Recorded, keys: dict[str, tuple[str, str | None]], region: str,
                 service: str) -> Signed | tuple[int, str, str]:
    """A SigV4 signature recomputed with botocore from the request as received (raw path and
    query, the headers SignedHeaders names, the body) with the secret ``keys`` holds for its
    access key (and the session token it must carry); the scope's ``region`` and ``service``;
    ``X-Amz-Date`` within five minutes.  What it signed, or ``(status, error type, message)``
    as AWS words the refusal."""
    auth = rec.headers.get("Authorization", "")
    m = _AUTH.match(auth)
    if m is None:
        return (403, "IncompleteSignatureException", f"Authorization header requires existence of either "
                f"a 'X-Amz-Date' or a 'Date' header. Authorization={auth[:20]}")
    key_id, day, scope_region, scope_service, signed_list, signature = m.groups()
    if key_id not in keys:
        return 403, "UnrecognizedClientException", "The security token included in the request is invalid."
    secret, token = keys[key_id]
    if scope_region != region or scope_service != service:
        return (403, "InvalidSignatureException",
                f"Credential should be scoped to a valid region / correct service: '{scope_region}/{scope_service}'")
    amz_date = rec.headers.get("X-Amz-Date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return 403, "IncompleteSignatureException", "X-Amz-Date is missing or malformed"
    if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 300 or amz_date[:8] != day:
        return 403, "InvalidSignatureException", "Signature expired or not yet current"
    signed = signed_list.split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return 403, "InvalidSignatureException", "'Host' and 'X-Amz-Date' must be signed"
    sent_token = rec.headers.get("X-Amz-Security-Token")
    if token is not None and (sent_token != token or "x-amz-security-token" not in signed):
        return 403, "UnrecognizedClientException", "The security token included in the request is invalid."
    # Recompute from the request as received: raw path and query, signed headers, body.
    url = f"http://{rec.headers['Host']}{request.raw_path}"
    headers = {name: rec.headers[name] for name in signed if name in rec.headers}
    if len(headers) != len(signed):
        return 403, "InvalidSignatureException", "A signed header is missing from the request"
    aws = AWSRequest(method=request.method, url=url, headers=headers, data=rec.body)
    aws.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(key_id, secret, token), service, scope_region)
    canonical = signer.canonical_request(aws)
    expected = signer.signature(signer.string_to_sign(aws, canonical), aws)
    if signer.signed_headers(signer.headers_to_sign(aws)) != signed_list or not hmac.compare_digest(
            expected, signature):
        return (403, "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                "for details.")
    return Signed(key_id, scope_region, service, signed, sent_token)


def install(fake_upstream: FakeUpstream, *, models: tuple[str, ...] = MODELS, region: str = "us-east-1",
            served: list[list[bytes]] | None = None) -> BedrockFake:
    """Bedrock runtime for ``models`` on ``fake_upstream``, in ``region``; ``served`` (when
    given) is the list each successful generation's images are appended to."""
    bedrock = BedrockFake(fake_upstream, region)
    if served is not None:
        bedrock.served = served
    return bedrock.route(models)


def bare(model: str) -> str:
    model = model.rpartition("/")[2]
    for prefix in PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix):]
    return model


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def error(status: int, kind: str, message: str) -> Reply:
    """Bedrock's error answer."""
    return Reply(status, json={"message": message},
                 headers={"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                          "x-amzn-RequestId": "fake-request-id"})


def extraneous(doc: dict[str, Any], allowed: set[str], where: str = "#") -> None:
    for key in doc:
        if key not in allowed:
            raise ValidationError(f"Malformed input request: {where}: extraneous key [{key}] is not permitted, "
                                  "please reformat your input and try again.")


def number(doc: dict[str, Any], key: str, low: float, high: float) -> Any:
    if key not in doc:
        return None
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValidationError(f"{key}: {value!r} is not between {low} and {high}")
    return value


def decoded(value: Any, where: str, types: tuple[str, ...]) -> bytes:
    """The image a base64 field holds, of one of ``types``."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{where}: expected a base64-encoded image")
    try:
        data = base64.b64decode(value, validate=True)
    except ValueError:
        raise ValidationError(f"{where}: the image is not valid base64") from None
    if sniff(data) not in types:
        raise ValidationError(f"{where}: unsupported image format; use {' or '.join(t[6:].upper() for t in types)}")
    return data


def opaque(image: bytes, where: str) -> None:
    """Nova: an input PNG may have an alpha channel, but no transparent or translucent pixel."""
    pixels = read_png(image)
    if pixels is not None and any(p[3] != 255 for row in pixels[2] for p in row):
        raise ValidationError(f"{where}: the image has transparent or translucent pixels")


def same_size(image: bytes, mask: bytes) -> None:
    """A mask has the image's width and height (checked for PNGs)."""
    sizes = png_size(image), png_size(mask)
    if None not in sizes and sizes[0] != sizes[1]:
        raise ValidationError(f"The mask ({sizes[1][0]}x{sizes[1][1]}) must be the size of the image "
                              f"({sizes[0][0]}x{sizes[0][1]})")


def black_and_white(mask: bytes, where: str) -> None:
    """Titan and Nova masks hold pure black (the area to change) and pure white pixels only."""
    pixels = read_png(mask)
    if pixels is not None and any(p not in ((0, 0, 0, 255), (255, 255, 255, 255)) for row in pixels[2] for p in row):
        raise ValidationError(f"{where}: the mask must contain only pure black and pure white pixels")


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, ...]]) -> bytes:
    """A PNG of ``pixel(x, y)``: RGB, or RGBA when it gives four values."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    color_type = {3: 2, 4: 6}[len(pixel(0, 0))]
    raw = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    return (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def mask_png(width: int, height: int, box: tuple[int, int, int, int], *, inside: tuple[int, int, int] = (0, 0, 0),
             outside: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    """A mask: ``inside`` within ``box`` (left, top, right, bottom; Titan and Nova change black), ``outside``
    elsewhere."""
    left, top, right, bottom = box
    return png(width, height, lambda x, y: inside if left <= x < right and top <= y < bottom else outside)


def png_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's width and height; None for another format."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def read_png(data: bytes) -> tuple[int, int, list[list[tuple[int, int, int, int]]]] | None:
    """``(width, height, rows of RGBA pixels)`` of an 8-bit, non-interlaced grey, grey+alpha,
    RGB or RGBA PNG (what the tests make); None for anything else."""
    if png_size(data) is None:
        return None
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color_type)
    if depth != 8 or interlace or channels is None:
        return None
    idat, pos = b"", 8
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + size]
        elif kind == b"IEND":
            break
        pos += 12 + size
    rows = _unfilter(zlib.decompress(idat), width * channels, height, channels)
    return width, height, [[_rgba(row[x * channels:(x + 1) * channels]) for x in range(width)] for row in rows]


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytes]:
    rows: list[bytes] = []
    prior = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prior[i], prior[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prior = line
    return rows


def _rgba(px: bytes) -> tuple[int, int, int, int]:
    if len(px) <= 2:
        return px[0], px[0], px[0], px[1] if len(px) == 2 else 255
    return px[0], px[1], px[2], px[3] if len(px) == 4 else 255


def encoded(model: str) -> str:
    """The model id as botocore puts it in the path."""
    return quote(model, safe="")


@pytest.fixture(autouse=True)
def clean_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No AWS identity of the machine running the tests leaks in: no AWS_* variables,
    no shared files, no instance metadata lookups (import this fixture into a tests/conftest.py)."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# -- STS AssumeRole ---------------------------------------------------------------------
#
# A fake of AWS STS's AssumeRole, on a :class:`~gateway.testing.FakeUpstream` (``POST /``).
#
# As the STS API reference documents it: the Query API's form body (``Action=AssumeRole``,
# ``Version=2011-06-15``, ``RoleArn``, ``RoleSessionName``, optional ``DurationSeconds`` and
# ``ExternalId``), signed with SigV4 for service ``sts`` (verified with botocore by
# :func:`verify_sigv4`).  A role is assumed only by the base access keys
# its trust policy names, with the external id it asks for, for at most its maximum session
# duration.  The answer is ``AssumeRoleResponse`` XML with ``Credentials`` (``AccessKeyId``,
# ``SecretAccessKey``, ``SessionToken``, ``Expiration``); errors are ``ErrorResponse`` XML:
# ``AccessDenied`` (403) for a principal the trust policy does not name or a wrong external id,
# ``ValidationError`` (400) for a bad parameter or too long a session, ``InvalidClientTokenId`` /
# ``SignatureDoesNotMatch`` (403) for a signature STS does not take.
#
# Every set of credentials issued is added to the fake Bedrock runtime's known keys, so a request
# signed with them is accepted there; ``requests`` counts the calls.

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/bedrock-images"
_STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
#: verify_sigv4's refusals as STS names them.
_STS_CODES = {"UnrecognizedClientException": "InvalidClientTokenId",
              "InvalidSignatureException": "SignatureDoesNotMatch",
              "IncompleteSignatureException": "IncompleteSignature"}


class TrustPolicy:
    """Who may assume a role: base access key ids, the external id asked for, the longest session."""

    def __init__(self, principals: tuple[str, ...], external_id: str | None = None, max_duration: int = 3600) -> None:
        self.principals = principals
        self.external_id = external_id
        self.max_duration = max_duration


def sts_error(status: int, code: str, message: str, kind: str = "Sender") -> Reply:
    body = (f'<ErrorResponse xmlns="{_STS_NS}">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n'
            f"    <Message>{escape(message)}</Message>\n  </Error>\n  <RequestId>fake-sts-request</RequestId>\n"
            "</ErrorResponse>\n")
    return Reply(status, body=body.encode(), content_type="text/xml")


class StsFake:
    """STS in ``region`` on ``fake``: ``roles`` maps role ARNs to their :class:`TrustPolicy`; the
    base keys it knows are ``bedrock``'s (its ``keys``)."""

    def __init__(self, fake: FakeUpstream, bedrock: BedrockFake, roles: dict[str, TrustPolicy], *,
                 region: str = "us-east-1") -> None:
        self.fake = fake
        self.bedrock = bedrock
        self.roles = roles
        self.region = region
        #: Base access keys STS knows (a copy: what it issues is not a base key here).
        self.base_keys = dict(bedrock.keys)
        self._count = itertools.count(1)
        #: Every AssumeRole call received (answered or refused), and what each verified one signed.
        self.requests: list[Recorded] = []
        self.signed: list[Signed] = []
        #: Access key ids issued, in order.
        self.issued: list[str] = []
        #: Seconds each answer takes (so that concurrent requests overlap one call).
        self.delay = 0.0

    def install(self) -> StsFake:
        self.fake.on("POST", "/", self.handle)
        return self

    async def handle(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        self.requests.append(rec)
        await asyncio.sleep(self.delay)
        return await self.fake.respond(request, self.reply(request, rec))

    def reply(self, request: web.Request, rec: Recorded) -> Reply:
        if "Authorization" not in rec.headers:
            return sts_error(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        checked = verify_sigv4(request, rec, self.base_keys, self.region, "sts")
        if not isinstance(checked, Signed):
            status, kind, message = checked
            return sts_error(status, _STS_CODES.get(kind, kind), message)
        self.signed.append(checked)
        if not rec.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return sts_error(400, "InvalidParameterValue", "Content-Type must be application/x-www-form-urlencoded")
        form = dict(parse_qsl(rec.body.decode(), keep_blank_values=True))
        if form.get("Action") != "AssumeRole" or form.get("Version") != "2011-06-15":
            return sts_error(400, "InvalidAction", f"Could not find operation {form.get('Action')} for version "
                                                   f"{form.get('Version')}")
        problem = _validate(form)
        if problem is not None:
            return sts_error(400, "ValidationError", problem)
        arn = form["RoleArn"]
        policy = self.roles.get(arn)
        denied = (f"User: arn:aws:iam::{ACCOUNT}:user/base-{checked.access_key[-4:]} is not authorized to perform: "
                  f"sts:AssumeRole on resource: {arn}")
        if policy is None or checked.access_key not in policy.principals:
            return sts_error(403, "AccessDenied", denied)
        if policy.external_id is not None and form.get("ExternalId") != policy.external_id:
            return sts_error(403, "AccessDenied", denied)
        duration = int(form.get("DurationSeconds", "3600"))
        if duration > policy.max_duration:
            return sts_error(400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration "
                                                     "set for this role.")
        return self.issue(arn, form["RoleSessionName"], duration)

    def issue(self, arn: str, session: str, duration: int) -> Reply:
        n = next(self._count)
        access, secret, token = f"ASIASTSFAKE{n:09d}", f"sts-fake-secret-{n}-wJalrXUtnFEMI", f"sts-fake-session-{n}"
        self.bedrock.keys[access] = (secret, token)
        self.issued.append(access)
        expiration = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=duration)
        role = arn.rpartition("/")[2]
        body = (f'<AssumeRoleResponse xmlns="{_STS_NS}">\n  <AssumeRoleResult>\n    <AssumedRoleUser>\n'
                f"      <Arn>arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}</Arn>\n"
                f"      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:{session}</AssumedRoleId>\n    </AssumedRoleUser>\n"
                f"    <Credentials>\n      <AccessKeyId>{access}</AccessKeyId>\n"
                f"      <SecretAccessKey>{secret}</SecretAccessKey>\n      <SessionToken>{token}</SessionToken>\n"
                f"      <Expiration>{expiration.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>\n    </Credentials>\n"
                "    <PackedPolicySize>6</PackedPolicySize>\n  </AssumeRoleResult>\n"
                "  <ResponseMetadata>\n    <RequestId>fake-sts-request</RequestId>\n  </ResponseMetadata>\n"
                "</AssumeRoleResponse>\n")
        return Reply(200, body=body.encode(), content_type="text/xml")


def _validate(form: dict[str, Any]) -> str | None:
    """STS's parameter constraints, worded as its ValidationError words them."""
    session = form.get("RoleSessionName", "")
    if not _SESSION_NAME.match(session):
        return (f"1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [\\w+=,.@-]*")
    if not form.get("RoleArn"):
        return ("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: "
                "Member must not be null")
    duration = form.get("DurationSeconds", "3600")
    if not duration.isdigit() or not 900 <= int(duration) <= 43200:
        return (f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
                "Member must have value greater than or equal to 900")
    external = form.get("ExternalId")
    if external is not None and not 2 <= len(external) <= 1224:
        return "1 validation error detected: Value at 'externalId' failed to satisfy constraint"
    return None
