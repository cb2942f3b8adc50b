"""The Gemini API (Google AI Studio keys): ``x-portkey-provider: google``.

``POST https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent`` with the
key in the ``x-goog-api-key`` header, never in the URL (a ``?key=`` query reaches access logs).
Passthrough ``/v1/{path}`` goes below ``/v1beta`` (``/v1/models`` lists the models), or to the
host root for a path that names its own version (``/v1/v1alpha/...``) or an upload (``/v1/upload/...``).
"""
from __future__ import annotations

import re

from gateway.sdk import Attempt, AuthError, hookimpl

from gateway_google.bodies import GEMINI_NATIVES
from gateway_google.generate_content import GenerateContentProvider, image_capabilities, version_path

__all__ = ["GeminiProvider", "gateway_register_providers"]

#: The base URL's own version segment (``.../v1beta``), replaced by a path that names one.
_BASE_VERSION = re.compile(r"/v\d+(?:alpha|beta)?\d*$")


class GeminiProvider(GenerateContentProvider):
    name = "google"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    natives = GEMINI_NATIVES
    capabilities = image_capabilities(GEMINI_NATIVES)

    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        """The key as ``x-goog-api-key`` (the google-genai SDK's header)."""
        return {"x-goog-api-key": attempt.api_key} if attempt.api_key else {}

    def model_url(self, attempt: Attempt, model: str) -> str:
        if not attempt.api_key:
            raise AuthError(f"{self.name}: no Gemini API key: send it as Authorization: Bearer <key> (or `api_key` "
                            "in the config, or a virtual key)", provider=self.name)
        return f"{attempt.base_url}/models/{model}:generateContent"

    def proxy_url(self, attempt: Attempt, path: str, query_string: str) -> str:
        base = attempt.base_url
        if version_path(path) or path.startswith("/upload/"):
            base = _BASE_VERSION.sub("", base)
        url = base + path
        return f"{url}?{query_string}" if query_string else url


@hookimpl
def gateway_register_providers() -> list[type]:
    return [GeminiProvider]
