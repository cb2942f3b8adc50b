"""ByteDance Seedream through BytePlus ModelArk (or Volcengine Ark): ``POST {base}/images/generations``.

One synchronous JSON call makes one image (``n`` is parallel calls); an edit is the same call with
the reference images in ``image`` (URLs or data URIs, up to 14).  The answer is OpenAI-shaped
(``data[]`` of ``url``/``b64_json``), with per-image ``error`` objects in a group generation;
errors are ``{"error": {"code", "message", "param", "type"}}``, content refusals named by codes
such as ``OutputImageSensitiveContentDetected``.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

import msgspec

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Answer,
    Attempt,
    BadParam,
    BadRequest,
    Capabilities,
    ContentPolicyViolation,
    EditRequest,
    GatewayError,
    GenerationRequest,
    GenerationResult,
    Image,
    MalformedAnswer,
    Provider,
    UpstreamRequest,
)
from gateway_bytedance_seedream.models import (
    ANY,
    ANY_EDIT,
    BOOL_NATIVES,
    DEFAULT_MODEL,
    EDIT_FAMILIES,
    FAMILIES,
    NUMBER_NATIVES,
    OBJECT_NATIVES,
    PARAMETERS,
    VOLCENGINE_DEFAULT_MODEL,
)
from gateway_bytedance_seedream.options import (
    HEADER_OPTIONS,
    VOLCENGINE_REGIONS,
    SeedreamOptions,
    SeedreamSettings,
)
from gateway_bytedance_seedream.prices import PRICES

__all__ = ["SeedreamProvider", "refused"]

_encode = msgspec.json.Encoder().encode
_NULL = msgspec.Raw(b"null")


class _Error(msgspec.Struct):
    code: str | None = None
    message: str | None = None


class _Item(msgspec.Struct):
    url: str | None = None
    # Raw: a megabyte of base64 is copied into the answer, not decoded and encoded again.
    b64_json: msgspec.Raw = _NULL
    error: _Error | None = None


class _Answer(msgspec.Struct):
    data: list[_Item] | None = None
    created: int | None = None
    usage: dict[str, Any] | None = None
    error: _Error | None = None


_decode_answer = msgspec.json.Decoder(_Answer).decode


def refused(code: str | None) -> bool:
    """Whether an Ark error code is a content refusal: ``SensitiveContentDetected`` and its
    ``Input*``/``Output*`` and ``.<label>`` variants, and the ``*RiskDetection`` codes of
    Volcengine's content-security check (docs: ModelArk "Error codes")."""
    return bool(code) and ("SensitiveContentDetected" in code or code.endswith("RiskDetection"))


