"""OpenAI's images API (dall-e-2, dall-e-3, gpt-image-*) and passthrough to api.openai.com."""
from __future__ import annotations

from typing import ClassVar

from gateway.sdk import Attempt, Capabilities, ModelCapabilities, OpenAICompatibleProvider, OpenAIOptions


class OpenAIProvider(OpenAICompatibleProvider):
    name = "openai"
    default_base_url = "https://api.openai.com/v1"
    image_hosts = ("oaidalleapiprodscus.blob.core.windows.net",)
    Options = OpenAIOptions
    header_options: ClassVar = {
        "x-portkey-openai-organization": "openai_organization",
        "x-portkey-openai-project": "openai_project",
    }
    capabilities = Capabilities(
        default_model="dall-e-2",
        models={
            "dall-e-2": ModelCapabilities(sizes=("256x256", "512x512", "1024x1024"), max_n=10,
                                          response_formats=("url", "b64_json")),
            "dall-e-3": ModelCapabilities(
                sizes=("1024x1024", "1792x1024", "1024x1792"), max_n=1,
                qualities=("standard", "hd"), styles=("vivid", "natural"), response_formats=("url", "b64_json"),
            ),
            "gpt-image-1": ModelCapabilities(
                sizes=("1024x1024", "1536x1024", "1024x1536", "auto"), max_n=10,
                qualities=("low", "medium", "high", "auto"),
            ),
            "gpt-image-1-mini": ModelCapabilities(
                sizes=("1024x1024", "1536x1024", "1024x1536", "auto"), max_n=10,
                qualities=("low", "medium", "high", "auto"),
            ),
        },
        parameters=frozenset(
            {"prompt", "model", "n", "size", "quality", "style", "response_format", "user", "background",
             "moderation", "output_format", "output_compression", "partial_images", "stream"}
        ),
        passes_unknown_parameters=True,
    )

    #: The organization and project choose whose quota and data an answer comes from.
    cache_vary_headers = ("accept", "accept-encoding", "openai-organization", "openai-project")
    volatile_headers = frozenset({"set-cookie", "x-request-id", "openai-processing-ms", "date", "age"})

    def auth_headers(self, attempt: Attempt) -> dict[str, str]:
        headers = super().auth_headers(attempt)
        if attempt.options.openai_organization:
            headers["OpenAI-Organization"] = attempt.options.openai_organization
        if attempt.options.openai_project:
            headers["OpenAI-Project"] = attempt.options.openai_project
        return headers
