"""images.edits on Bedrock: the InvokeModel bodies of the image models that take input images.

Three dialects, chosen by model id (a region prefix or an ARN looked through):

- Titan Image Generator v1/v2 and Nova Canvas (``amazon.titan-image-generator-*``,
  ``amazon.nova-canvas-*``): a ``mask`` file (or a ``mask_prompt``) makes
  ``taskType: INPAINTING`` of the one image; ``outpainting_mode`` makes it
  ``OUTPAINTING``; without a mask the one to five images make an ``IMAGE_VARIATION``.
  ``imageGenerationConfig`` is the generations' one; in- and outpainting keep the
  input image's size, so they take no width and height.
- SD3 / SD3.5 Large (``stability.sd3*``): ``mode: image-to-image`` with ``image`` and
  ``strength`` (required there).
- Stable Image Inpaint (``stability.stable-image-inpaint-*``): ``prompt``, ``image`` and
  an optional ``mask`` (without one the image's transparent pixels are the area to fill).

The images go as base64 of the bytes the client uploaded; a mask is sent as it is, in
the model's own convention (Titan and Nova: black marks the area to change; Stability:
white does).  The answers are those of generations, read by :mod:`gateway_bedrock.models`.

Sources: docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html,
docs.aws.amazon.com/nova/latest/userguide/image-gen-access.html (input images, masks),
docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html,
docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html,
docs.aws.amazon.com/bedrock/latest/userguide/stable-image-services.html.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from gateway.sdk import BadParam, EditRequest, ModelCapabilities
from gateway_bedrock.models import AMAZON_QUALITIES, NOVA, TITAN_SIZES, amazon_config, bare_model_id

__all__ = [
    "EDIT_MODELS", "EDIT_NATIVES", "INPAINTING", "IMAGE_VARIATION", "OUTPAINTING", "Editor", "edit_caps",
    "editor_of", "typed",
]

INPAINTING = "INPAINTING"
OUTPAINTING = "OUTPAINTING"
IMAGE_VARIATION = "IMAGE_VARIATION"
#: Where each Titan/Nova task takes its parameters.
_PARAMS_FIELD = {INPAINTING: "inPaintingParams", OUTPAINTING: "outPaintingParams",
                 IMAGE_VARIATION: "imageVariationParams"}
#: Titan and Nova read PNG and JPEG only.
_AMAZON_TYPES = ("image/png", "image/jpeg")

#: Edit form fields are text; these natives are numbers in the body.
_WHOLE = frozenset({"seed", "grow_mask"})
_REAL = frozenset({"cfg_scale", "cfgScale", "similarity_strength", "similarityStrength", "strength"})


class Editor:
    """One edit dialect: which task an edit is, its natives, and its body."""

    name: ClassVar[str]
    caps: ModelCapabilities

    def task(self, req: EditRequest) -> str:
        """The kind of edit ``req`` is (named in messages)."""
        raise NotImplementedError

    def natives(self, task: str) -> frozenset[str]:
        """The native parameters ``task`` takes."""
        raise NotImplementedError

    def takes_size(self, task: str) -> bool:
        """Whether ``task`` makes an image of a chosen size (else of the input's)."""
        return False

    def check(self, req: EditRequest, extra: dict[str, Any], task: str, where: str) -> None:
        """Refuse (``BadParam``) what the API cannot take, before any call.  The input limits
        are checked here too: negotiation cannot look up a model behind an application
        inference profile ARN (``aws_bedrock_model`` names it)."""
        if len(req.images) > self.caps.input_images:
            raise BadParam("image", f"{where} edits {self.caps.input_images} image(s) at most; "
                                    f"{len(req.images)} were sent")
        if req.mask is not None and not self.caps.mask:
            raise BadParam("mask", f"`mask` is not supported by {where}")

    def body(self, req: EditRequest, extra: dict[str, Any], task: str) -> dict[str, Any]:
        raise NotImplementedError


class AmazonEdit(Editor):
    """Titan Image Generator and Nova Canvas: INPAINTING, OUTPAINTING, IMAGE_VARIATION."""

    name = "amazon"
    #: Snake-case natives and the body's own camelCase names (which win when both are sent).
    aliases: ClassVar[Mapping[str, str]] = {
        "negative_prompt": "negativeText", "cfg_scale": "cfgScale", "similarity_strength": "similarityStrength",
        "mask_prompt": "maskPrompt", "outpainting_mode": "outPaintingMode",
    }
    common = frozenset({"negative_prompt", "negativeText", "seed", "cfg_scale", "cfgScale"})
    masking = frozenset({"mask_prompt", "maskPrompt"})
    by_task: ClassVar[Mapping[str, frozenset[str]]] = {
        INPAINTING: common | masking,
        OUTPAINTING: common | masking | {"outpainting_mode", "outPaintingMode"},
        IMAGE_VARIATION: common | {"similarity_strength", "similarityStrength"},
    }

    def __init__(self, caps: ModelCapabilities) -> None:
        self.caps = caps

    def task(self, req: EditRequest) -> str:
        keys = req.extra.keys()
        if keys & {"outpainting_mode", "outPaintingMode"}:
            return OUTPAINTING
        if req.mask is not None or keys & self.masking:
            return INPAINTING
        return IMAGE_VARIATION

    def natives(self, task: str) -> frozenset[str]:
        return self.by_task[task]

    def takes_size(self, task: str) -> bool:
        return task == IMAGE_VARIATION

    def check(self, req: EditRequest, extra: dict[str, Any], task: str, where: str) -> None:
        super().check(req, extra, task, where)
        for image in req.images:
            if image.media_type not in _AMAZON_TYPES:
                raise BadParam("image", f"{where} takes PNG or JPEG images; `{image.field}` "
                                        f"({image.filename or 'no name'}) is {image.media_type}")
        if req.mask is not None and req.mask.media_type not in _AMAZON_TYPES:
            raise BadParam("mask", f"{where} takes a PNG or JPEG mask; the mask is {req.mask.media_type}")
        if task == IMAGE_VARIATION:
            return
        if len(req.images) > 1:
            raise BadParam("image", f"{where} edits one image with a mask ({task}); {len(req.images)} were sent "
                                    "(several images without a mask make an IMAGE_VARIATION)")
        prompt = self._camel(extra).get("maskPrompt")
        if req.mask is not None and prompt is not None:
            raise BadParam("mask_prompt", f"{where} takes a `mask` file or a `mask_prompt`, not both")
        if req.mask is None and prompt is None:
            raise BadParam("mask", f"{where} needs a `mask` (black where the image changes) or a `mask_prompt` "
                                   f"for {task}")

    def body(self, req: EditRequest, extra: dict[str, Any], task: str) -> dict[str, Any]:
        native = self._camel(extra)
        params: dict[str, Any] = {"text": req.prompt}
        if native.get("negativeText"):
            params["negativeText"] = native["negativeText"]
        if task == IMAGE_VARIATION:
            params["images"] = [image.b64() for image in req.images]
            if "similarityStrength" in native:
                params["similarityStrength"] = native["similarityStrength"]
        else:
            params["image"] = req.images[0].b64()
            if req.mask is not None:
                params["maskImage"] = req.mask.b64()
            else:
                params["maskPrompt"] = native["maskPrompt"]
            if task == OUTPAINTING:
                params["outPaintingMode"] = native["outPaintingMode"]
        return {"taskType": task, _PARAMS_FIELD[task]: params, "imageGenerationConfig": amazon_config(req, native)}

    def _camel(self, extra: dict[str, Any]) -> dict[str, Any]:
        out = {self.aliases[key]: value for key, value in extra.items() if key in self.aliases}
        out.update((key, value) for key, value in extra.items() if key not in self.aliases)
        return out


class SD3Edit(Editor):
    """SD3 / SD3.5 Large: ``mode: image-to-image``."""

    name = "sd3"
    caps = ModelCapabilities(auto_size=True, max_n=1)
    _natives = frozenset({"negative_prompt", "seed", "output_format", "strength"})

    def task(self, req: EditRequest) -> str:
        return "image-to-image"

    def natives(self, task: str) -> frozenset[str]:
        return self._natives

    def check(self, req: EditRequest, extra: dict[str, Any], task: str, where: str) -> None:
        super().check(req, extra, task, where)
        if "strength" not in extra:
            # Stability's image-to-image has no default for it: the API refuses the body.
            raise BadParam("strength", f"{where} needs `strength` for image-to-image: 0 keeps the input image, "
                                       "1 ignores it")

    def body(self, req: EditRequest, extra: dict[str, Any], task: str) -> dict[str, Any]:
        return {"prompt": req.prompt, "mode": "image-to-image", "image": req.images[0].b64(), **extra}


class StableInpaint(Editor):
    """Stable Image Inpaint, one of the Stability AI Image Services on Bedrock."""

    name = "stable-image-inpaint"
    # Stability's inpaint mask: white where the image changes (an OpenAI mask is converted).
    caps = ModelCapabilities(auto_size=True, max_n=1, mask=True, mask_edits="white")
    _natives = frozenset({"negative_prompt", "seed", "output_format", "grow_mask"})

    def task(self, req: EditRequest) -> str:
        return "inpaint"

    def natives(self, task: str) -> frozenset[str]:
        return self._natives

    def body(self, req: EditRequest, extra: dict[str, Any], task: str) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": req.prompt, "image": req.images[0].b64()}
        if req.mask is not None:
            body["mask"] = req.mask.b64()
        body.update(extra)
        return body


#: Titan: a variation's size from the documented list ("auto": the model's default).  Titan's and
#: Nova's masks are black where the image changes (an OpenAI mask is converted by the core).
TITAN_EDITOR = AmazonEdit(ModelCapabilities(sizes=("auto", *TITAN_SIZES), qualities=AMAZON_QUALITIES, max_n=5,
                                            input_images=5, mask=True, mask_edits="black"))
NOVA_EDITOR = AmazonEdit(msgspec.structs.replace(NOVA, styles=(), auto_size=True, input_images=5, mask=True,
                                                 mask_edits="black"))
SD3_EDITOR = SD3Edit()
INPAINT_EDITOR = StableInpaint()

#: Bare model id prefixes and their dialect; a new version of a family gets the family's.
_EDITORS: tuple[tuple[str, Editor], ...] = (
    ("amazon.titan-image-generator", TITAN_EDITOR),
    ("amazon.nova-canvas", NOVA_EDITOR),
    ("stability.sd3", SD3_EDITOR),
    ("stability.stable-image-inpaint", INPAINT_EDITOR),
)

#: Listed edit models by bare id.
EDIT_MODELS: dict[str, ModelCapabilities] = {
    "amazon.titan-image-generator-v1": TITAN_EDITOR.caps,
    "amazon.titan-image-generator-v2:0": TITAN_EDITOR.caps,
    "amazon.nova-canvas-v1:0": NOVA_EDITOR.caps,
    "stability.sd3-large-v1:0": SD3_EDITOR.caps,
    "stability.sd3-5-large-v1:0": SD3_EDITOR.caps,
    "stability.stable-image-inpaint-v1:0": INPAINT_EDITOR.caps,
}

#: Every native parameter some edit takes.
EDIT_NATIVES = frozenset().union(*AmazonEdit.by_task.values(), SD3Edit._natives, StableInpaint._natives)


def editor_of(model: str) -> Editor | None:
    """The edit dialect of ``model`` (prefixed or not); None for a model that cannot edit here."""
    bare = bare_model_id(model)
    for prefix, editor in _EDITORS:
        if bare.startswith(prefix):
            return editor
    return None


def edit_caps(bare: str) -> ModelCapabilities | None:
    """The edit capabilities of an unlisted model of a known family."""
    editor = editor_of(bare)
    return editor.caps if editor is not None else None


def typed(extra: dict[str, Any], offset: int) -> dict[str, Any]:
    """The natives with numbers read from the form's text (``"7"`` -> 7).

    A seed sent as text was not advanced by the gateway for a further call (it does that
    for numbers only): it is advanced here by the call's ``offset``, so that the calls of
    one edit do not make the same image.
    """
    out = dict(extra)
    for key, value in extra.items():
        if key in _WHOLE:
            out[key] = _whole(key, value)
        elif key in _REAL:
            out[key] = _real(key, value)
    seed = extra.get("seed")
    if isinstance(seed, str) and out["seed"]:
        out["seed"] += offset
    return out


def _whole(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadParam(key, f"Invalid `{key}` {value!r}: expected a whole number") from None


def _real(key: str, value: Any) -> float | int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise BadParam(key, f"Invalid `{key}` {value!r}: expected a number")
    return number
