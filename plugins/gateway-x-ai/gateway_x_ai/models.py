"""xAI's image models and what each takes, as xAI documents them.

Sources: the REST reference (``GenerateImageRequest`` / ``EditImageRequest`` in xAI's OpenAPI
document, shipped as ``spec/openapi.json`` in ``xai-org/xai-sdk-ts``), the image guides on
docs.x.ai, and ``xai-org/xai-sdk-python`` (``types/image.py``, ``types/model.py``, changelog
v1.19.0 for ``quality``).
"""
from __future__ import annotations

import msgspec

from gateway.sdk import ModelCapabilities

__all__ = [
    "ASPECT_RATIOS", "DEFAULT_MODEL", "EDIT_FAMILIES", "FAMILIES", "IMAGINE", "IMAGINE_2", "NATIVE", "PARAMETERS",
    "resolution_for",
]

DEFAULT_MODEL = "grok-imagine-image"

#: The ratios docs.x.ai's image-generation guide and the Python SDK's ``ImageAspectRatio`` both list.
#: (xAI's OpenAPI document also lists ``21:9`` and ``5:2``: a client may send those as the native
#: ``aspect_ratio``; ``size`` is mapped onto this list only.)
ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1")

#: Every grok-imagine model: ``aspect_ratio`` (``size: auto`` is xAI's own default, ``auto``),
#: 1 to 10 images in one call, ``response_format`` ``url`` or ``b64_json``; no ``quality``.
IMAGINE = ModelCapabilities(aspect_ratios=ASPECT_RATIOS, auto_size=True, max_n=10,
                            response_formats=("url", "b64_json"))
#: grok-imagine-image-2.0 and later 2.x: ``quality`` ``low`` or ``medium`` (the default), per the
#: Python SDK ("only supported for grok-imagine-image-2.0").
IMAGINE_2 = msgspec.structs.replace(IMAGINE, qualities=("low", "medium"))

#: Matched by name, newest first, so a new model of a family works the day it ships.
FAMILIES: tuple[tuple[str, ModelCapabilities], ...] = (
    ("grok-imagine-image-2*", IMAGINE_2),
    ("grok-imagine-image*", IMAGINE),
)
#: Edits (``POST /v1/images/edits``): up to three source images (docs.x.ai multi-image editing), no mask.
EDIT_FAMILIES: tuple[tuple[str, ModelCapabilities], ...] = tuple(
    (pattern, msgspec.structs.replace(caps, input_images=3)) for pattern, caps in FAMILIES
)

#: Native body fields a client may send as they are.
NATIVE = frozenset({"aspect_ratio", "resolution"})
PARAMETERS = frozenset({"prompt", "model", "n", "size", "quality", "response_format", "user"}) | NATIVE

#: Above this many pixels a ``size`` asks for xAI's ``2k`` resolution; up to it ``1k``.  The
#: threshold is the geometric middle between the tiers (1k is about 1 MP, 2k about 4 MP): the
#: tier nearest the asked size in area.
_TWO_K_FROM = 2 * 1024 * 1024


def resolution_for(width: int, height: int) -> str:
    """xAI's ``resolution`` nearest a ``width`` x ``height`` in area."""
    return "2k" if width * height > _TWO_K_FROM else "1k"
