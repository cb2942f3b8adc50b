"""The Seedream models and what each takes, as BytePlus ModelArk (and Volcengine Ark) document them.

Model IDs carry a release date (``seedream-4-5-251128``; ``doubao-seedream-4-5-251128`` on
Volcengine, and ``ep-...`` inference endpoints on both), so models are matched as families.

``size`` is either a resolution tier (``2K``: the model picks the shape from the prompt) or
``WIDTHxHEIGHT`` within a total-pixel range and an aspect ratio between 1:16 and 16:1.  The
newer models refuse small images (4.5 and 5.0: at least 2560x1440 pixels in all): the core scales
a smaller ``size`` up, keeping its shape, and reports it.  The tier is taken from ``quality``.
"""
from __future__ import annotations

import msgspec

from gateway.sdk import ModelCapabilities

__all__ = [
    "ANY", "ANY_EDIT", "BOOL_NATIVES", "DEFAULT_MODEL", "EDIT_FAMILIES", "FAMILIES", "MAX_INPUT_IMAGES", "NATIVE",
    "NUMBER_NATIVES", "OBJECT_NATIVES", "PARAMETERS", "SEEDREAM_4_0", "SEEDREAM_4_5", "SEEDREAM_5_0",
    "VOLCENGINE_DEFAULT_MODEL",
]

DEFAULT_MODEL = "seedream-4-5-251128"
#: The same model's ID on Volcengine Ark.
VOLCENGINE_DEFAULT_MODEL = "doubao-seedream-4-5-251128"
#: Reference images one request takes (input + generated images at most 15).
MAX_INPUT_IMAGES = 14

#: Native body fields by kind (an edit's form sends them as text).
BOOL_NATIVES = frozenset({"watermark", "optimize_prompt"})
OBJECT_NATIVES = frozenset({"optimize_prompt_options", "sequential_image_generation_options", "tools"})
NUMBER_NATIVES = {"seed": int, "guidance_scale": float}
#: Every native field of ``POST /images/generations`` (the BytePlus Ark SDK's ``images.generate``).
NATIVE = (BOOL_NATIVES | OBJECT_NATIVES | frozenset(NUMBER_NATIVES)
          | {"sequential_image_generation", "output_format"})
PARAMETERS = frozenset({"prompt", "model", "n", "size", "quality", "response_format"}) | NATIVE

#: What the 4.x models take besides the unified fields (the docs' support matrix: no `seed`,
#: `guidance_scale` or `output_format`; those are the legacy 3.0 models' and 5.0's).
_NATIVE_4 = frozenset({"watermark", "optimize_prompt_options", "sequential_image_generation",
                       "sequential_image_generation_options"})
_NATIVE_5 = _NATIVE_4 | {"output_format", "tools"}

_COMMON = ModelCapabilities(max_ratio=16.0, auto_size=True, max_n=1, response_formats=("url", "b64_json"))
#: seedream-4-0: 1K/2K/4K, or 1280x720 to 4096x4096 pixels in all.  (``max_side``, the long side
#: of the longest allowed shape at the most pixels, limits nothing the pixels and ratio do not; it
#: is declared so the core fits sizes into the range.)
SEEDREAM_4_0 = msgspec.structs.replace(_COMMON, min_pixels=1280 * 720, max_pixels=4096 * 4096, max_side=16384,
                                       qualities=("1K", "2K", "4K"), parameters=_NATIVE_4)
#: seedream-4-5: 2K/4K, or 2560x1440 to 4096x4096 pixels in all.
SEEDREAM_4_5 = msgspec.structs.replace(_COMMON, min_pixels=2560 * 1440, max_pixels=4096 * 4096, max_side=16384,
                                       qualities=("2K", "4K"), parameters=_NATIVE_4)
#: seedream-5-0 (and -lite): 2K/3K, or 2560x1440 to 3072x3072x1.1025 pixels in all.
SEEDREAM_5_0 = msgspec.structs.replace(_COMMON, min_pixels=2560 * 1440, max_pixels=10404496, max_side=12902,
                                       qualities=("2K", "3K"), parameters=_NATIVE_5)
#: Any other model or endpoint ID: one image a call, ``size`` as asked, every tier name.
ANY = msgspec.structs.replace(_COMMON, max_ratio=None, qualities=("1K", "2K", "3K", "4K"))

FAMILIES: tuple[tuple[str, ModelCapabilities], ...] = (
    ("*seedream-5-0-lite*", SEEDREAM_5_0),
    ("*seedream-5-0-[0-9]*", SEEDREAM_5_0),
    ("*seedream-4-5*", SEEDREAM_4_5),
    ("*seedream-4-0*", SEEDREAM_4_0),
)
#: Edits: the same models with up to 14 reference images in ``image``; no mask.
EDIT_FAMILIES: tuple[tuple[str, ModelCapabilities], ...] = tuple(
    (pattern, msgspec.structs.replace(caps, input_images=MAX_INPUT_IMAGES)) for pattern, caps in FAMILIES
)
ANY_EDIT = msgspec.structs.replace(ANY, input_images=MAX_INPUT_IMAGES)
