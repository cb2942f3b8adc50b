"""Black Forest Labs models the gateway knows, and how the unified parameters land in a task.

Every model is its own endpoint, ``POST /v1/{model}``, with its own inputs (BFL's API
reference, generated from https://api.bfl.ai/openapi.json).  The tables below say, per
model or family, where ``size`` goes (``width``/``height`` or ``aspect_ratio``), which
native parameters it takes (and which of them are numbers or booleans, read from an edit
form's text), and for edits which fields take the uploaded images.  Families match by
name (``flux-2-*``, ``flux-kontext-*``) so a new snapshot or preview works the day it
ships.  A model in no table gets the generic mapping (``width``/``height`` as asked, the
natives as sent) and cannot edit (its image fields are unknown).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal

import msgspec

from gateway.sdk import BadParam, EditRequest, GenerationRequest, InputType, ModelCapabilities, typed_natives

#: Where ``size`` goes: ``width``/``height`` in pixels, ``aspect_ratio: "W:H"``, or nowhere
#: (FLUX.1 Fill: the output has the input image's size).
SizeField = Literal["width_height", "aspect_ratio"]
#: Where an edit's uploads go: ``input_image``, ``input_image_2``, ... (FLUX.2, Kontext), or
#: Fill's ``image`` and ``mask``.
ImageFields = Literal["input_image", "image_and_mask"]
#: A native that is not text: read from an edit form's text as ``int``, ``num`` or ``bool``.


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One model (or family): what it accepts and where the unified parameters go."""

    caps: ModelCapabilities
    size_field: SizeField | None
    #: Native parameters that are numbers or booleans (the others are strings).
    types: Mapping[str, InputType] = msgspec.field(default_factory=dict)
    #: Edits: where the uploaded images go (None: the model does not edit).
    images: ImageFields | None = None


#: ``aspect_ratio`` values for FLUX1.1 [pro] Ultra and FLUX.1 Kontext ("between 21:9 and 9:21"):
#: the common shapes in that range.
RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")
#: FLUX.2: sides of 64 pixels at least, in multiples of 16, up to 4 megapixels (2048x2048).
FLUX2_MAX_PIXELS = 2048 * 2048

_SEED_TOL: dict[str, InputType] = {"seed": "int", "safety_tolerance": "int"}
_FLUX2_TYPES = _SEED_TOL
_FLEX_TYPES: dict[str, InputType] = {**_SEED_TOL, "prompt_upsampling": "bool", "guidance": "num", "steps": "int"}
_KONTEXT_TYPES: dict[str, InputType] = {**_SEED_TOL, "prompt_upsampling": "bool"}
_PRO11_TYPES = _KONTEXT_TYPES
_ULTRA_TYPES: dict[str, InputType] = {**_KONTEXT_TYPES, "raw": "bool", "image_prompt_strength": "num"}
_PRO_TYPES: dict[str, InputType] = {**_KONTEXT_TYPES, "steps": "int", "guidance": "num", "interval": "num"}
_DEV_TYPES: dict[str, InputType] = {**_KONTEXT_TYPES, "steps": "int", "guidance": "num"}
_FILL_TYPES: dict[str, InputType] = {**_KONTEXT_TYPES, "steps": "int", "guidance": "num"}


def _natives(types: Mapping[str, InputType], *strings: str) -> frozenset[str]:
    return frozenset({*types, "output_format", *strings})


def _flux2(types: Mapping[str, InputType], images: int) -> ModelSpec:
    caps = ModelCapabilities(min_side=64, side_multiple=16, max_pixels=FLUX2_MAX_PIXELS, auto_size=True,
                             parameters=_natives(types), input_images=images)
    return ModelSpec(caps=caps, size_field="width_height", types=types, images="input_image")


def _fixed_sides(types: Mapping[str, InputType]) -> ModelSpec:
    """FLUX1.1 [pro], FLUX.1 [pro] and [dev]: 256 to 1440 pixels a side, in multiples of 32."""
    caps = ModelCapabilities(min_side=256, max_side=1440, side_multiple=32, auto_size=True,
                             parameters=_natives(types, "image_prompt"))
    return ModelSpec(caps=caps, size_field="width_height", types=types)


#: FLUX.2 [klein] 4B / 9B (and their previews): up to 4 reference images.
KLEIN = _flux2(_FLUX2_TYPES, 4)
#: FLUX.2 [flex]: steps, guidance and prompt upsampling besides; up to 8 reference images.
FLEX = _flux2(_FLEX_TYPES, 8)
#: FLUX.2 [pro], [max] (and [pro] preview): up to 8 reference images.
FLUX2 = _flux2(_FLUX2_TYPES, 8)
#: FLUX.1 Kontext [pro] / [max]: output of about 1 MP in the asked ratio; ``input_image`` plus
#: three "experimental multiref" images.
KONTEXT = ModelSpec(
    caps=ModelCapabilities(aspect_ratios=RATIOS, auto_size=True, parameters=_natives(_KONTEXT_TYPES),
                           input_images=4),
    size_field="aspect_ratio", types=_KONTEXT_TYPES, images="input_image")
