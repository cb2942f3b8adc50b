"""OpenAI's images API (gpt-image-*, chatgpt-image-*; dall-e-2/3 for what still names them):
generations, edits, both streamed, and passthrough to api.openai.com."""
from __future__ import annotations

from typing import ClassVar

import msgspec

from gateway.sdk import (
    IMAGES_EDITS,
    IMAGES_GENERATIONS,
    PROXY,
    Attempt,
    Capabilities,
    ModelCapabilities,
    OpenAICompatibleProvider,
    OpenAIOptions,
)

from gateway_openai.prices import PRICES


#: gpt-image-1, -1-mini, -1.5, chatgpt-image-*: the three standard sizes or auto, 1-10 images.
GPT_IMAGE = ModelCapabilities(
    sizes=("1024x1024", "1536x1024", "1024x1536", "auto"), max_n=10, qualities=("low", "medium", "high", "auto"),
)
#: gpt-image-2 and later: any WIDTHxHEIGHT with both sides divisible by 16, between 1:3 and 3:1,
#: at most 3840x2160 (openai-python, `image_generate_params.py`, `size`); quality tiers beyond
#: low/medium/high/auto are reported for 2.5 and passed unchecked.
GPT_IMAGE_2 = ModelCapabilities(
    side_multiple=16, max_side=3840, max_pixels=3840 * 2160, max_ratio=3.0, auto_size=True, max_n=10,
    qualities=None,
)
#: Edits (openai-python `image_edit_params.py`): up to 16 input images (png, webp or jpg, each
#: under 50 MB) and a mask applied to the first, with the sizes of generations.
GPT_IMAGE_EDIT = msgspec.structs.replace(GPT_IMAGE, input_images=16, mask=True)
GPT_IMAGE_2_EDIT = msgspec.structs.replace(GPT_IMAGE_2, input_images=16, mask=True)


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
        endpoints=frozenset({IMAGES_GENERATIONS, IMAGES_EDITS, PROXY}),
        # No default: a request without `model` goes upstream without one, and OpenAI picks.
        default_model=None,
        models={
            # Shut down on OpenAI's API on 2026-05-12; kept for configs and proxies that still name them.
            "dall-e-2": ModelCapabilities(sizes=("256x256", "512x512", "1024x1024"), max_n=10,
                                          response_formats=("url", "b64_json")),
            "dall-e-3": ModelCapabilities(
                sizes=("1024x1024", "1792x1024", "1024x1792"), max_n=1,
                qualities=("standard", "hd"), styles=("vivid", "natural"), response_formats=("url", "b64_json"),
            ),
        },
        # The GPT image family, matched by name so a new snapshot works the day it ships. It takes
        # no `response_format` (it always answers base64; the gateway honours `url` itself).
        families=(("gpt-image-2*", GPT_IMAGE_2), ("gpt-image-*", GPT_IMAGE), ("chatgpt-image-*", GPT_IMAGE)),
        edit_models={
            # One square png under 4 MB, a mask of the same size.
            "dall-e-2": ModelCapabilities(sizes=("256x256", "512x512", "1024x1024"), max_n=10, mask=True,
                                          response_formats=("url", "b64_json")),
        },
        edit_families=(("gpt-image-2*", GPT_IMAGE_2_EDIT), ("gpt-image-*", GPT_IMAGE_EDIT),
                       ("chatgpt-image-*", GPT_IMAGE_EDIT)),
        parameters=frozenset(
            {"prompt", "model", "n", "size", "quality", "style", "response_format", "user", "background",
             "moderation", "output_format", "output_compression", "partial_images", "stream", "input_fidelity"}
        ),
        passes_unknown_parameters=True,
        # `stream: true` (the GPT image family, generations and edits): Server-Sent Events,
        # relayed as they arrive.
        streams=True,
    )

    #: List prices (gateway_openai/prices.py): tokens for an exact cost, per-image tables otherwise.
    prices = PRICES

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
