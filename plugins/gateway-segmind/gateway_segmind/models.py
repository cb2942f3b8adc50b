"""Segmind's text-to-image models the gateway knows, and how each one's request reads.

Every Segmind model is its own endpoint, ``POST /v1/<model>``, with its own
parameter names: the Stable Diffusion family takes ``samples``,
``img_width``/``img_height``, ``num_inference_steps`` and ``base64``; Flux.1
Schnell takes ``width``/``height`` and ``steps`` and answers raw image bytes;
Fast Flux.1 Schnell takes an ``aspect_ratio``.  Limits are the ones each
model's API page documents (segmind.com/models/<model>/api).  A model not
listed here is sent in the Stable Diffusion dialect with its parameters
unchecked: Segmind itself validates them.
"""
from __future__ import annotations

import msgspec

from gateway.sdk import ModelCapabilities

__all__ = ["DEFAULT_MODEL", "MODELS", "SD_DIALECT", "Dialect", "SegmindModel", "dialect_of"]


class Dialect(msgspec.Struct, frozen=True, kw_only=True):
    """The native names one model's request uses."""

    #: ``(width, height)`` fields, or None when the model takes ``aspect_ratio`` instead.
    size_fields: tuple[str, str] | None = ("img_width", "img_height")
    #: The field counting images per call, or None when the model makes one.
    samples_field: str | None = "samples"
    #: Where the client's ``steps`` goes.
    steps_field: str = "num_inference_steps"
    #: Whether the model takes ``base64`` (answer ``{"image": <base64>}`` instead of raw bytes).
    base64: bool = True


class SegmindModel(msgspec.Struct, frozen=True, kw_only=True):
    """One listed model: what it accepts, and its dialect."""

    caps: ModelCapabilities
    dialect: Dialect


SD_DIALECT = Dialect()
_FLUX_DIALECT = Dialect(size_fields=("width", "height"), steps_field="steps", base64=False)
_FAST_FLUX_DIALECT = Dialect(size_fields=None, samples_field=None, steps_field="steps")

#: Sides 512, 768 or 1024 each (the SD 1.5 distillations' documented choices).
_SD15_SIZES = tuple(f"{w}x{h}" for w in (512, 768, 1024) for h in (512, 768, 1024))

DEFAULT_MODEL = "sdxl1.0-txt2img"

MODELS: dict[str, SegmindModel] = {
    # img_width/img_height 512-2048 in multiples of 8; samples 1-4.
    "sdxl1.0-txt2img": SegmindModel(
        caps=ModelCapabilities(min_side=512, max_side=2048, side_multiple=8, max_n=4),
        dialect=SD_DIALECT,
    ),
    # "Can only be 1024": img_width and img_height allow 1024 alone; samples 1-4.
    "ssd-1b": SegmindModel(caps=ModelCapabilities(sizes=("1024x1024",), max_n=4), dialect=SD_DIALECT),
    # img_width/img_height each 512, 768 or 1024; samples 1-4.
    "tinysd1.5-txt2img": SegmindModel(caps=ModelCapabilities(sizes=_SD15_SIZES, max_n=4), dialect=SD_DIALECT),
    "potraitsd1.5-txt2img": SegmindModel(caps=ModelCapabilities(sizes=_SD15_SIZES, max_n=4), dialect=SD_DIALECT),
    # width/height 512-2048 in multiples of 8; no base64 field, so the answer is the
    # image itself and one image per call.
    "flux-schnell": SegmindModel(
        caps=ModelCapabilities(min_side=512, max_side=2048, side_multiple=8, max_n=1),
        dialect=_FLUX_DIALECT,
    ),
    # aspect_ratio from a fixed list; no samples field.
    "fast-flux-schnell": SegmindModel(
        caps=ModelCapabilities(aspect_ratios=("1:1", "16:9", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"),
                               max_n=1),
        dialect=_FAST_FLUX_DIALECT,
    ),
}


def dialect_of(model: str) -> Dialect:
    listed = MODELS.get(model)
    return listed.dialect if listed is not None else SD_DIALECT