class SeedreamProvider(Provider):
    name = "bytedance-seedream"
    default_base_url = "https://ark.ap-southeast.bytepluses.com/api/v3"
    Options = SeedreamOptions
    Settings = SeedreamSettings
    header_options: ClassVar = HEADER_OPTIONS
    # An Ark API key belongs to one region: a virtual key's region is its own.
    host_options = ("region",)
    # URL answers are signed links on Ark's object storage (TOS), on Volcengine's or BytePlus's
    # domain by region: ark-content-generation-v2-ap-southeast-1.tos-ap-southeast-1.volces.com,
    # ark-content-generation-v2-cn-beijing.tos-cn-beijing.volces.com, ...
    image_hosts = ("ark-content-generation-*.tos-*.volces.com", "ark-content-generation-*.tos-*.bytepluses.com")
    #: Result URLs are signed for 24 hours: answers carry the gateway's own URLs instead.
    result_urls_expire = True
    capabilities = Capabilities(
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        default_model=DEFAULT_MODEL,
        families=FAMILIES,
        any_model=ANY,
        parameters=PARAMETERS,
        edit_families=EDIT_FAMILIES,
        any_edit_model=ANY_EDIT,
        default_edit_model=DEFAULT_MODEL,
    )
    #: Per generated image, BytePlus model IDs only (gateway_bytedance_seedream/prices.py).
    prices = PRICES
    settings: SeedreamSettings

    # -- where requests go -------------------------------------------------------------
    def api_base(self, attempt: Attempt) -> str:
        """The Ark API base for the attempt: a custom host as it is, else the ``region``'s, else the
        provider's base URL."""
        region = attempt.options.region
        if attempt.custom_host or region is None:
            return attempt.base_url
        base = self.settings.regions.get(region)
        if base is None:
            known = ", ".join(self.settings.regions)
            raise BadRequest(f"{self.name} has no region {region!r}; regions: {known}",
                             param="region", code="invalid_provider_option", provider=self.name)
        return base.rstrip("/")

    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        url = self.api_base(attempt) + path
        return f"{url}?{query_string}" if query_string else url

    def generation_params(self, attempt: Attempt) -> dict[str, Any]:
        """The parameters, with Volcengine's name of the default model for a Volcengine region."""
        params = attempt.params
        if not params.get("model") and attempt.options.region in VOLCENGINE_REGIONS:
            return {**params, "model": VOLCENGINE_DEFAULT_MODEL}
        return params

    # -- requests ----------------------------------------------------------------------------
    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        return self._request(attempt, self._body(attempt, req))

    def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """The generation call with the uploaded files as data URIs in ``image``: one as a string,
        several as a list in the order sent."""
        body = self._body(attempt, req)
        uris = [image.data_uri() for image in req.images]
        body["image"] = uris[0] if len(uris) == 1 else uris
        return self._request(attempt, body)

    def _request(self, attempt: Attempt, body: dict[str, Any]) -> UpstreamRequest:
        headers = {"Content-Type": "application/json", **attempt.forwarded_headers(), **self.auth_headers(attempt)}
        return UpstreamRequest("POST", self.api_base(attempt) + "/images/generations", headers, _encode(body))

    def _body(self, attempt: Attempt, req: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": req.model, "prompt": req.prompt}
        size = self._size(attempt, req)
        if size is not None:
            body["size"] = size
        if req.response_format is not None:
            body["response_format"] = req.response_format
        # `watermark` as the caller sends it, or not at all: Ark's default (on) is not overridden.
        body.update(_typed_natives(req.extra))
        return body

    def _size(self, attempt: Attempt, req: GenerationRequest) -> str | None:
        """``WIDTHxHEIGHT`` (as fitted by the core), else the ``quality`` tier (``2K``), else none
        (``auto``, or no size: Ark's default).  A tier next to a size is dropped: Ark takes one."""
        if req.width is None:
            return req.quality
        if req.quality is not None:
            if attempt.strict_params:
                raise BadParam("quality", f"`quality` {req.quality!r} is a resolution tier for {self.name}, which "
                                          "takes either a tier or `size`, not both")
            assert attempt.plan is not None  # called while building from a negotiated plan
            attempt.plan.report(f"quality={req.quality}->(dropped)")
        return f"{req.width}x{req.height}"

    # -- answers -----------------------------------------------------------------------------
    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        body = answer.body
        try:
            doc = _decode_answer(body)
        except msgspec.ValidationError as e:
            raise MalformedAnswer(self.name, f"not Ark's images answer ({e})", body) from None
        except msgspec.DecodeError:
            raise MalformedAnswer(self.name, "the body is not JSON", body) from None
        errors = [item.error for item in doc.data or () if item.error is not None]
        if doc.error is not None:
            errors.insert(0, doc.error)
        images = []
        for item in doc.data or ():
            if item.error is not None:
                continue  # a group generation skips an image its content check refused
            first = memoryview(item.b64_json)[:1].tobytes()
            if first not in (b'"', b"n"):
                raise MalformedAnswer(self.name, "a `b64_json` is not a string", body)
            b64 = item.b64_json if first == b'"' else None
            if b64 is None and not item.url:
                raise MalformedAnswer(self.name, "a `data` item has neither `b64_json` nor `url`", body)
            images.append(Image(b64=b64, url=item.url))
        if doc.error is not None or not images:
            raise self._no_images(errors, doc.data, body)
        return GenerationResult(images=images, created=doc.created,
                                extra={"usage": doc.usage} if doc.usage is not None else {})

    def _no_images(self, errors: list[_Error], data: list[_Item] | None, body: bytes) -> GatewayError:
        for err in errors:
            if refused(err.code):
                return ContentPolicyViolation(self.name, f"{err.code}: {err.message or 'refused'}")
        if errors:
            codes = ", ".join(f"{e.code}: {e.message}" for e in errors)
            return MalformedAnswer(self.name, f"no images, only errors ({codes})", body)
        return MalformedAnswer(self.name, "no `data` list" if data is None else "no images in `data`", body)

    def error_from_response(self, status: int, body: bytes, content_type: str) -> GatewayError:
        # Ark's error body is OpenAI's shape (`error.code` is Ark's code name): the base reads it.
        err = super().error_from_response(status, body, content_type)
        if refused(err.code):
            message = err.message.removeprefix(f"{self.name} error: ")
            return ContentPolicyViolation(self.name, f"{err.code}: {message}",
                                          status=status if 400 <= status < 500 else 400)
        return err


def _typed_natives(extra: dict[str, Any]) -> dict[str, Any]:
    """The native fields, typed: an edit's form sends ``watermark=false`` and
    ``sequential_image_generation_options={"max_images": 3}`` as text."""
    out = {}
    for key, value in extra.items():
        if isinstance(value, str):
            value = _parse(key, value)
        out[key] = value
    return out


def _parse(key: str, text: str) -> Any:
    word = text.strip()
    if key in BOOL_NATIVES:
        if word.lower() not in ("true", "false", "1", "0"):
            raise BadParam(key, f"Invalid `{key}` {text!r}: expected true or false")
        return word.lower() in ("true", "1")
    if key in OBJECT_NATIVES:
        try:
            return json.loads(word)
        except ValueError:
            raise BadParam(key, f"Invalid `{key}`: expected JSON, such as {{\"max_images\": 3}}") from None
    kind = NUMBER_NATIVES.get(key)
    if kind is not None:
        try:
            return kind(word)
        except ValueError:
            raise BadParam(key, f"Invalid `{key}` {text!r}: expected a number") from None
    return text
