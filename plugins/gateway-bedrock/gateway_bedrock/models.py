"""The image models Bedrock serves through InvokeModel, and how each family's body reads.

Four families share ``POST /model/{modelId}/invoke`` and nothing else:

- Stability SDXL 1.0 (``stability.stable-diffusion-xl-v1``): ``text_prompts``,
  ``width``/``height`` from a fixed list, one image per call; answers
  ``{"artifacts": [{"base64", "finishReason", "seed"}]}``.
- Stability SD3 / SD3.5 Large, Stable Image Ultra and Core (``stability.*``):
  ``prompt``, ``aspect_ratio``, one image per call; answers
  ``{"images": [...], "seeds": [...], "finish_reasons": [...]}``.
- Amazon Titan Image Generator v1/v2 and Nova Canvas (``amazon.*``):
  ``taskType: TEXT_IMAGE`` with ``textToImageParams`` and
  ``imageGenerationConfig`` (1 to 5 images per call); answers
  ``{"images": [...], "error"?}``.

Limits are those of the Bedrock user guide's model parameter pages
(docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-*.html and
docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html).
Model ids may carry a cross-region inference profile prefix (``us.``,
``eu.``, ...) or be an ARN: capabilities are looked up on the bare model id,
the URL keeps the id as given.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from gateway.sdk import (
    ContentPolicyViolation,
    GenerationRequest,
    Image,
    MalformedAnswer,
    ModelCapabilities,
    UpstreamError,
)

__all__ = [
    "AMAZON_QUALITIES", "DEFAULT_MODEL", "FAMILIES", "MODELS", "NATIVE_PARAMETERS", "NOVA", "REGION_PREFIXES",
    "TITAN_SIZES", "Family", "ModelTable", "amazon_config", "bare_model_id", "family_of",
]

#: Cross-region inference profile prefixes of model ids.
REGION_PREFIXES = ("us-gov.", "us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.")

#: SDXL 1.0 on Bedrock: the nine documented width x height pairs.
SDXL_SIZES = ("1024x1024", "1152x896", "1216x832", "1344x768", "1536x640",
              "640x1536", "768x1344", "832x1216", "896x1152")
SDXL_STYLES = ("3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
               "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
               "origami", "photographic", "pixel-art", "tile-texture")
#: SD3 / SD3.5 / Stable Image Ultra and Core: ``aspect_ratio`` values.
STABILITY_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
#: Titan Image Generator v1 and v2: the documented width x height pairs.
TITAN_SIZES = ("1024x1024", "768x768", "512x512", "768x1152", "384x576", "1152x768", "576x384", "768x1280",
               "384x640", "1280x768", "640x384", "896x1152", "448x576", "1152x896", "576x448", "768x1408",
               "384x704", "1408x768", "704x384", "640x1408", "320x704", "1408x640", "704x320", "1152x640",
               "1173x640")
NOVA_STYLES = ("3D_ANIMATED_FAMILY_FILM", "DESIGN_SKETCH", "FLAT_VECTOR_ILLUSTRATION", "GRAPHIC_NOVEL_ILLUSTRATION",
               "MAXIMALISM", "MIDCENTURY_RETRO", "PHOTOREALISM", "SOFT_DIGITAL_PAINTING")
AMAZON_QUALITIES = ("standard", "premium")
#: Nova Canvas: the long side at most four times the short one.
NOVA_MAX_RATIO = 4

_OUTPUT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def bare_model_id(model: str) -> str:
    """``us.amazon.nova-canvas-v1:0`` -> ``amazon.nova-canvas-v1:0``; an ARN's last path
    segment likewise (``...:foundation-model/stability.sd3-large-v1:0``)."""
    if model.startswith("arn:"):
        model = model.rpartition("/")[2]
    for prefix in REGION_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix):]
    return model


class Family:
    """One request/answer dialect of InvokeModel image models."""

    name: ClassVar[str]
    #: Native parameters (``req.extra``) the family's body takes.
    natives: ClassVar[frozenset[str]]
    #: Capabilities of a model of this family that is not listed by id.
    caps: ClassVar[ModelCapabilities]

    def natives_for(self, model: str) -> frozenset[str]:
        return self.natives

    def body(self, model: str, req: GenerationRequest, extra: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def images(self, provider: str, req: GenerationRequest, doc: Any, raw: bytes,
               extra: dict[str, Any]) -> list[Image]:
        raise NotImplementedError


class StabilitySDXL(Family):
    """``stability.stable-diffusion-xl-v1`` (Stability's v1 generation API on Bedrock)."""

    name = "stability-sdxl"
    natives = frozenset({"negative_prompt", "cfg_scale", "clip_guidance_preset", "sampler", "seed", "steps",
                         "style_preset", "extras"})
    caps = ModelCapabilities(sizes=SDXL_SIZES, styles=SDXL_STYLES, max_n=1)

    def body(self, model: str, req: GenerationRequest, extra: dict[str, Any]) -> dict[str, Any]:
        extra = dict(extra)
        prompts: list[dict[str, Any]] = [{"text": req.prompt, "weight": 1.0}]
        negative = extra.pop("negative_prompt", None)
        if negative:
            # SDXL takes what to avoid as a prompt of negative weight.
            prompts.append({"text": negative, "weight": -1.0})
        body: dict[str, Any] = {"text_prompts": prompts}
        if req.width is not None and req.height is not None:
            body["width"], body["height"] = req.width, req.height
        if req.style is not None:
            body["style_preset"] = req.style
        body.update(extra)
        return body

    def images(self, provider: str, req: GenerationRequest, doc: Any, raw: bytes,
               extra: dict[str, Any]) -> list[Image]:
        artifacts = doc.get("artifacts") if isinstance(doc, dict) else None
        if not isinstance(artifacts, list) or not artifacts:
            raise MalformedAnswer(provider, "no `artifacts` list", raw)
        out = []
        for art in artifacts:
            if not isinstance(art, dict):
                raise MalformedAnswer(provider, "an artifact is not an object", raw)
            reason = art.get("finishReason")
            if reason == "CONTENT_FILTERED":
                raise ContentPolicyViolation(provider, "the image was blocked by the content filter (CONTENT_FILTERED)")
            if reason == "ERROR":
                raise UpstreamError(f"{provider} error: the model failed to generate the image (finishReason ERROR)",
                                    provider=provider, code="generation_failed")
            b64 = art.get("base64")
            if not isinstance(b64, str) or not b64:
                raise MalformedAnswer(provider, "an artifact has no `base64` image", raw)
            out.append(Image(b64=b64, content_type="image/png"))
        return out


class StabilityImage(Family):
    """SD3 / SD3.5 Large, Stable Image Ultra and Core (Stability's v2 fields, as JSON)."""

    name = "stability"
    natives = frozenset({"negative_prompt", "seed", "output_format", "aspect_ratio"})
    #: SD3 models also take an input image (``mode: image-to-image``).
    sd3_natives = natives | {"mode", "image", "strength"}
    caps = ModelCapabilities(aspect_ratios=STABILITY_RATIOS, max_n=1)

    @staticmethod
    def is_sd3(model: str) -> bool:
        return bare_model_id(model).startswith("stability.sd3")

    def natives_for(self, model: str) -> frozenset[str]:
        return self.sd3_natives if self.is_sd3(model) else self.natives

    def body(self, model: str, req: GenerationRequest, extra: dict[str, Any]) -> dict[str, Any]:
        extra = dict(extra)
        body: dict[str, Any] = {"prompt": req.prompt}
        ratio = extra.pop("aspect_ratio", None) or req.aspect_ratio
        if self.is_sd3(model):
            mode = extra.pop("mode", None) or ("image-to-image" if "image" in extra else "text-to-image")
            body["mode"] = mode
            if mode == "image-to-image":
                ratio = None  # the input image sets the shape
        if ratio is not None:
            body["aspect_ratio"] = ratio
        body.update(extra)
        return body

    def images(self, provider: str, req: GenerationRequest, doc: Any, raw: bytes,
               extra: dict[str, Any]) -> list[Image]:
        if not isinstance(doc, dict):
            raise MalformedAnswer(provider, "the answer is not a JSON object", raw)
        reasons = doc.get("finish_reasons")
        if reasons is not None and not isinstance(reasons, list):
            raise MalformedAnswer(provider, "`finish_reasons` is not a list", raw)
        for reason in reasons or ():
            if reason is None:
                continue
            if isinstance(reason, str) and reason.startswith("Filter reason"):
                raise ContentPolicyViolation(provider, reason)
            raise UpstreamError(f"{provider} error: the model did not finish the image ({reason})",
                                provider=provider, code="generation_failed")
        images = doc.get("images")
        if not isinstance(images, list) or not images:
            raise MalformedAnswer(provider, "no `images` list", raw)
        fmt = extra.get("output_format")
        ctype = _OUTPUT_TYPES.get(fmt, "image/png") if isinstance(fmt, str) else "image/png"
        out = []
        for b64 in images:
            if not isinstance(b64, str) or not b64:
                raise MalformedAnswer(provider, "an `images` item is not base64 text", raw)
            out.append(Image(b64=b64, content_type=ctype))
        return out


class AmazonImage(Family):
    """Titan Image Generator v1/v2 and Nova Canvas: ``taskType: TEXT_IMAGE``."""

    name = "amazon"
    #: Native names, and the camelCase ones the body itself uses.
    natives = frozenset({"negative_prompt", "negativeText", "seed", "cfg_scale", "cfgScale"})
    #: Titan v2 and Nova Canvas also take a conditioning image.
    conditioning = frozenset({"conditionImage", "controlMode", "controlStrength"})
    caps = ModelCapabilities(sizes=TITAN_SIZES, qualities=AMAZON_QUALITIES, max_n=5)

    def natives_for(self, model: str) -> frozenset[str]:
        if bare_model_id(model) == "amazon.titan-image-generator-v1":
            return self.natives
        return self.natives | self.conditioning

    def body(self, model: str, req: GenerationRequest, extra: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"text": req.prompt}
        negative = extra.get("negativeText", extra.get("negative_prompt"))
        if negative:
            params["negativeText"] = negative
        if req.style is not None:
            params["style"] = req.style
        for key in sorted(self.conditioning & extra.keys()):
            params[key] = extra[key]
        return {"taskType": "TEXT_IMAGE", "textToImageParams": params,
                "imageGenerationConfig": amazon_config(req, extra)}

    def images(self, provider: str, req: GenerationRequest, doc: Any, raw: bytes,
               extra: dict[str, Any]) -> list[Image]:
        if not isinstance(doc, dict):
            raise MalformedAnswer(provider, "the answer is not a JSON object", raw)
        error = doc.get("error")
        if error:
            # Images blocked after generation: all of them, or some ("Some of the
            # generated images have been blocked by our content filters.").
            raise ContentPolicyViolation(provider, str(error))
        images = doc.get("images")
        if not isinstance(images, list):
            raise MalformedAnswer(provider, "no `images` list", raw)
        out = []
        for b64 in images:
            if not isinstance(b64, str) or not b64:
                raise MalformedAnswer(provider, "an `images` item is not base64 text", raw)
            out.append(Image(b64=b64, content_type="image/png"))
        return out


def amazon_config(req: GenerationRequest, extra: dict[str, Any]) -> dict[str, Any]:
    """``imageGenerationConfig``, which every Titan and Nova task shares."""
    config: dict[str, Any] = {"numberOfImages": req.n}
    if req.width is not None and req.height is not None:
        config["width"], config["height"] = req.width, req.height
    if req.quality is not None:
        config["quality"] = req.quality
    cfg = extra.get("cfgScale", extra.get("cfg_scale"))
    if cfg is not None:
        config["cfgScale"] = cfg
    if "seed" in extra:
        config["seed"] = extra["seed"]
    return config


SDXL = StabilitySDXL()
STABILITY = StabilityImage()
AMAZON = AmazonImage()
FAMILIES: tuple[Family, ...] = (SDXL, STABILITY, AMAZON)

NOVA = ModelCapabilities(min_side=320, max_side=4096, side_multiple=16, max_pixels=4_194_304,
                         qualities=AMAZON_QUALITIES, styles=NOVA_STYLES, max_n=5)

DEFAULT_MODEL = "amazon.nova-canvas-v1:0"

#: Listed models by bare id.
MODELS: dict[str, ModelCapabilities] = {
    "stability.stable-diffusion-xl-v1": SDXL.caps,
    "stability.sd3-large-v1:0": STABILITY.caps,
    "stability.sd3-5-large-v1:0": STABILITY.caps,
    "stability.stable-image-ultra-v1:0": STABILITY.caps,
    "stability.stable-image-ultra-v1:1": STABILITY.caps,
    "stability.stable-image-core-v1:0": STABILITY.caps,
    "stability.stable-image-core-v1:1": STABILITY.caps,
    "amazon.titan-image-generator-v1": AMAZON.caps,
    "amazon.titan-image-generator-v2:0": AMAZON.caps,
    "amazon.nova-canvas-v1:0": NOVA,
}

#: Every native parameter some family takes (the provider's declared parameters).
NATIVE_PARAMETERS = frozenset().union(*(f.natives for f in FAMILIES), STABILITY.sd3_natives, AMAZON.conditioning)


def family_of(model: str) -> Family | None:
    """The dialect of ``model`` (prefixed or not); None for a model that makes no images here."""
    bare = bare_model_id(model)
    if bare.startswith("stability.stable-diffusion-xl"):
        return SDXL
    if bare.startswith("stability."):
        return STABILITY
    if bare.startswith(("amazon.titan-image-generator", "amazon.nova-canvas")):
        return AMAZON
    return None


def _family_caps(bare: str) -> ModelCapabilities | None:
    if bare.startswith("amazon.nova-canvas"):
        return NOVA
    family = family_of(bare)
    return family.caps if family is not None else None


class ModelTable(Mapping[str, ModelCapabilities]):
    """Capabilities by model id as the client names it: a region prefix or an ARN is
    looked through, and a new version of a known family gets the family's limits
    (``family``: bare id -> capabilities, or None)."""

    def __init__(self, models: Mapping[str, ModelCapabilities],
                 family: Callable[[str], ModelCapabilities | None] = _family_caps) -> None:
        self._models = dict(models)
        self._family = family

    def __getitem__(self, model: str) -> ModelCapabilities:
        bare = bare_model_id(model)
        caps = self._models.get(bare) or self._family(bare)
        if caps is None:
            raise KeyError(model)
        return caps

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)
