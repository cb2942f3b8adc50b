"""fal.ai models the gateway knows by name: where the unified parameters go in each one's input.

Every fal endpoint has its own input schema (the "API" tab of its page on fal.ai; the same
schemas @fal-ai/client ships as generated types).  The tables below say, for the well-known
image endpoints, where ``size``, ``n`` and ``style`` land: :data:`MODELS` by exact id and
:data:`FAMILIES` by pattern, so a new version of a family works the day it ships.  For edits,
:data:`EDIT_MODELS` and :data:`EDIT_FAMILIES` also say which input takes the uploaded images
and the mask.  Any other model gets the generic mapping: ``prompt``, ``size`` as
``image_size: {width, height}``, one image per request (``n`` runs parallel requests, since
not every endpoint reads ``num_images``), and the client's native parameters as given.
"""
from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal

import msgspec

from gateway.sdk import BadParam, EditRequest, GenerationRequest, InputType, ModelCapabilities, typed_natives

#: Where ``size`` goes: ``image_size`` (fal's toolkit models: ``{width, height}``) or
#: ``aspect_ratio`` (``"W:H"``); None: nowhere (the output takes the input image's size).
SizeField = Literal["image_size", "aspect_ratio"]
#: A native input's type, to read it from an edit form's text: ``int``, ``num``, ``bool``.


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One known endpoint: what it accepts and where the unified parameters go."""

    caps: ModelCapabilities
    size_field: SizeField | None = "image_size"
    #: What ``size: "auto"`` sends as ``image_size`` for endpoints that list such a value;
    #: None leaves ``image_size`` out (the endpoint's own default).
    auto: str | None = None
    #: The input for images per request (``num_images``), for endpoints that make several.
    n_field: str | None = None
    #: The input ``style`` maps to, for endpoints whose styles are listed in ``caps.styles``.
    style_field: str | None = None
    #: Edits: the input the uploaded images go in (data URIs), whether it is a list, and the
    #: mask's input for endpoints that take one.
    image_field: str | None = None
    image_list: bool = False
    mask_field: str | None = None


#: ``image_size``'s ``width`` and ``height`` are at most this (fal's shared ``ImageSize`` schema).
MAX_SIDE = 14142
#: FLUX1.1 [pro] ultra and FLUX.1 Kontext ``aspect_ratio`` values.
FLUX_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
#: Input images of a list-taking edit endpoint whose schema names no limit: the gateway's choice.
UNLISTED_IMAGES = 10
#: Recraft V3 ``style`` values (its schema's enum).
RECRAFT_V3_STYLES = (
    "any", "realistic_image", "digital_illustration", "vector_illustration",
    *(f"realistic_image/{s}" for s in (
        "b_and_w", "hard_flash", "hdr", "natural_light", "studio_portrait", "enterprise", "motion_blur",
        "evening_light", "faded_nostalgia", "forest_life", "mystic_naturalism", "natural_tones", "organic_calm",
        "real_life_glow", "retro_realism", "retro_snapshot", "urban_drama", "village_realism", "warm_folk")),
    *(f"digital_illustration/{s}" for s in (
        "pixel_art", "hand_drawn", "grain", "infantile_sketch", "2d_art_poster", "handmade_3d", "hand_drawn_outline",
        "engraving_color", "2d_art_poster_2", "antiquarian", "bold_fantasy", "child_book", "child_books", "cover",
        "crosshatch", "digital_engraving", "expressionism", "freehand_details", "grain_20", "graphic_intensity",
        "hard_comics", "long_shadow", "modern_folk", "multicolor", "neon_calm", "noir", "nostalgic_pastel",
        "outline_details", "pastel_gradient", "pastel_sketch", "pop_art", "pop_renaissance", "street_art",
        "tablet_sketch", "urban_glow", "urban_sketching", "vanilla_dreams", "young_adult_book",
        "young_adult_book_2")),
    *(f"vector_illustration/{s}" for s in (
        "bold_stroke", "chemistry", "colored_stencil", "contour_pop_art", "cosmics", "cutout", "depressive",
        "editorial", "emotional_flat", "infographical", "marker_outline", "mosaic", "naivector", "roundish_flat",
        "segmented_colors", "sharp_contrast", "thin", "vector_photo", "vivid_shapes", "engraving", "line_art",
        "line_circuit", "linocut")),
)


def _sized(**kw: Any) -> ModelCapabilities:
    """An ``image_size`` endpoint: sides up to :data:`MAX_SIDE` (and the model's own limits);
    ``size: "auto"`` is the endpoint's default size."""
    kw.setdefault("max_side", MAX_SIDE)
    return ModelCapabilities(auto_size=True, **kw)


N = "num_images"
_FLUX1 = ModelSpec(caps=_sized(max_n=4), n_field=N)
_FLUX_ULTRA = ModelSpec(caps=ModelCapabilities(aspect_ratios=FLUX_RATIOS, auto_size=True, max_n=4),
                        size_field="aspect_ratio", n_field=N)
# FLUX.2 [dev]: "width and height must be between 512 and 2048"; its distilled variants name no limit.
_FLUX2_DEV = ModelSpec(caps=_sized(min_side=512, max_side=2048, max_n=4), n_field=N)
_FLUX2_FAST = ModelSpec(caps=_sized(max_n=4), n_field=N)
# FLUX.2 [pro]/[max]/[flex]: no num_images, one image per request.
_FLUX2_API = ModelSpec(caps=_sized())
_SEEDREAM3 = ModelSpec(caps=_sized(min_side=512, max_side=2048, max_n=4), n_field=N)
# Seedream 4 and later: num_images "separate generations" of one image each (max_images left at 1).
_SEEDREAM4 = ModelSpec(caps=_sized(min_pixels=960 * 960, max_pixels=4096 * 4096, max_n=6), auto="auto", n_field=N)
_SEEDREAM45 = ModelSpec(caps=_sized(min_pixels=2560 * 1440, max_pixels=4096 * 4096, max_n=6), n_field=N)
_SEEDREAM5_LITE = ModelSpec(caps=_sized(min_pixels=2560 * 1440, max_pixels=3072 * 3072, max_n=6), n_field=N)
_SEEDREAM = ModelSpec(caps=_sized(max_n=6), n_field=N)
_RECRAFT3 = ModelSpec(caps=_sized(styles=RECRAFT_V3_STYLES), style_field="style")
_RECRAFT = ModelSpec(caps=_sized())
_IDEOGRAM3 = ModelSpec(caps=_sized(max_n=8), n_field=N)
_QWEN = ModelSpec(caps=_sized(max_n=4), n_field=N)
_QWEN2_PRO = ModelSpec(caps=_sized(min_pixels=512 * 512, max_pixels=2048 * 2048, max_n=4), n_field=N)

MODELS: dict[str, ModelSpec] = {
    **dict.fromkeys(("fal-ai/flux/dev", "fal-ai/flux/schnell", "fal-ai/flux/krea", "fal-ai/flux-1/dev",
                     "fal-ai/flux-1/schnell", "fal-ai/flux-1/krea"), _FLUX1),
    "fal-ai/flux-pro/v1.1": _FLUX1,
    "fal-ai/flux-pro/v1.1-ultra": _FLUX_ULTRA,
    "fal-ai/flux-2": _FLUX2_DEV,
    **dict.fromkeys(("fal-ai/flux-2/flash", "fal-ai/flux-2/turbo", "fal-ai/flux-2/klein/4b",
                     "fal-ai/flux-2/klein/9b"), _FLUX2_FAST),
    **dict.fromkeys(("fal-ai/flux-2-pro", "fal-ai/flux-2-max", "fal-ai/flux-2-flex"), _FLUX2_API),
    "fal-ai/bytedance/seedream/v3/text-to-image": _SEEDREAM3,
    "fal-ai/bytedance/seedream/v4/text-to-image": _SEEDREAM4,
    "fal-ai/bytedance/seedream/v4.5/text-to-image": _SEEDREAM45,
    "fal-ai/bytedance/seedream/v5/lite/text-to-image": _SEEDREAM5_LITE,
    "fal-ai/recraft/v3/text-to-image": _RECRAFT3,
    **dict.fromkeys(("fal-ai/recraft/v4/text-to-image", "fal-ai/recraft/v4/pro/text-to-image"), _RECRAFT),
    "fal-ai/ideogram/v3": _IDEOGRAM3,
    **dict.fromkeys(("fal-ai/qwen-image", "fal-ai/qwen-image-2512", "fal-ai/qwen-image-2/text-to-image",
                     "fal-ai/qwen-image-max/text-to-image"), _QWEN),
    "fal-ai/qwen-image-2/pro/text-to-image": _QWEN2_PRO,
}
#: Families, tried in order for a model not in :data:`MODELS` (``*`` also matches ``/``).
FAMILIES: tuple[tuple[str, ModelSpec], ...] = (
    ("fal-ai/flux-pro/v1.1-ultra*", _FLUX_ULTRA),
    ("fal-ai/flux-pro/v1.1*", _FLUX1),
    ("fal-ai/flux-2-*", _FLUX2_API),
    ("fal-ai/flux-2/*", _FLUX2_FAST),
    ("fal-ai/flux/*", _FLUX1),
    ("fal-ai/flux-1/*", _FLUX1),
    ("fal-ai/bytedance/seedream/*/text-to-image", _SEEDREAM),
    ("fal-ai/recraft/*/text-to-image", _RECRAFT),
    ("fal-ai/ideogram/v3*", _IDEOGRAM3),
    ("fal-ai/qwen-image*", _QWEN),
)
#: Any other model: ``size`` unchecked as ``image_size``, one image per request.
ANY_MODEL = ModelCapabilities(auto_size=True)
DEFAULT_MODEL = "fal-ai/flux/dev"

_URLS = {"image_field": "image_urls", "image_list": True}
_KONTEXT = ModelSpec(caps=ModelCapabilities(aspect_ratios=FLUX_RATIOS, auto_size=True, max_n=4),
                     size_field="aspect_ratio", n_field=N, image_field="image_url")
# FLUX.2 [pro]/[max]/[flex] edit: up to 8 reference images through the API (BFL's documentation;
# fal's schema names no limit); `image_size: "auto"` lets the model choose.
_FLUX2_API_EDIT = ModelSpec(caps=_sized(input_images=8), auto="auto", **_URLS)
_FLUX2_EDIT = ModelSpec(caps=_sized(min_side=512, max_side=2048, max_n=4, input_images=4), n_field=N, **_URLS)
_FLUX2_FAST_EDIT = ModelSpec(caps=_sized(max_n=4, input_images=4), n_field=N, **_URLS)
# Seedream edits: "up to 10 image inputs are allowed".
_SEEDREAM4_EDIT = ModelSpec(caps=_sized(min_pixels=960 * 960, max_pixels=4096 * 4096, max_n=6, input_images=10),
                            auto="auto", n_field=N, **_URLS)
_SEEDREAM45_EDIT = ModelSpec(caps=_sized(min_pixels=2560 * 1440, max_pixels=4096 * 4096, max_n=6, input_images=10),
                             n_field=N, **_URLS)
_SEEDREAM5_LITE_EDIT = ModelSpec(
    caps=_sized(min_pixels=2560 * 1440, max_pixels=3072 * 3072, max_n=6, input_images=10), n_field=N, **_URLS)
_SEEDREAM_EDIT = ModelSpec(caps=_sized(max_n=6, input_images=10), n_field=N, **_URLS)
_QWEN_EDIT = ModelSpec(caps=_sized(max_n=4), n_field=N, image_field="image_url")
_QWEN_EDIT_PLUS = ModelSpec(caps=_sized(max_n=4, input_images=UNLISTED_IMAGES), n_field=N, **_URLS)
_GENERIC_EDIT = ModelSpec(caps=ModelCapabilities(auto_size=True, input_images=UNLISTED_IMAGES), **_URLS)

EDIT_MODELS: dict[str, ModelSpec] = {
    **dict.fromkeys(("fal-ai/flux-pro/kontext", "fal-ai/flux-pro/kontext/max"), _KONTEXT),
    "fal-ai/flux-2/edit": _FLUX2_EDIT,
    **dict.fromkeys(("fal-ai/flux-2-pro/edit", "fal-ai/flux-2-max/edit", "fal-ai/flux-2-flex/edit"),
                    _FLUX2_API_EDIT),
    "fal-ai/bytedance/seedream/v4/edit": _SEEDREAM4_EDIT,
    "fal-ai/bytedance/seedream/v4.5/edit": _SEEDREAM45_EDIT,
    "fal-ai/bytedance/seedream/v5/lite/edit": _SEEDREAM5_LITE_EDIT,
    "fal-ai/qwen-image-edit": _QWEN_EDIT,
    **dict.fromkeys(("fal-ai/qwen-image-edit-plus", "fal-ai/qwen-image-edit-2509", "fal-ai/qwen-image-edit-2511"),
                    _QWEN_EDIT_PLUS),
    # Ideogram inpaints where its mask is black (Ideogram's API; fal's schema: "the mask URL to
    # inpaint the image", same size as the image); the output has the input image's size.
    "fal-ai/ideogram/v3/edit": ModelSpec(
        caps=ModelCapabilities(max_n=8, mask=True, needs_mask=True, mask_edits="black", auto_size=True),
        size_field=None, n_field=N, image_field="image_url", mask_field="mask_url"),
}
EDIT_FAMILIES: tuple[tuple[str, ModelSpec], ...] = (
    ("fal-ai/flux-2-*/edit", _FLUX2_API_EDIT),
    ("fal-ai/flux-2/*edit", _FLUX2_FAST_EDIT),
    ("fal-ai/bytedance/seedream/*/edit", _SEEDREAM_EDIT),
    # Any other `.../edit` endpoint: fal's newer edit endpoints take `image_urls`.
    ("*/edit", _GENERIC_EDIT),
)
DEFAULT_EDIT_MODEL = "fal-ai/flux-pro/kontext"

#: Native inputs fal's image endpoints share that are not text, to read them from an edit
#: form's text (``seed=7`` -> 7): the common arguments of fal's model APIs.
FORM_TYPES: Mapping[str, InputType] = {
    "seed": "int", "num_inference_steps": "int", "max_images": "int", "guidance_scale": "num", "strength": "num",
    "image_prompt_strength": "num", "enable_safety_checker": "bool", "sync_mode": "bool", "enhance_prompt": "bool",
    "expand_prompt": "bool", "enable_prompt_expansion": "bool", "raw": "bool", "use_turbo": "bool",
}


def spec_for(model: str, *, edit: bool = False) -> ModelSpec | None:
    """The model's entry, else its family's (as the core reads the capabilities), else None."""
    table, families = (EDIT_MODELS, EDIT_FAMILIES) if edit else (MODELS, FAMILIES)
    found = table.get(model)
    if found is not None:
        return found
    for pattern, spec in families:
        if fnmatchcase(model, pattern):
            return spec
    return None


def build_input(spec: ModelSpec | None, req: GenerationRequest) -> dict[str, Any]:
    """The request body: the unified parameters where the endpoint reads them, then the
    client's native parameters (``seed``, ``output_format``, ``image_size``, ...) as sent."""
    inp: dict[str, Any] = {"prompt": req.prompt, **_size_input(spec, req)}
    if spec is not None and spec.n_field and req.n > 1:
        inp[spec.n_field] = req.n
    if spec is not None and spec.style_field and req.style:
        inp[spec.style_field] = req.style
    # Native parameters the client named win over the mapped ones.
    inp.update(req.extra)
    return inp


def build_edit_input(spec: ModelSpec, req: EditRequest) -> dict[str, Any]:
    """An edit's body: as a generation's (the form's native fields typed), plus the uploaded
    images and the mask as data URIs in the endpoint's inputs."""
    assert spec.image_field is not None
    for field in (spec.image_field, spec.mask_field):
        if field and field in req.extra:
            raise BadParam(field, f"`{field}` comes from the uploaded files (`image`, `mask`), not a form field")
    if not req.images:
        raise BadParam("image", "An edit needs at least one `image`")
    typed = msgspec.structs.replace(req, extra=typed_natives(req, FORM_TYPES, f"fal model {req.model!r}"))
    inp = build_input(spec, typed)
    uris = [image.data_uri() for image in req.images]
    inp[spec.image_field] = uris if spec.image_list else uris[0]
    if spec.mask_field and req.mask is not None:
        inp[spec.mask_field] = req.mask.data_uri()
    return inp


def _size_input(spec: ModelSpec | None, req: GenerationRequest) -> dict[str, Any]:
    """The mapped ``size`` as the endpoint's input (none when not given, or ``auto`` without
    an ``auto`` value)."""
    field = spec.size_field if spec is not None else "image_size"
    if field == "aspect_ratio":
        return {"aspect_ratio": req.aspect_ratio} if req.aspect_ratio else {}
    if field is None:
        return {}
    if req.width and req.height:
        return {"image_size": {"width": req.width, "height": req.height}}
    if req.size == "auto" and spec is not None and spec.auto:
        return {"image_size": spec.auto}
    return {}


