"""Stability AI's image models: where each one is called and what it accepts.

Two APIs serve text-to-image (https://platform.stability.ai/docs/api-reference):

- v1 ``POST /v1/generation/{engine}/text-to-image``: JSON in, ``artifacts`` out,
  up to 10 images per call, explicit ``width``/``height``.
- v2beta ``POST /v2beta/stable-image/generate/{core,ultra,sd3}``: multipart
  form in, one image per call, ``aspect_ratio`` instead of a size; the SD 3.5
  models share the ``sd3`` endpoint and are chosen with its ``model`` field.

The limits below are the documented ones; the docstring of each constant
says where they come from.
"""
from __future__ import annotations

import re

import msgspec

from gateway.sdk import ModelCapabilities

V1 = "v1"
V2 = "v2"

#: ``style_preset`` values, the same list for v1 and every v2beta generate endpoint.
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art",
    "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami", "photographic", "pixel-art",
    "tile-texture",
)
#: v2beta ``aspect_ratio`` values (core, ultra, sd3).
ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
#: The only ``width``x``height`` pairs SDXL 1.0 takes.
SDXL_SIZES = ("1024x1024", "1152x896", "1216x832", "1344x768", "1536x640", "640x1536", "768x1344", "832x1216",
              "896x1152")
#: v2beta ``output_format`` values (the image type of the answer).
OUTPUT_FORMATS = ("png", "jpeg", "webp")
#: ``model`` values of the sd3 endpoint; the ``sd3-*`` names are re-routed by
#: Stability to their SD 3.5 equivalents since 2025-04-17.
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash",
              "sd3-large", "sd3-large-turbo", "sd3-medium")

#: Native v1 fields a client may send (they pass through under the same names);
#: ``negative_prompt`` becomes a second text prompt with weight -1.
V1_PARAMETERS = frozenset({"cfg_scale", "clip_guidance_preset", "sampler", "seed", "steps", "style_preset", "extras",
                           "negative_prompt"})
#: Native form fields of the core and ultra endpoints.
CORE_PARAMETERS = frozenset({"negative_prompt", "seed", "style_preset", "output_format", "aspect_ratio"})
#: The sd3 endpoint also takes ``cfg_scale``.
SD3_PARAMETERS = CORE_PARAMETERS | {"cfg_scale"}

#: Largest seed each API takes (v1: uint32; v2beta: one less).
V1_MAX_SEED = 4294967295
V2_MAX_SEED = 4294967294

_V1_ENGINE = dict(max_n=10, max_images=10, styles=STYLE_PRESETS, parameters=V1_PARAMETERS)
_V2_CORE = ModelCapabilities(aspect_ratios=ASPECT_RATIOS, max_n=1, max_images=10, styles=STYLE_PRESETS,
                             parameters=CORE_PARAMETERS)
_V2_SD3 = msgspec.structs.replace(_V2_CORE, parameters=SD3_PARAMETERS)

#: Per model: the capabilities the core maps ``size``/``n``/``style`` onto.
CAPABILITIES: dict[str, ModelCapabilities] = {
    "stable-diffusion-xl-1024-v1-0": ModelCapabilities(sizes=SDXL_SIZES, **_V1_ENGINE),
    # Sides 320 to 1536 in steps of 64 (the engine's rule), and 262,144 to
    # 1,048,576 pixels (the v1 API's rule for every engine but the 768 ones).
    "stable-diffusion-v1-6": ModelCapabilities(min_side=320, max_side=1536, side_multiple=64, min_pixels=262_144,
                                               max_pixels=1_048_576, **_V1_ENGINE),
    **{name: _V2_CORE for name in ("core", "ultra", "stable-image-core", "stable-image-ultra")},
    **{name: _V2_SD3 for name in ("sd3", *SD3_MODELS)},
}
#: What the gateway assumes of a model it does not know: a v2beta endpoint.
ANY_MODEL = _V2_SD3
DEFAULT_MODEL = "core"

_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9.\-]*", re.IGNORECASE)


class Route(msgspec.Struct, frozen=True):
    """Where a model's generation goes."""

    api: str
    #: URL path below the base URL.
    path: str
    #: The sd3 endpoint's ``model`` form field, when the model needs one.
    model_field: str | None = None

    @property
    def max_seed(self) -> int:
        return V1_MAX_SEED if self.api == V1 else V2_MAX_SEED


_ROUTES = {
    "stable-diffusion-xl-1024-v1-0": Route(V1, "/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image"),
    "stable-diffusion-v1-6": Route(V1, "/v1/generation/stable-diffusion-v1-6/text-to-image"),
    "core": Route(V2, "/v2beta/stable-image/generate/core"),
    "ultra": Route(V2, "/v2beta/stable-image/generate/ultra"),
    # Without a model field the endpoint uses its default (sd3.5-large).
    "sd3": Route(V2, "/v2beta/stable-image/generate/sd3"),
}
_ALIASES = {"stable-image-core": "core", "stable-image-ultra": "ultra"}


def route_for(model: str) -> Route | None:
    """The route of ``model``; None when the name cannot be a Stability model.

    Models the gateway does not list are sent to the v2beta endpoint of that
    name (``sd3*`` names to the sd3 endpoint's ``model`` field), so a model
    Stability adds later works before this table knows it.
    """
    model = _ALIASES.get(model, model)
    if model in _ROUTES:
        return _ROUTES[model]
    if not _MODEL_NAME.fullmatch(model) or ".." in model:
        return None
    if model.startswith("sd3"):
        return Route(V2, _ROUTES["sd3"].path, model_field=model)
    return Route(V2, f"/v2beta/stable-image/generate/{model}")