ULTRA = ModelSpec(
    caps=ModelCapabilities(aspect_ratios=RATIOS, auto_size=True, parameters=_natives(_ULTRA_TYPES, "image_prompt")),
    size_field="aspect_ratio", types=_ULTRA_TYPES)
#: FLUX.1 Fill [pro]: inpainting where the mask is white (an OpenAI mask is converted by the
#: core); without a mask the image's own transparency marks the area.  No size: the output
#: has the input's.
FILL = ModelSpec(
    caps=ModelCapabilities(mask=True, mask_edits="white", auto_size=True, parameters=_natives(_FILL_TYPES)),
    size_field=None, types=_FILL_TYPES, images="image_and_mask")

#: Generation models, by exact name.
MODELS: dict[str, ModelSpec] = {
    "flux-pro-1.1": _fixed_sides(_PRO11_TYPES),
    "flux-pro-1.1-ultra": ULTRA,
    "flux-pro": _fixed_sides(_PRO_TYPES),
    "flux-dev": _fixed_sides(_DEV_TYPES),
}
#: Generation (and edit) families, tried in order for a name not in the exact tables.
FAMILIES: tuple[tuple[str, ModelSpec], ...] = (
    ("flux-2-klein-*", KLEIN),
    ("flux-2-flex*", FLEX),
    ("flux-2-*", FLUX2),
    ("flux-kontext-*", KONTEXT),
)
#: Edit models by exact name (besides the families, which all edit).
EDIT_MODELS: dict[str, ModelSpec] = {"flux-pro-1.0-fill": FILL}

#: Any other model: one image per task, ``size`` as asked in ``width``/``height``.
ANY_MODEL = ModelCapabilities(auto_size=True)
DEFAULT_MODEL = "flux-2-pro"
DEFAULT_EDIT_MODEL = "flux-2-pro"
#: Every native any model takes (what an unknown model may be sent).
ALL_NATIVES = frozenset().union(*(spec.caps.parameters or () for spec in (
    *MODELS.values(), *EDIT_MODELS.values(), *(spec for _, spec in FAMILIES))))

#: A model name is one path segment of ``/v1/{model}``.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def model_name(model: object) -> str:
    """``model`` checked as the path segment it becomes (a 400 naming ``model`` otherwise)."""
    if not isinstance(model, str) or not _MODEL_NAME.fullmatch(model):
        shown = repr(model)[:60]
        raise BadParam("model", f"Invalid Black Forest Labs model {shown}: expected an endpoint name such as "
                                f"{DEFAULT_MODEL}")
    return model


def spec_for(model: str) -> ModelSpec | None:
    """The generation spec of ``model``: its own entry, else its family's, else None."""
    found = MODELS.get(model)
    return found if found is not None else _family(model)


def edit_spec_for(model: str) -> ModelSpec:
    """The edit spec of ``model``; a 400 for a model whose image fields are not known."""
    found = EDIT_MODELS.get(model) or _family(model)
    if found is None or found.images is None:
        known = ", ".join([*(pattern for pattern, _ in FAMILIES), *EDIT_MODELS])
        raise BadParam("model", f"Black Forest Labs model {model!r} cannot edit through the gateway: its image "
                                f"fields are not known.  Edit models: {known}")
    return found


def _family(model: str) -> ModelSpec | None:
    for pattern, spec in FAMILIES:
        if fnmatchcase(model, pattern):
            return spec
    return None


def build_body(spec: ModelSpec | None, req: GenerationRequest) -> dict[str, Any]:
    """A task's JSON body: ``prompt``, the mapped ``size`` where the model reads it, then the
    client's native parameters (numbers and booleans read from text where a form sent it)."""
    body: dict[str, Any] = {"prompt": req.prompt}
    field = spec.size_field if spec is not None else "width_height"
    if field == "width_height" and req.width and req.height:
        body["width"], body["height"] = req.width, req.height
    elif field == "aspect_ratio" and req.aspect_ratio:
        body["aspect_ratio"] = req.aspect_ratio
    body.update(typed_natives(req, spec.types if spec is not None else {},
                              f"Black Forest Labs model {req.model!r}"))
    return body


def build_edit_body(spec: ModelSpec, req: EditRequest) -> dict[str, Any]:
    """An edit's body: as for a generation, plus the uploaded images as base64 in the model's
    image fields, in the order sent (``input_image``, ``input_image_2``, ...), or FLUX.1 Fill's
    ``image`` and ``mask``."""
    # The image fields are no model's natives: a form's text `input_image` never gets this far
    # (dropped and reported, or a 400 in strict mode), so the files alone fill them.
    body = build_body(spec, req)
    for name, image in zip(image_fields(spec, len(req.images)), req.images, strict=True):
        body[name] = image.b64()
    if req.mask is not None:
        body["mask"] = req.mask.b64()
    return body


def image_fields(spec: ModelSpec, count: int) -> list[str]:
    """The body fields ``count`` uploaded images go in."""
    if spec.images == "image_and_mask":
        return ["image"][:count]
    return ["input_image" if i == 0 else f"input_image_{i + 1}" for i in range(count)]


