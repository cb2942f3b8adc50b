"""Edit masks across conventions.

OpenAI's mask is a PNG whose *transparent* pixels (alpha 0) mark where the image is
edited.  Most other APIs take a black-and-white mask instead: Stability, FLUX Fill
and SDXL inpainting edit where the mask is white, Amazon Titan and Nova Canvas
where it is black.  :func:`mask_for` turns an OpenAI mask into the one a provider
takes; a mask without transparency is taken to be in the provider's own
convention already (a client that sends a provider's native mask) and goes as it is.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Literal

from PIL import Image, UnidentifiedImageError

from gateway.errors import BadParam
from gateway.generation import InputImage

#: Largest mask decoded (the largest image any provider edits is 16384x16384 at most; GPT image
#: models 3840x2160): about 270 MB of RGBA while it is converted.
MAX_MASK_PIXELS = 64 * 1024 * 1024
#: Pixels this transparent or more (alpha below it) are the area to edit.
_TRANSPARENT_BELOW = 128
#: Masks from this size (bytes) are converted in a thread (decoding is CPU work).
_IN_THREAD_BYTES = 64 * 1024


async def mask_for(mask: InputImage, edit: Literal["white", "black"]) -> InputImage:
    """``mask`` as a black-and-white PNG that is ``edit`` where OpenAI's mask is transparent."""
    data = mask.data
    converted = await asyncio.to_thread(_convert, data, edit) if len(data) > _IN_THREAD_BYTES else _convert(data, edit)
    if converted is None:
        return mask
    return InputImage(field=mask.field, data=converted, media_type="image/png", filename="mask.png",
                      content_type="image/png", digest=hashlib.sha256(converted).digest())


def _convert(data: bytes, edit: str) -> bytes | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            # The header says the size before any pixel is decoded: a small file can claim a huge one.
            if img.width * img.height > MAX_MASK_PIXELS:
                raise BadParam("mask", f"The `mask` is {img.width}x{img.height}: over the {MAX_MASK_PIXELS} pixels "
                                       "a mask may have")
            img.load()
            if img.mode not in ("RGBA", "LA", "PA") and "transparency" not in img.info:
                return None
            alpha = img.convert("RGBA").getchannel("A")
    except (UnidentifiedImageError, OSError, ValueError):
        raise BadParam("mask", "The `mask` could not be read as an image") from None
    lo, hi = alpha.getextrema()
    if lo >= _TRANSPARENT_BELOW:  # nothing transparent: a mask in the provider's own convention
        return None
    on, off = (255, 0) if edit == "white" else (0, 255)
    out = alpha.point(lambda a: on if a < _TRANSPARENT_BELOW else off, mode="L")
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()
