"""Replicate models the gateway knows by name, and how a model string is addressed.

Every Replicate model has its own input schema.  For the well-known image
models the tables below say how the unified parameters land in ``input``
(each from the model's documented schema on replicate.com): :data:`MODELS`
for generations, :data:`EDIT_MODELS` for edits (which input fields take the
uploaded images and mask).  Any other model gets the generic generation
mapping (``prompt``, ``width``/``height`` from ``size``) and the client's
native parameters as they are; it cannot edit (its image field is unknown).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from gateway.sdk import BadParam, EditRequest, GenerationRequest, InputType, ModelCapabilities, typed_natives

#: Where ``size`` goes in a model's input:
#: ``aspect_ratio``: ``aspect_ratio: "W:H"``;
#: ``custom``: ``aspect_ratio: "custom"`` plus ``width``/``height``;
#: ``size_custom``: ``size: "custom"`` plus ``width``/``height`` (Seedream);
#: ``width_height``: ``width``/``height``;
#: ``resolution``: ``resolution: "WxH"`` (Ideogram);
#: ``size``: ``size: "WxH"`` (Recraft);
#: None: nowhere (the output takes the input image's size).
SizeField = Literal["aspect_ratio", "custom", "size_custom", "width_height", "resolution", "size"]
#: A documented input that is not text, as read from an edit form's text: ``int``, ``num``, ``bool``.


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One known model: what it accepts and where the unified parameters go."""

    caps: ModelCapabilities
    size_field: SizeField | None
    #: The input field for images per prediction (``num_outputs``), for models that make several.
    n_field: str | None = None
    #: The input field ``style`` maps to, for models whose styles are listed in ``caps.styles``.
    style_field: str | None = None
    #: A model that is not an official one runs only by version: the version the name stands for.
    version: str | None = None
    #: Edits: the input field the uploaded images go in (data URIs), whether it takes a list
    #: of them (else one), and the mask's field for models that take one.
    image_field: str | None = None
    image_list: bool = False
    mask_field: str | None = None
    #: Edits: the model's documented inputs that are numbers or booleans (a form sends text).
    types: Mapping[str, InputType] = msgspec.field(default_factory=dict)


FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
ULTRA_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")
SD35_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "9:16", "9:21")
IDEOGRAM_V3_RESOLUTIONS = (
    "512x1536", "576x1408", "576x1472", "576x1536", "640x1344", "640x1408", "640x1472", "640x1536", "704x1152",
    "704x1216", "704x1280", "704x1344", "704x1408", "704x1472", "736x1312", "768x1088", "768x1216", "768x1280",
    "768x1344", "800x1280", "832x960", "832x1024", "832x1088", "832x1152", "832x1216", "832x1248", "864x1152",
    "896x960", "896x1024", "896x1088", "896x1120", "896x1152", "960x832", "960x896", "960x1024", "960x1088",
    "1024x832", "1024x896", "1024x960", "1024x1024", "1088x768", "1088x832", "1088x896", "1088x960", "1120x896",
    "1152x704", "1152x832", "1152x864", "1152x896", "1216x704", "1216x768", "1216x832", "1248x832", "1280x704",
    "1280x768", "1280x800", "1312x736", "1344x640", "1344x704", "1344x768", "1408x576", "1408x640", "1408x704",
    "1472x576", "1472x640", "1472x704", "1536x512", "1536x576", "1536x640",
)
RECRAFT_SIZES = (
    "1024x1024", "1365x1024", "1024x1365", "1536x1024", "1024x1536", "1820x1024", "1024x1820", "1024x2048",
    "2048x1024", "1434x1024", "1024x1434", "1024x1280", "1280x1024", "1024x1707", "1707x1024",
)
RECRAFT_STYLES = (
    "any", "realistic_image", "digital_illustration", "digital_illustration/pixel_art",
    "digital_illustration/hand_drawn", "digital_illustration/grain", "digital_illustration/infantile_sketch",
    "digital_illustration/2d_art_poster", "digital_illustration/handmade_3d",
    "digital_illustration/hand_drawn_outline", "digital_illustration/engraving_color",
    "digital_illustration/2d_art_poster_2", "realistic_image/b_and_w", "realistic_image/hard_flash",
    "realistic_image/hdr", "realistic_image/natural_light", "realistic_image/studio_portrait",
    "realistic_image/enterprise", "realistic_image/motion_blur",
)
#: The stability-ai/sdxl version the bare name runs (SDXL is not an official model).
SDXL_VERSION = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"

_FLUX_OPEN = ModelSpec(
    caps=ModelCapabilities(aspect_ratios=FLUX_RATIOS, max_n=4),
    size_field="aspect_ratio", n_field="num_outputs",
)
_FLUX_PRO = ModelSpec(
    caps=ModelCapabilities(min_side=256, max_side=1440, side_multiple=32),
    size_field="custom",
)
_IDEOGRAM_V3 = ModelSpec(caps=ModelCapabilities(sizes=IDEOGRAM_V3_RESOLUTIONS),
                         size_field="resolution")

