"""A base for providers that speak OpenAI's images API (OpenAI itself, and the
many OpenAI-compatible services): a subclass sets ``name``, ``default_base_url``
and its capabilities, and is done."""
from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from gateway.generation import GenerationRequest, GenerationResult, Image, MalformedAnswer, decode_json
from gateway.provider import Call, Provider, UpstreamRequest

_encode = msgspec.json.Encoder().encode


class OpenAIOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of OpenAI-style providers (config keys, or ``x-portkey-openai-*`` headers)."""

    openai_organization: str | None = None
    openai_project: str | None = None


class OpenAICompatibleProvider(Provider):
    """Sends the unified request as OpenAI's body; reads OpenAI's answer shape."""

    #: Path of the generations endpoint below the base URL.
    generations_path = "/images/generations"

    def generation_body(self, call: Call, req: GenerationRequest) -> bytes:
        """The JSON body: the client's own bytes when nothing was changed."""
        if not req.changed and not call.target.override_params and self._format_passes(req):
            return call.ctx.body
        body: dict[str, Any] = {"prompt": req.prompt}
        if req.model is not None:
            body["model"] = req.model
        if req.n != 1 or "n" in call.params:
            body["n"] = req.n
        for key in ("size", "quality", "style", "user"):
            value = getattr(req, key)
            if value is not None:
                body[key] = value
        if req.response_format is not None and self._format_passes(req):
            body["response_format"] = req.response_format
        body.update(req.extra)
        return _encode(body)

    def _format_passes(self, req: GenerationRequest) -> bool:
        """Whether the model takes ``response_format`` itself (gpt-image only answers base64)."""
        if req.response_format is None:
            return True
        mc = self.capabilities.models.get(req.model or "") or self.capabilities.any_model
        return mc is None or req.response_format in mc.response_formats

    def generation_headers(self, call: Call) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        headers.update(call.forwarded_headers())
        headers.update(self.auth_headers(call))
        return headers

    def generation_url(self, call: Call, req: GenerationRequest) -> str:
        return call.base_url + self.generations_path

    def build_generation(self, call: Call, req: GenerationRequest) -> UpstreamRequest:
        return UpstreamRequest("POST", self.generation_url(call, req), self.generation_headers(call),
                               self.generation_body(call, req))

    def parse_generation(self, call: Call, req: GenerationRequest, resp: aiohttp.ClientResponse,
                         body: bytes) -> GenerationResult:
        doc = decode_json(self, body)
        items = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise MalformedAnswer(self.name, "no `data` list", body)
        images = []
        for item in items:
            if not isinstance(item, dict):
                raise MalformedAnswer(self.name, "a `data` item is not an object", body)
            b64, url, revised = item.get("b64_json"), item.get("url"), item.get("revised_prompt")
            if not (isinstance(b64, str) or isinstance(url, str)):
                raise MalformedAnswer(self.name, "a `data` item has neither `b64_json` nor `url`", body)
            images.append(Image(b64=b64 if isinstance(b64, str) else None, url=url if isinstance(url, str) else None,
                                revised_prompt=revised if isinstance(revised, str) else None,
                                content_type=_output_type(doc.get("output_format"))))
        if not images:
            raise MalformedAnswer(self.name, "no images in `data`", body)
        created = doc.get("created")
        extra = {k: v for k, v in doc.items() if k not in ("created", "data", "provider")}
        return GenerationResult(images=images, created=created if isinstance(created, int) else None, extra=extra)


def _output_type(fmt: Any) -> str | None:
    return {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}.get(fmt) if isinstance(fmt, str) else None
