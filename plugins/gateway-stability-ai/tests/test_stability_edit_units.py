"""Edits in process, without a server: the upstream request build_edit makes, the routes'
limits, and the image headers the plugin reads."""
from __future__ import annotations

import struct

import pytest

from gateway.sdk import IMAGES_EDITS, BadParam
from gateway.testing import Recorded, make_attempt
from gateway_stability_ai import testing as fake_api
from gateway_stability_ai.images import ImageInfo, probe
from gateway_stability_ai.models import EditRoute, edit_route_for
from gateway_stability_ai.provider import StabilityProvider

IMAGE = fake_api.png(64, 64, marker=b"image")
MASK = fake_api.png(64, 64, marker=b"mask")


async def build(body: dict[str, object], image: bytes = IMAGE, mask: bytes | None = None, part: int = 0,
                **kwargs: object) -> Recorded:
    """The upstream request of the edit's ``part``, as the fake would record it."""
    attempt = make_attempt(StabilityProvider, endpoint=IMAGES_EDITS, body=body, images=[image], mask=mask,
                           **kwargs)  # type: ignore[arg-type]
    assert attempt.plan is not None
    req = await attempt.provider.build_edit(attempt, attempt.plan.parts[part])
    return Recorded(req.method, req.url, {}, req.headers, req.body)


async def texts(rec: Recorded) -> dict[str, str]:
    return {p.name: p.data.decode() for p in await rec.form() if p.filename is None}


async def test_build_edit_is_a_multipart_post_to_the_route():
    rec = await build({"prompt": "a door", "negative_prompt": "fog", "output_format": "jpeg"}, mask=MASK)
    assert (rec.method, rec.path) == ("POST", "https://api.stability.ai/v2beta/stable-image/edit/inpaint")
    assert rec.headers["Authorization"] == "Bearer test-key"
    assert rec.headers["Accept"] == "application/json"
    parts = await rec.form()
    assert [(p.name, p.filename, p.content_type, p.data) for p in parts if p.filename] == [
        ("image", "image.png", "image/png", IMAGE), ("mask", "mask.png", "image/png", MASK)]
    assert [(p.name, p.data.decode()) for p in parts if not p.filename] == [
        ("prompt", "a door"), ("negative_prompt", "fog"), ("output_format", "jpeg")]
    # What the real API would take: the fake's own checks pass.
    problem, _ = fake_api.check_edit("inpaint", rec)
    assert problem is None


@pytest.mark.parametrize(
    ("seed", "part", "sent"),
    [
        ("7", 0, "7"),
        ("7", 2, "9"),  # a form's text seed: the plugin moves it on per call
        (7, 2, "9"),  # a number (from a config): the core already did, once
        ("0", 2, "0"),  # 0 is Stability's random seed, on every call
        ("4294967294", 1, "0"),  # past the largest seed: wrapped around
    ],
)
async def test_each_call_of_a_split_n_gets_its_own_seed(seed, part, sent):  # noqa: ANN001
    rec = await build({"model": "erase", "seed": seed, "n": 3}, mask=MASK, part=part)
    assert (await texts(rec))["seed"] == sent


async def test_a_request_over_stabilitys_10_mib_is_refused():
    with pytest.raises(BadParam) as err:
        await build({}, image=fake_api.png(64, 64, alpha=True, marker=b"x" * (10 * 1024 * 1024)))
    assert err.value.param == "image" and "10 MiB" in err.value.message


@pytest.mark.parametrize(
    ("model", "image", "fields", "why"),
    [
        ("remove-background", fake_api.png(2049, 2048), {}, "at most 4,194,304 pixels"),
        ("inpaint", fake_api.png(4097, 2304, alpha=True), {}, "at most 9,437,184 pixels"),
        ("ultra", fake_api.png(16385, 64), {"strength": "0.5"}, "at most 16384 pixels"),
        ("erase", fake_api.png(64, 63, alpha=True), {}, "at least 64 pixels"),
    ],
)
async def test_pixel_limits_per_route(model, image, fields, why):  # noqa: ANN001
    with pytest.raises(BadParam) as err:
        await build({"model": model, **fields}, image=image)
    assert err.value.param == "image" and why in err.value.message


