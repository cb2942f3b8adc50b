"""Stability AI's image models: where each one is called and what it accepts.

Two APIs serve text-to-image (https://platform.stability.ai/docs/api-reference):

- v1 ``POST /v1/generation/{engine}/text-to-image``: JSON in, ``artifacts`` out,
  up to 10 images per call, explicit ``width``/``height``.
- v2beta ``POST /v2beta/stable-image/generate/{core,ultra,sd3}``: multipart
  form in, one image per call, ``aspect_ratio`` instead of a size; the SD 3.5
  models share the ``sd3`` endpoint and are chosen with its ``model`` field.

Edits (``/v1/images/edits``) go to the v2beta edit routes
(``/v2beta/stable-image/edit/{inpaint,erase,outpaint,search-and-replace,
search-and-recolor,remove-background}``) or to image-to-image on the sd3 and
ultra generate endpoints, by model: see :data:`EDIT_CAPABILITIES` and
:func:`edit_route_for`.

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


# -- edits ------------------------------------------------------------------------------------
# Routes, fields and limits from Stability's v2beta reference (Edit: inpaint, erase, outpaint,
# search-and-replace, search-and-recolor, remove-background; Generate: sd3 and ultra with an image).

#: The largest request body the v2beta API takes (its documented 413).
MAX_REQUEST_BYTES = 10 * 1024 * 1024
#: Outpaint's directions: pixels to add on each side, at least one above zero.
OUTPAINT_DIRECTIONS = ("left", "right", "up", "down")


class ImageRules(msgspec.Struct, frozen=True):
    """The input image a route takes: sides, pixel count and shape."""

    min_side: int = 64
    max_side: int | None = None
    min_pixels: int | None = 4_096
    max_pixels: int | None = None
    #: The long side over the short one at most this (2.5: between 1:2.5 and 2.5:1).
    max_ratio: float | None = None

    def problem(self, width: int, height: int) -> str | None:
        """What is wrong with a ``width`` x ``height`` image here; None when it fits."""
        pixels = width * height
        if min(width, height) < self.min_side:
            return f"every side must be at least {self.min_side} pixels"
        if self.max_side is not None and max(width, height) > self.max_side:
            return f"every side must be at most {self.max_side} pixels"
        if self.min_pixels is not None and pixels < self.min_pixels:
            return f"it must have at least {self.min_pixels:,} pixels"
        if self.max_pixels is not None and pixels > self.max_pixels:
            return f"it must have at most {self.max_pixels:,} pixels"
        if self.max_ratio is not None and max(width, height) > self.max_ratio * min(width, height):
            return f"its aspect ratio must be between 1:{self.max_ratio:g} and {self.max_ratio:g}:1"
        return None


#: Inpaint, erase: every side 64+, 4,096 to 9,437,184 pixels.
EDIT_IMAGE = ImageRules(max_pixels=9_437_184)
#: Outpaint, search-and-replace, search-and-recolor: the same, and 1:2.5 to 2.5:1.
EDIT_IMAGE_SHAPED = ImageRules(max_pixels=9_437_184, max_ratio=2.5)
#: Remove-background: every side 64+, 4,096 to 4,194,304 pixels.
REMOVE_BACKGROUND_IMAGE = ImageRules(max_pixels=4_194_304)
#: sd3 image-to-image: every side 64+ (no pixel count documented).
SD3_IMAGE = ImageRules(min_pixels=None)
#: Ultra with an image: sides 64 to 16,384, at least 4,096 pixels.
ULTRA_IMAGE = ImageRules(max_side=16_384)


class EditRoute(msgspec.Struct, frozen=True):
    """Where an edit model goes and what its form carries besides ``image``."""

    #: URL path below the base URL.
    path: str
    #: Whether the form carries the prompt (erase and remove-background take none).
    prompt: bool = True
    #: The sd3 endpoint's ``mode`` and ``model`` fields.
    mode: str | None = None
    model_field: str | None = None
    #: Native fields the route cannot go without.
    required: tuple[str, ...] = ()
    #: Native fields of which at least one must be above zero.
    one_of: tuple[str, ...] = ()
    #: Without a ``mask``, the image's alpha channel is the mask (transparent = edited).
    alpha_mask: bool = False
    output_formats: tuple[str, ...] = OUTPUT_FORMATS
    image: ImageRules = EDIT_IMAGE


_COMMON_EDIT = frozenset({"seed", "output_format"})
#: Native form fields of each edit model (``style`` maps onto ``style_preset`` where it is listed).
INPAINT_PARAMETERS = _COMMON_EDIT | {"negative_prompt", "grow_mask", "style_preset"}
ERASE_PARAMETERS = _COMMON_EDIT | {"grow_mask"}
OUTPAINT_PARAMETERS = _COMMON_EDIT | {*OUTPAINT_DIRECTIONS, "creativity", "style_preset"}
SEARCH_AND_REPLACE_PARAMETERS = _COMMON_EDIT | {"search_prompt", "negative_prompt", "grow_mask", "style_preset"}
SEARCH_AND_RECOLOR_PARAMETERS = _COMMON_EDIT | {"select_prompt", "negative_prompt", "grow_mask", "style_preset"}
REMOVE_BACKGROUND_PARAMETERS = frozenset({"output_format"})
ULTRA_EDIT_PARAMETERS = _COMMON_EDIT | {"strength", "negative_prompt", "style_preset"}
SD3_EDIT_PARAMETERS = ULTRA_EDIT_PARAMETERS | {"cfg_scale"}


def _edit(parameters: frozenset[str], *, mask: bool = False, styles: bool = True,
          mask_edits: str = "transparent") -> ModelCapabilities:
    # One image per edit and per call (n > 1 is parallel calls); no size: the output's size is
    # Stability's (``auto`` is taken as asking for just that).
    return ModelCapabilities(auto_size=True, max_n=1, max_images=10, mask=mask, parameters=parameters,
                             styles=STYLE_PRESETS if styles else (), mask_edits=mask_edits)


_SD3_EDIT = _edit(SD3_EDIT_PARAMETERS)
_ULTRA_EDIT = _edit(ULTRA_EDIT_PARAMETERS)

#: Per edit model: the capabilities negotiation reads (images, mask, native fields, styles).
EDIT_CAPABILITIES: dict[str, ModelCapabilities] = {
    # Stability masks are white where the image changes: the core converts an OpenAI mask.
    "inpaint": _edit(INPAINT_PARAMETERS, mask=True, mask_edits="white"),
    "erase": _edit(ERASE_PARAMETERS, mask=True, styles=False, mask_edits="white"),
    "outpaint": _edit(OUTPAINT_PARAMETERS),
    "search-and-replace": _edit(SEARCH_AND_REPLACE_PARAMETERS),
    "search-and-recolor": _edit(SEARCH_AND_RECOLOR_PARAMETERS),
    "remove-background": _edit(REMOVE_BACKGROUND_PARAMETERS, styles=False),
    "ultra": _ULTRA_EDIT,
    "stable-image-ultra": _ULTRA_EDIT,
    **{name: _SD3_EDIT for name in ("sd3", *SD3_MODELS)},
}
#: sd3 variants the gateway does not list yet: image-to-image on the sd3 endpoint.
EDIT_FAMILIES = (("sd3*", _SD3_EDIT),)
DEFAULT_EDIT_MODEL = "inpaint"

_EDIT_PATH = "/v2beta/stable-image/edit/"
_EDIT_ROUTES = {
    "inpaint": EditRoute(_EDIT_PATH + "inpaint", alpha_mask=True),
    "erase": EditRoute(_EDIT_PATH + "erase", prompt=False, alpha_mask=True),
    "outpaint": EditRoute(_EDIT_PATH + "outpaint", one_of=OUTPAINT_DIRECTIONS, image=EDIT_IMAGE_SHAPED),
    "search-and-replace": EditRoute(_EDIT_PATH + "search-and-replace", required=("search_prompt",),
                                    image=EDIT_IMAGE_SHAPED),
    "search-and-recolor": EditRoute(_EDIT_PATH + "search-and-recolor", required=("select_prompt",),
                                    image=EDIT_IMAGE_SHAPED),
    "remove-background": EditRoute(_EDIT_PATH + "remove-background", prompt=False, output_formats=("png", "webp"),
                                   image=REMOVE_BACKGROUND_IMAGE),
    "ultra": EditRoute("/v2beta/stable-image/generate/ultra", required=("strength",), image=ULTRA_IMAGE),
    # Without a model field the endpoint uses its default (sd3.5-large).
    "sd3": EditRoute("/v2beta/stable-image/generate/sd3", mode="image-to-image", required=("strength",),
                     image=SD3_IMAGE),
}


def edit_route_for(model: str) -> EditRoute | None:
    """The edit route of ``model``; None when it names no Stability edit.

    ``sd3*`` names the gateway does not list go to the sd3 endpoint's ``model``
    field, as for generations; any other unknown name is no edit the gateway knows.
    """
    model = _ALIASES.get(model, model)
    if model in _EDIT_ROUTES:
        return _EDIT_ROUTES[model]
    if model.startswith("sd3") and _MODEL_NAME.fullmatch(model):
        return msgspec.structs.replace(_EDIT_ROUTES["sd3"], model_field=model)
    return None


def edit_models() -> list[str]:
    """The edit model names, for messages."""
    return sorted(EDIT_CAPABILITIES)
