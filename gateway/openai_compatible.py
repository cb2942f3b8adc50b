"""A base for providers that speak OpenAI's images API (OpenAI itself, and the
many OpenAI-compatible services): a subclass sets ``name``, ``default_base_url``
and its capabilities, and is done."""
from __future__ import annotations

import msgspec

from gateway.provider import Call, Provider, UpstreamRequest, accept_encoding

_encode = msgspec.json.Encoder().encode


class OpenAIOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of OpenAI-style providers (config keys, or ``x-portkey-openai-*`` headers)."""

    openai_organization: str | None = None
    openai_project: str | None = None


class OpenAICompatibleProvider(Provider):
    """Forwards the unified request as it is; the answer is already the unified shape."""

    #: Path of the generations endpoint below the base URL.
    generations_path = "/images/generations"

    def build_generation(self, call: Call) -> UpstreamRequest:
        ctx = call.ctx
        # Untouched requests go upstream byte for byte; only overrides re-encode.
        body = _encode(call.params) if call.target.override_params else ctx.body
        headers = {"Content-Type": "application/json", "Accept-Encoding": accept_encoding(ctx.headers.get("Accept-Encoding"))}
        headers.update(call.forwarded_headers())
        headers.update(self.auth_headers(call))
        # decompress=False: a compressed answer is relayed compressed, as the client asked.
        return UpstreamRequest("POST", call.base_url + self.generations_path, headers, body, decompress=False)
