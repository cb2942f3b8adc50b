"""OpenAI's transparent-where-edited mask, turned into the black-and-white masks other APIs take."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from gateway.sdk import BadParam, InputImage, mask_for


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def openai_mask() -> bytes:
    """4x2, opaque except a transparent left half: the left half is to be edited."""
    img = Image.new("RGBA", (4, 2), (0, 0, 0, 255))
    for x in range(2):
        for y in range(2):
            img.putpixel((x, y), (0, 0, 0, 0))
    return png(img)


def upload(data: bytes) -> InputImage:
    return InputImage(field="mask", data=data, media_type="image/png", filename="m.png")


@pytest.mark.parametrize(("edit", "left", "right"), [("white", 255, 0), ("black", 0, 255)])
async def test_transparent_pixels_become_the_providers_edit_colour(edit, left, right):  # noqa: ANN001
    out = await mask_for(upload(openai_mask()), edit)
    with Image.open(io.BytesIO(out.data)) as img:
        assert img.mode == "L" and img.size == (4, 2)
        assert [img.getpixel((x, 0)) for x in range(4)] == [left, left, right, right]
    assert out.media_type == "image/png" and out.sha256 != upload(openai_mask()).sha256


async def test_a_mask_without_transparency_is_already_the_providers_own():
    native = png(Image.new("L", (4, 2), 255))
    opaque = png(Image.new("RGBA", (4, 2), (255, 255, 255, 255)))
    for data in (native, opaque):
        mask = upload(data)
        assert await mask_for(mask, "white") is mask


async def test_a_large_mask_is_converted_off_the_event_loop_the_same_way():
    img = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
    alpha = Image.effect_noise((1024, 1024), 64).convert("L").point(lambda v: 0 if v < 128 else 255)
    alpha.paste(0, (0, 0, 512, 1024))  # the left half transparent, the right half noise (a big file)
    img.putalpha(alpha)
    out = await mask_for(upload(png(img)), "white")
    with Image.open(io.BytesIO(out.data)) as converted:
        histogram = converted.histogram()
        assert sum(histogram[1:255]) == 0 and histogram[255] >= 512 * 1024  # black and white only
        assert converted.getpixel((100, 100)) == 255  # the transparent left half is white


async def test_a_mask_that_is_not_an_image_is_a_400():
    with pytest.raises(BadParam, match="mask"):
        await mask_for(upload(b"\x89PNG\r\n\x1a\n not really"), "white")


async def test_a_mask_claiming_too_many_pixels_is_refused_before_it_is_decoded():
    huge = png(Image.new("1", (9000, 8000), 1))  # 72 million pixels in a few kB
    with pytest.raises(BadParam, match="over the"):
        await mask_for(upload(huge), "white")
