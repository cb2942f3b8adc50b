"""A base for providers that speak OpenAI's images API (OpenAI itself, and the
many OpenAI-compatible services): a subclass sets ``name``, ``default_base_url``
and its capabilities, and is done."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from gateway import json_decode
from gateway.errors import ContentPolicyViolation, GatewayError, MalformedAnswer
from gateway.forms import build_form
from gateway.generation import EditRequest, GenerationRequest, GenerationResult, Image, InputImage
from gateway.images.sniff import output_media_type
from gateway.provider import Provider, UpstreamRequest

if TYPE_CHECKING:  # pragma: no cover
    from gateway.attempt import Attempt
    from gateway.upstream import Answer

_encode = msgspec.json.Encoder().encode


class OpenAIOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of OpenAI-style providers (config keys, or ``x-portkey-openai-*`` headers)."""

    openai_organization: str | None = None
    openai_project: str | None = None


_NULL = msgspec.Raw(b"null")


class _Item(msgspec.Struct):
    # Raw: a megabyte of base64 is copied into the answer, not decoded and encoded again.
    b64_json: msgspec.Raw = _NULL
    url: str | None = None
    revised_prompt: str | None = None


class _Answer(msgspec.Struct):
    """OpenAI's images answer; the fields kept besides ``data`` are the documented ones."""

    data: list[_Item]
    created: int | None = None
    usage: dict[str, Any] | None = None
    background: str | None = None
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None
    #: Set by services that add their own ``provider`` field: the answer is then rebuilt.
    provider: Any = None
    #: A 2xx answer carrying an error is not an answer.
    error: Any = None


_decode_answer = json_decode.Decoder(_Answer).decode
_EXTRA = ("usage", "background", "output_format", "quality", "size")


