"""The demo provider's pictures: real PNGs made with Pillow from the prompt.

A generation is a diagonal gradient in two colours derived from the prompt (the same prompt,
the same colours), a few discs placed by the prompt and the image's index, and the prompt's
text.  An edit draws on the caller's image: the masked area (OpenAI's convention: transparent
pixels) or, without a mask, a band at the bottom, is painted in the prompt's colour with the
prompt written on it.
"""
from __future__ import annotations

import colorsys
import hashlib
import io
import random
import textwrap

from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageOps

#: zlib level of the PNGs: the demo's images are gradients, which compress well enough fast.
_COMPRESS_LEVEL = 1


def prompt_colours(prompt: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Two colours for ``prompt``: a hue taken from its hash, and one a little further round."""
    digest = hashlib.sha256(prompt.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    first = colorsys.hsv_to_rgb(hue, 0.65, 0.85)
    second = colorsys.hsv_to_rgb((hue + 0.12) % 1.0, 0.75, 0.45)
    return _rgb(first), _rgb(second)


def generate(prompt: str, width: int, height: int, *, index: int = 0, label: str = "") -> bytes:
    """A ``width`` x ``height`` PNG showing ``prompt`` (``index`` varies the discs of the
    images of one request; ``label`` is written small at the bottom)."""
    light, dark = prompt_colours(prompt)
    ramp = Image.linear_gradient("L")
    mask = ImageChops.add(ramp, ramp.rotate(90), scale=2.0).resize((width, height))
    image = Image.composite(Image.new("RGB", (width, height), dark), Image.new("RGB", (width, height), light), mask)
    draw = ImageDraw.Draw(image, "RGBA")
    rng = random.Random(f"{prompt}\0{index}")
    side = min(width, height)
    for _ in range(6):
        r = rng.randint(side // 16, side // 4)
        x, y = rng.randint(0, width), rng.randint(0, height)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, rng.randint(25, 70)))
    _write(draw, prompt, (0, 0, width, height), side)
    if label:
        _label(draw, label, width, height, side)
    return _png(image)


def edit(source: bytes, prompt: str, width: int, height: int, *, mask: bytes | None = None, index: int = 0,
         label: str = "") -> bytes:
    """``source`` (any image Pillow reads) fitted to ``width`` x ``height``, with the area ``mask``
    leaves transparent (else a band at the bottom) painted in ``prompt``'s colour and the prompt
    written on it.  Raises ``ValueError`` for bytes that are not an image."""
    image = _open(source).convert("RGB")
    image = ImageOps.fit(image, (width, height))
    light, _ = prompt_colours(prompt)
    alpha = 215 + 10 * (index % 4)
    if mask is not None:
        area = _open(mask).convert("RGBA").resize((width, height)).getchannel("A")
        paint = area.point(lambda a: alpha if a < 128 else 0)
        image.paste(Image.new("RGB", (width, height), light), (0, 0), paint)
        box = area.point(lambda a: 255 if a < 128 else 0).getbbox() or (0, 0, width, height)
    else:
        box = (0, height * 2 // 3, width, height)
        band = Image.new("L", (width, height), 0)
        ImageDraw.Draw(band).rectangle(box, fill=alpha)
        image.paste(Image.new("RGB", (width, height), light), (0, 0), band)
    draw = ImageDraw.Draw(image, "RGBA")
    _write(draw, prompt, box, min(width, height))
    if label:
        _label(draw, label, width, height, min(width, height), top=True)
    return _png(image)


def size_of(data: bytes) -> tuple[int, int]:
    """Width and height of an image; ``ValueError`` when the bytes are not one."""
    return _open(data).size


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"not an image Pillow can read ({e})") from None
    return image


def _write(draw: ImageDraw.ImageDraw, text: str, box: tuple[int, int, int, int], side: int) -> None:
    """``text`` wrapped and centred in ``box``, white with a dark shadow, as large as fits."""
    left, top, right, bottom = box
    size = max(12, side // 14)
    while True:
        font = ImageFont.load_default(size=size)
        chars = max(8, int((right - left) * 0.85 / (size * 0.55)))
        lines = textwrap.wrap(text, chars, max_lines=6, placeholder=" …") or [""]
        body = "\n".join(lines)
        x0, y0, x1, y1 = draw.multiline_textbbox((0, 0), body, font=font, align="center")
        if (x1 - x0 <= (right - left) * 0.92 and y1 - y0 <= (bottom - top) * 0.9) or size <= 12:
            break
        size = int(size * 0.85)
    x = left + ((right - left) - (x1 - x0)) / 2 - x0
    y = top + ((bottom - top) - (y1 - y0)) / 2 - y0
    shadow = max(1, size // 16)
    draw.multiline_text((x + shadow, y + shadow), body, font=font, fill=(0, 0, 0, 140), align="center")
    draw.multiline_text((x, y), body, font=font, fill=(255, 255, 255, 255), align="center")


def _label(draw: ImageDraw.ImageDraw, text: str, width: int, height: int, side: int, top: bool = False) -> None:
    """``text`` small in the bottom right corner (an edit's in the top left, away from the source's)."""
    font = ImageFont.load_default(size=max(10, side // 40))
    margin = max(4, side // 64)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    if top:
        xy = (margin - x0, margin - y0)
    else:
        xy = (width - (x1 - x0) - margin - x0, height - (y1 - y0) - margin - y0)
    draw.rectangle((xy[0] + x0 - 2, xy[1] + y0 - 2, xy[0] + x1 + 2, xy[1] + y1 + 2), fill=(0, 0, 0, 70))
    draw.text(xy, text, font=font, fill=(255, 255, 255, 230))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=_COMPRESS_LEVEL)
    return out.getvalue()


def _rgb(colour: tuple[float, float, float]) -> tuple[int, int, int]:
    r, g, b = colour
    return round(r * 255), round(g * 255), round(b * 255)
