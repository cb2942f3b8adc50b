"""What each image model Azure OpenAI serves accepts, from Azure's documentation
(Azure OpenAI "How to use image generation models" and the images API reference):
generations, and edits (the GPT image family only; DALL-E models do not edit).

Azure names a deployment, not a model: the gateway maps parameters by the
request's ``model`` (or the ``azure_model_name`` option), and by
:data:`DEFAULT_MODEL` when neither names a model listed here.
"""
from __future__ import annotations

import msgspec

from gateway.sdk import ModelCapabilities

__all__ = ["DEFAULT_MODEL", "EDIT_FAMILIES", "FAMILIES", "MODELS", "PARAMETERS"]

_GPT_IMAGE_QUALITIES = ("low", "medium", "high", "auto")

# gpt-image-1, -1-mini and -1.5: three sizes (or auto), 1-10 images per request, base64 only.
_GPT_IMAGE_1 = ModelCapabilities(
    sizes=("1024x1024", "1536x1024", "1024x1536", "auto"), max_n=10, qualities=_GPT_IMAGE_QUALITIES,
)

_GPT_IMAGE_2 = ModelCapabilities(
    min_side=16, max_side=3840, side_multiple=16, min_pixels=655_360, max_pixels=8_294_400, max_ratio=3.0,
    auto_size=True, max_n=10, qualities=_GPT_IMAGE_QUALITIES,
)

MODELS = {
    "gpt-image-1": _GPT_IMAGE_1,
    "gpt-image-1-mini": _GPT_IMAGE_1,
    "gpt-image-1.5": _GPT_IMAGE_1,
    # Any size whose sides are multiples of 16, the long one at most 3840, between
    # 655,360 and 8,294,400 pixels, the side ratio at most 3:1.
    "gpt-image-2": _GPT_IMAGE_2,
    # Retired on Azure in 2026 but still answered by deployments that remain; one image per call.
    "dall-e-3": ModelCapabilities(
        sizes=("1024x1024", "1792x1024", "1024x1792"), max_n=1, qualities=("standard", "hd"),
        styles=("vivid", "natural"), response_formats=("url", "b64_json"),
    ),
}

#: Deployments of GPT image models not listed above: gpt-image-2's snapshots and later take its
#: rule, the rest of the family the three standard sizes.
FAMILIES = (("gpt-image-2*", _GPT_IMAGE_2), ("gpt-image-*", _GPT_IMAGE_1), ("chatgpt-image-*", _GPT_IMAGE_1))

#: Edits: the generation sizes, ``n`` and qualities, several input images (the reference documents
#: "an array of images" with no count; 16 is OpenAI's limit for the same API) and a mask, which
#: applies to the first image.
_GPT_IMAGE_1_EDIT = msgspec.structs.replace(_GPT_IMAGE_1, input_images=16, mask=True)
_GPT_IMAGE_2_EDIT = msgspec.structs.replace(_GPT_IMAGE_2, input_images=16, mask=True)
EDIT_FAMILIES = (("gpt-image-2*", _GPT_IMAGE_2_EDIT), ("gpt-image-*", _GPT_IMAGE_1_EDIT),
                 ("chatgpt-image-*", _GPT_IMAGE_1_EDIT))

#: The current family (gpt-image-1, -1-mini, -1.5 share these limits), for generations and edits.
DEFAULT_MODEL = "gpt-image-1"

#: Body parameters of Azure's images API (others pass through as sent).
PARAMETERS = frozenset({
    "prompt", "model", "n", "size", "quality", "style", "response_format", "user", "background",
    "output_format", "output_compression", "partial_images", "stream", "moderation", "input_fidelity",
})