async def test_an_image_whose_header_cannot_be_read_goes_to_stability_as_it_is():
    odd = b"RIFF\x20\x00\x00\x00WEBPVP8?" + bytes(16)  # a WebP of a kind the plugin does not read
    rec = await build({"model": "sd3.5-large", "strength": "0.4"}, image=odd)
    assert [p.data for p in await rec.form() if p.filename] == [odd]


def test_edit_routes_by_name():
    inpaint = edit_route_for("inpaint")
    assert inpaint is not None and inpaint.alpha_mask and inpaint.path.endswith("/edit/inpaint")
    assert edit_route_for("stable-image-ultra") == edit_route_for("ultra")
    variant = edit_route_for("sd3.5-large")
    assert isinstance(variant, EditRoute) and (variant.mode, variant.model_field) == ("image-to-image", "sd3.5-large")
    assert edit_route_for("sd3") is not None and edit_route_for("sd3").model_field is None  # type: ignore[union-attr]
    for name in ("core", "stable-image-core", "dall-e-2", "sd3/../x", ""):
        assert edit_route_for(name) is None


def test_edits_are_declared_and_not_streamed():
    caps = StabilityProvider.capabilities
    assert IMAGES_EDITS in caps.endpoints and not caps.streams
    assert caps.default_edit_model == "inpaint"
    inpaint, outpaint = caps.edit_model("inpaint"), caps.edit_model("outpaint")
    assert inpaint is not None and inpaint.mask and not inpaint.needs_mask and inpaint.input_images == 1
    assert outpaint is not None and not outpaint.mask and outpaint.max_n == 1
    assert caps.edit_model("sd3.9-next") == caps.edit_model("sd3.5-large")  # the sd3 family
    assert caps.edit_model("gpt-image-1") is None


# -- image headers -----------------------------------------------------------------------------------

def _jpeg(width: int, height: int, sof: int = 0xC0) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    frame = b"\xff" + bytes([sof]) + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + b"\xff\xff" + frame + b"\xff\xd9"


def _webp(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _png_palette(trns: bool) -> bytes:
    """A 2x3 palette PNG, with a tRNS chunk (transparent palette entries) or without."""
    png = fake_api.png(2, 3)
    ihdr = png[8:33]
    ihdr = ihdr[:8 + 9] + b"\x03" + ihdr[8 + 10:]  # colour type 3 (the CRC is not checked here)
    extra = b"\x00\x00\x00\x01tRNS\x00\x00\x00\x00\x00" if trns else b""
    return png[:8] + ihdr + extra + png[33:]


@pytest.mark.parametrize(
    ("data", "info"),
    [
        (fake_api.png(300, 200), ImageInfo(300, 200, False)),
        (fake_api.png(64, 80, alpha=True), ImageInfo(64, 80, True)),
        (_png_palette(trns=True), ImageInfo(2, 3, True)),
        (_png_palette(trns=False), ImageInfo(2, 3, False)),
        (_jpeg(640, 480), ImageInfo(640, 480, False)),
        (_jpeg(100, 70, sof=0xC2), ImageInfo(100, 70, False)),  # progressive
        (_webp(b"VP8X", bytes([0x10, 0, 0, 0]) + (1023).to_bytes(3, "little") + (767).to_bytes(3, "little")),
         ImageInfo(1024, 768, True)),
        (_webp(b"VP8X", bytes(4) + (99).to_bytes(3, "little") + (49).to_bytes(3, "little")),
         ImageInfo(100, 50, False)),
        (_webp(b"VP8L", b"\x2f" + struct.pack("<I", 99 | (49 << 14) | (1 << 28))), ImageInfo(100, 50, True)),
        (_webp(b"VP8L", b"\x2f" + struct.pack("<I", 99 | (49 << 14))), ImageInfo(100, 50, False)),
        (_webp(b"VP8 ", b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 320, 240)), ImageInfo(320, 240, False)),
    ],
)
def test_probe_reads_size_and_alpha_from_the_header(data, info):  # noqa: ANN001
    assert probe(data) == info


@pytest.mark.parametrize("data", [b"", b"GIF89a", fake_api.png(8, 8)[:20], b"\xff\xd8\xff\xe0\x00",
                                  _webp(b"VP8L", b"\x00" + bytes(4)), _webp(b"ALPH", bytes(10))])
def test_probe_gives_up_on_what_it_cannot_read(data):  # noqa: ANN001
    assert probe(data) is None
