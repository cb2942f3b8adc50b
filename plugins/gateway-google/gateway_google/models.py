"""The Gemini image models ("Nano Banana"): what each takes, by family, on both of Google's APIs.

Google documents, per model: the ``imageConfig.aspectRatio`` values, the ``imageConfig.imageSize``
tiers (none on Gemini 2.5 Flash Image, which makes 1K images only) and how many input images one
prompt takes.  A model is found by its exact name, else by its family's pattern, so a new version
(``gemini-3.1-flash-image-preview-09-2026``, a ``gemini-4-...-image``) works the day it ships.
"""
from __future__ import annotations

import math
from fnmatch import fnmatchcase

import msgspec

from gateway.sdk import ModelCapabilities

__all__ = [
    "DEFAULT_MODEL", "EXTREME_RATIOS", "FAMILIES", "MODELS", "QUALITIES", "STANDARD_RATIOS", "TIER_PIXELS",
    "ImageModel", "capabilities", "model_spec", "nearest_ratio", "tier_for_pixels", "tier_for_quality",
]

#: The ten ratios every Gemini image model takes.
STANDARD_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
#: The long shapes Gemini 3.1 Flash Image adds.
EXTREME_RATIOS = ("1:4", "4:1", "1:8", "8:1")
#: ``imageSize`` tiers and the pixels of their square image (the tier sets the long edge's scale).
TIER_PIXELS = {"512": 512 * 512, "1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 4096 * 4096}
#: OpenAI's quality names taken where a model has tiers (``quality`` picks a tier when no ``size`` does).
QUALITIES = ("auto", "low", "medium", "high", "standard", "hd")
_QUALITY_RANK = {"low": 0, "auto": 1, "medium": 1, "standard": 1, "high": 2, "hd": 2}

DEFAULT_MODEL = "gemini-3.1-flash-image"


class ImageModel(msgspec.Struct, frozen=True):
    """What one Gemini image model takes."""

    aspect_ratios: tuple[str, ...]
    #: ``imageSize`` values, smallest first; ``()``: the model has no ``imageSize`` (always 1K).
    image_sizes: tuple[str, ...]
    #: Images one prompt takes (an edit's inputs).
    input_images: int


_FLASH_25 = ImageModel(STANDARD_RATIOS, (), 3)
_PRO_3 = ImageModel(STANDARD_RATIOS, ("1K", "2K", "4K"), 14)
_FLASH_31 = ImageModel(STANDARD_RATIOS + EXTREME_RATIOS, ("512", "1K", "2K", "4K"), 14)

#: The documented models by name (the README's table lists each).
MODELS: dict[str, ImageModel] = {
    "gemini-3.1-flash-image": _FLASH_31,
    "gemini-3.1-flash-image-preview": _FLASH_31,
    "gemini-3-pro-image": _PRO_3,
    "gemini-3-pro-image-preview": _PRO_3,
    "gemini-2.5-flash-image": _FLASH_25,
}
#: Families, tried in order for a name not in MODELS; the last one is any newer Gemini image
#: model, taken to accept what every Gemini 3 image model accepts.
FAMILIES: tuple[tuple[str, ImageModel], ...] = (
    ("gemini-2.5-flash-image*", _FLASH_25),
    ("gemini-3-pro-image*", _PRO_3),
    ("gemini-3.1-flash-image*", _FLASH_31),
    ("gemini-*-image*", _PRO_3),
)


def model_spec(name: str | None) -> ImageModel | None:
    """The model's entry, else its family's; None for a model that is not a Gemini image model."""
    if not name:
        return None
    found = MODELS.get(name)
    if found is not None:
        return found
    for pattern, spec in FAMILIES:
        if fnmatchcase(name, pattern):
            return spec
    return None


def capabilities(spec: ImageModel) -> ModelCapabilities:
    """The core's view of a model: aspect ratios (``size`` maps to the nearest), one image a call,
    quality names only where there are tiers to pick, ``auto`` as the model's own default."""
    return ModelCapabilities(aspect_ratios=spec.aspect_ratios, auto_size=True, max_n=1,
                             qualities=QUALITIES if spec.image_sizes else (), input_images=spec.input_images)


def tier_for_pixels(width: int, height: int, tiers: tuple[str, ...]) -> str:
    """The tier nearest in pixel count (on a log scale: 1536x1024 is 1K, 2048x2048 is 2K)."""
    area = width * height
    return min(tiers, key=lambda t: abs(math.log(area / TIER_PIXELS[t])))


def tier_for_quality(quality: str, tiers: tuple[str, ...]) -> str:
    """``low``: the smallest tier; ``medium``/``standard``/``auto``: 1K; ``high``/``hd``: 2K."""
    rank = _QUALITY_RANK.get(quality, 1)
    if rank == 0:
        return tiers[0]
    want = "2K" if rank == 2 else "1K"
    return want if want in tiers else tiers[-1]


def nearest_ratio(width: int, height: int, ratios: tuple[str, ...] = STANDARD_RATIOS) -> str:
    """The listed ratio closest in shape."""
    def distance(ratio: str) -> float:
        w, _, h = ratio.partition(":")
        return abs(math.log((width / height) / (int(w) / int(h))))
    return min(ratios, key=distance)