class OpenAICompatibleProvider(Provider):
    """Sends the unified request as OpenAI's body; reads OpenAI's answer shape."""

    #: Paths of the generations and edits endpoints below the base URL.
    generations_path = "/images/generations"
    edits_path = "/images/edits"

    def generation_body(self, attempt: Attempt, req: GenerationRequest) -> bytes:
        """The JSON body: the client's own bytes when nothing was changed."""
        if self.body_as_sent(attempt, req) and attempt.inbound.body is not None:
            return attempt.inbound.body
        return _encode(self.body_fields(attempt, req))

    def body_fields(self, attempt: Attempt, req: GenerationRequest) -> dict[str, Any]:
        """The request's parameters as OpenAI names them (the JSON body, or an edit's text fields)."""
        body: dict[str, Any] = {"prompt": req.prompt}
        model = self.body_model(attempt, req)
        if model is not None:
            body["model"] = model
        if req.n != 1 or "n" in attempt.params:
            body["n"] = req.n
        for key in ("size", "quality", "style", "user"):
            value = getattr(req, key)
            if value is not None:
                body[key] = value
        if req.response_format is not None and self.takes_response_format(req):
            body["response_format"] = req.response_format
        body.update(req.extra)
        return body

    def body_as_sent(self, attempt: Attempt, req: GenerationRequest) -> bool:
        """Whether the client's body can go upstream byte for byte."""
        return (not req.changed and not attempt.target.override_params
                and (req.response_format is None or self.takes_response_format(req)))

    def body_model(self, attempt: Attempt, req: GenerationRequest) -> str | None:
        """The ``model`` a rebuilt body carries."""
        return req.model

    def takes_response_format(self, req: GenerationRequest) -> bool:
        """Whether the model takes ``req.response_format`` itself (gpt-image only answers
        base64; the gateway converts); a model not declared gets what the client sent."""
        caps = self.capabilities
        mc = caps.edit_model(req.model) if isinstance(req, EditRequest) else caps.model(req.model)
        return mc is None or req.response_format in mc.response_formats

    def answer_refusal(self, doc: Any) -> str | None:
        """Why a 2xx answer that is not the documented shape holds no images on content
        grounds (a service's own filter marks), or None.  ``doc`` is the decoded answer."""
        return None

    def unusable(self, body: bytes, what: str) -> GatewayError:
        """The error for a 2xx answer without usable images: a content refusal when
        :meth:`answer_refusal` finds one, else a malformed answer (502)."""
        try:
            refusal = self.answer_refusal(json_decode.decode(body))
        except msgspec.DecodeError:
            refusal = None
        if refusal is not None:
            return ContentPolicyViolation(self.name, refusal)
        return MalformedAnswer(self.name, what, body)

    def generation_headers(self, attempt: Attempt) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        headers.update(attempt.forwarded_headers())
        headers.update(self.auth_headers(attempt))
        return headers

    def generation_url(self, attempt: Attempt, req: GenerationRequest) -> str:
        return attempt.base_url + self.generations_path

    def build_generation(self, attempt: Attempt, req: GenerationRequest) -> UpstreamRequest:
        return UpstreamRequest("POST", self.generation_url(attempt, req), self.generation_headers(attempt),
                               self.generation_body(attempt, req))

    def edit_url(self, attempt: Attempt, req: EditRequest) -> str:
        return attempt.base_url + self.edits_path

    async def build_edit(self, attempt: Attempt, req: EditRequest) -> UpstreamRequest:
        """OpenAI's multipart edit: the client's bytes when nothing changed, else the form rebuilt
        with every file part as sent and in order, the text fields as negotiated."""
        inbound = attempt.inbound
        headers = self.generation_headers(attempt)
        if self.body_as_sent(attempt, req) and inbound.body is not None:
            headers["Content-Type"] = inbound.headers.get("Content-Type", "")
            return UpstreamRequest("POST", self.edit_url(attempt, req), headers, inbound.body)
        fields = self.body_fields(attempt, req)
        out: list[tuple[str, Any]] = []
        for name, value in inbound.form:
            if isinstance(value, InputImage):
                # The mask as the model takes it (converted from OpenAI's when it declares another).
                out.append((name, req.mask if name == "mask" and req.mask is not None else value))
            elif name in fields:
                out.append((name, fields.pop(name)))
        out.extend(fields.items())
        body, headers["Content-Type"] = await build_form(out)
        return UpstreamRequest("POST", self.edit_url(attempt, req), headers, body)

    def parse_generation(self, attempt: Attempt, req: GenerationRequest, answer: Answer) -> GenerationResult:
        body = answer.body
        try:
            doc = _decode_answer(body)
        except msgspec.ValidationError as e:
            raise self.unusable(body, _what(e)) from None
        except msgspec.DecodeError:
            raise MalformedAnswer(self.name, "the body is not JSON", body) from None
        if doc.error is not None:
            raise self.unusable(body, "the answer carries an `error`")
        ctype = output_media_type(doc.output_format)
        images = []
        for item in doc.data:
            b64: msgspec.Raw | None = item.b64_json
            first = memoryview(b64)[:1].tobytes()
            if first == b"n":  # null, or absent
                b64 = None
            elif first != b'"':
                raise MalformedAnswer(self.name, "a `b64_json` is not a string", body)
            if b64 is None and item.url is None:
                raise self.unusable(body, "a `data` item has neither `b64_json` nor `url`")
            images.append(Image(b64=b64, url=item.url, revised_prompt=item.revised_prompt, content_type=ctype))
        if not images:
            raise MalformedAnswer(self.name, "no images in `data`", body)
        extra = {k: getattr(doc, k) for k in _EXTRA if getattr(doc, k) is not None}
        # The answer goes on as it is (all its fields), unless the service put its own
        # `provider` in it: then it is rebuilt from the documented fields.
        reusable = doc.provider is None and isinstance(doc.created, int)
        return GenerationResult(images=images, created=doc.created, extra=extra, raw=body if reusable else None)


def _what(error: msgspec.ValidationError) -> str:
    msg = str(error)
    if "missing required field `data`" in msg:
        return "no `data` list"
    if msg.startswith("Expected `object`, got") and "$" not in msg:
        return "the body is not a JSON object"
    return f"not OpenAI's images answer ({msg})"