MODELS: dict[str, ModelSpec] = {
    "black-forest-labs/flux-schnell": _FLUX_OPEN,
    "black-forest-labs/flux-dev": _FLUX_OPEN,
    "black-forest-labs/flux-pro": _FLUX_PRO,
    "black-forest-labs/flux-1.1-pro": _FLUX_PRO,
    "black-forest-labs/flux-1.1-pro-ultra": ModelSpec(
        caps=ModelCapabilities(aspect_ratios=ULTRA_RATIOS), size_field="aspect_ratio"),
    "stability-ai/stable-diffusion-3.5-large": ModelSpec(
        caps=ModelCapabilities(aspect_ratios=SD35_RATIOS), size_field="aspect_ratio"),
    # SDXL's pipeline works on 8-pixel latents: sides are kept to multiples of 8.
    "stability-ai/sdxl": ModelSpec(
        caps=ModelCapabilities(min_side=8, side_multiple=8, max_n=4),
        size_field="width_height", n_field="num_outputs", version=SDXL_VERSION),
    "ideogram-ai/ideogram-v3-turbo": _IDEOGRAM_V3,
    "ideogram-ai/ideogram-v3-balanced": _IDEOGRAM_V3,
    "ideogram-ai/ideogram-v3-quality": _IDEOGRAM_V3,
    "recraft-ai/recraft-v3": ModelSpec(
        caps=ModelCapabilities(sizes=RECRAFT_SIZES, styles=RECRAFT_STYLES),
        size_field="size", style_field="style"),
}

#: Any other model: one image per prediction (not every model reads ``num_outputs``,
#: so ``n`` > 1 runs parallel predictions), ``size`` passed as ``width``/``height``.
ANY_MODEL = ModelCapabilities()
DEFAULT_MODEL = "black-forest-labs/flux-schnell"

#: FLUX.1 Kontext [pro]/[max] ``aspect_ratio`` (besides ``match_input_image``, its default).
KONTEXT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9", "9:21", "2:1", "1:2")
#: FLUX.1 Kontext [dev]: its schema page lists no values; the ones both other Kontext
#: models take, less 2:1 and 1:2, which no Kontext [dev] source confirms.
KONTEXT_DEV_RATIOS = KONTEXT_RATIOS[:-2]
#: Seedream 4 ``aspect_ratio`` values (used when ``size`` is not ``custom``).
SEEDREAM_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9")
#: Input images nano-banana takes: its schema says "supports multiple images" and names no
#: limit, so the gateway's own default limit per edit form.
NANO_BANANA_IMAGES = 16

_KONTEXT_API = ModelSpec(
    # `size: "auto"` (or none) leaves the model's default, match_input_image.
    caps=ModelCapabilities(aspect_ratios=KONTEXT_RATIOS, auto_size=True),
    size_field="aspect_ratio", image_field="input_image",
    types={"seed": "int", "safety_tolerance": "int", "prompt_upsampling": "bool"},
)

#: Edits, per model: which input field takes the uploaded image(s) and the mask, as each
#: model's input schema on replicate.com documents it.  Output is one file per prediction
#: (``n`` > 1 runs parallel predictions).
EDIT_MODELS: dict[str, ModelSpec] = {
    "black-forest-labs/flux-kontext-pro": _KONTEXT_API,
    "black-forest-labs/flux-kontext-max": _KONTEXT_API,
    "black-forest-labs/flux-kontext-dev": ModelSpec(
        caps=ModelCapabilities(aspect_ratios=KONTEXT_DEV_RATIOS, auto_size=True),
        size_field="aspect_ratio", image_field="input_image",
        types={"seed": "int", "num_inference_steps": "int", "guidance": "num", "output_quality": "int",
               "disable_safety_checker": "bool", "go_fast": "bool"},
    ),
    "google/nano-banana": ModelSpec(
        # Its schema on replicate.com lists no size input (later versions' `aspect_ratio` is not
        # confirmed there: a client may send it natively); the model picks the output size.
        caps=ModelCapabilities(input_images=NANO_BANANA_IMAGES, auto_size=True),
        size_field=None, image_field="image_input", image_list=True,
    ),
    "bytedance/seedream-4": ModelSpec(
        # `size: "custom"` with width and height of 1024-4096; "auto" leaves match_input_image.
        caps=ModelCapabilities(min_side=1024, max_side=4096, input_images=10, auto_size=True),
        size_field="size_custom", image_field="image_input", image_list=True,
        types={"width": "int", "height": "int", "max_images": "int", "enhance_prompt": "bool"},
    ),
    "black-forest-labs/flux-fill-pro": ModelSpec(
        # Inpainting: the output has the input image's size.  The mask is optional when the
        # image carries an alpha mask (and ignored with `outpaint`).
        # FLUX Fill inpaints where the mask is white (an OpenAI mask is converted by the core).
        caps=ModelCapabilities(mask=True, auto_size=True, mask_edits="white"),
        size_field=None, image_field="image", mask_field="mask",
        types={"seed": "int", "steps": "int", "guidance": "num", "safety_tolerance": "int",
               "prompt_upsampling": "bool"},
    ),
}
DEFAULT_EDIT_MODEL = "black-forest-labs/flux-kontext-pro"

_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_NAME_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MODEL_NAME = re.compile(f"{_NAME_PART}/{_NAME_PART}")


class Target(msgspec.Struct, frozen=True):
    """Where a model string sends its prediction."""

    #: ``owner/name``, or None for a bare version id.
    name: str | None
    #: The version id, or None for an official model run by name.
    version: str | None
    spec: ModelSpec | None

    def path(self) -> str:
        """The create endpoint below the API base URL."""
        if self.version is None:
            return f"/models/{self.name}/predictions"
        return "/predictions"

    def body(self, inp: dict[str, Any]) -> dict[str, Any]:
        if self.version is None:
            return {"input": inp}
        return {"version": self.version, "input": inp}


def resolve(model: str) -> Target:
    """``owner/name`` (an official model, or a known one pinned to a version),
    ``owner/name:version`` or a bare 64-hex version id; anything else is a 400."""
    if _VERSION_ID.fullmatch(model):
        return Target(None, model, None)
    name, sep, version = model.partition(":")
    if not _MODEL_NAME.fullmatch(name) or (sep and not _VERSION_ID.fullmatch(version)):
        raise BadParam("model", f"Invalid Replicate model {model!r}: expected owner/name, owner/name:<version id> "
                                "or a 64-character version id")
    if sep:
        # A pinned version may have another schema than the table's: generic mapping.
        return Target(name, version, None)
    spec = MODELS.get(name)
    return Target(name, spec.version if spec else None, spec)


def resolve_edit(model: str) -> Target:
    """An edit model of :data:`EDIT_MODELS`, run by name; anything else is a 400 (only
    those models' image fields are known)."""
    spec = EDIT_MODELS.get(model)
    if spec is None:
        raise BadParam("model", f"Replicate model {model!r} cannot edit through the gateway: its input fields for "
                                f"images are not known.  Edit models: {', '.join(EDIT_MODELS)}")
    return Target(model, None, spec)


def build_input(spec: ModelSpec | None, req: GenerationRequest) -> dict[str, Any]:
    """The prediction's ``input``: the unified parameters where the model reads them,
    then the client's native parameters (``seed``, ``output_format``, ...) as sent."""
    inp: dict[str, Any] = {"prompt": req.prompt}
    if spec is None:
        if req.width and req.height:
            inp["width"], inp["height"] = req.width, req.height
    else:
        inp.update(_size_input(spec.size_field, req))
        if spec.n_field and req.n > 1:
            inp[spec.n_field] = req.n
        if spec.style_field and req.style:
            inp[spec.style_field] = req.style
    # Native parameters the client named win over the mapped ones.
    inp.update(req.extra)
    return inp


def _size_input(field: SizeField | None, req: GenerationRequest) -> dict[str, Any]:
    """The mapped ``size`` as the model's inputs (none when it was not given, or is ``auto``)."""
    w, h = req.width, req.height
    if field == "aspect_ratio":
        return {"aspect_ratio": req.aspect_ratio} if req.aspect_ratio else {}
    if field is None or not (w and h):
        return {}
    if field == "custom":
        return {"aspect_ratio": "custom", "width": w, "height": h}
    if field == "size_custom":
        return {"size": "custom", "width": w, "height": h}
    if field == "width_height":
        return {"width": w, "height": h}
    return {field: f"{w}x{h}"}  # resolution, size: "WxH"


def build_edit_input(spec: ModelSpec, req: EditRequest) -> dict[str, Any]:
    """An edit's ``input``: as for a generation (native parameters typed from the form's
    text), then the uploaded images as data URIs in the model's image field, in the order
    sent, and the mask in its mask field."""
    assert spec.image_field is not None  # every EDIT_MODELS entry names it
    for field in (spec.image_field, spec.mask_field):
        if field is not None and field in req.extra:
            raise BadParam(field, f"`{field}` is filled from the uploaded files: send the image as `image` "
                                  "(or `image[]`) and the mask as `mask`")
    inp = build_input(spec, msgspec.structs.replace(
        req, extra=typed_natives(req, spec.types, f"Replicate model {req.model!r}")))
    uris = [image.data_uri() for image in req.images]
    inp[spec.image_field] = uris if spec.image_list else uris[0]
    if req.mask is not None and spec.mask_field is not None:
        inp[spec.mask_field] = req.mask.data_uri()
    return inp


