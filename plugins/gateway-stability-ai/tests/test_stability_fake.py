"""The fake refuses what Stability documents as invalid, so the gateway's tests mean something."""
from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest

from gateway.testing import PNG_1X1
from gateway_stability_ai import testing as fake_api

AUTH = {"Authorization": "Bearer k"}
SDXL = "/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image"
SD16 = "/v1/generation/stable-diffusion-v1-6/text-to-image"
CORE = "/v2beta/stable-image/generate/core"
SD3 = "/v2beta/stable-image/generate/sd3"


@pytest.fixture
async def fake(fake_upstream):  # noqa: ANN001, ANN201
    fake_api.install(fake_upstream)
    async with aiohttp.ClientSession(base_url=fake_upstream.url) as session:
        yield session


def multipart(**fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for k, v in fields.items():
        form.add_field(k, v)
    return form


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "name"),
    [
        (SDXL, {"text_prompts": [{"text": "x"}]}, {}, 401, "unauthorized"),
        (SDXL, {"prompt": "x"}, AUTH, 400, "bad_request"),
        (SDXL, {"text_prompts": []}, AUTH, 400, "bad_request"),
        (SDXL, {"text_prompts": [{"text": "x"}], "n": 2}, AUTH, 400, "bad_request"),
        (SDXL, {"text_prompts": [{"text": "x"}], "width": 512, "height": 512}, AUTH, 400, "invalid_height_or_width"),
        (SD16, {"text_prompts": [{"text": "x"}], "width": 500, "height": 512}, AUTH, 400, "invalid_height_or_width"),
        (SD16, {"text_prompts": [{"text": "x"}], "width": 320, "height": 320}, AUTH, 400, "invalid_pixel_count"),
        (SD16, {"text_prompts": [{"text": "x"}], "width": 1536, "height": 1024}, AUTH, 400, "invalid_pixel_count"),
        (SD16, {"text_prompts": [{"text": "x"}], "samples": 11}, AUTH, 400, "bad_request"),
        (SD16, {"text_prompts": [{"text": "x"}], "samples": 2}, {**AUTH, "Accept": "image/png"}, 400,
         "invalid_samples"),
        (SD16, {"text_prompts": [{"text": "x"}], "style_preset": "vivid"}, AUTH, 400, "bad_request"),
        (SD16, {"text_prompts": [{"text": "x"}], "steps": 5}, AUTH, 400, "bad_request"),
        (SD16, {"text_prompts": [{"text": "x"}], "seed": -1}, AUTH, 400, "bad_request"),
        (SD16, {"text_prompts": [{"text": "x"}]}, {**AUTH, "Accept": "image/jpeg"}, 400, "bad_request"),
        ("/v1/generation/stable-diffusion-512-v2-1/text-to-image", {"text_prompts": [{"text": "x"}]}, AUTH, 404,
         None),
    ],
)
async def test_v1_refusals(fake, path, body, headers, status, name):  # noqa: ANN001, PLR0913
    async with fake.post(path, json=body, headers=headers) as resp:
        assert resp.status == status
        doc = await resp.json()
    if name is not None:  # an unknown engine is the fake upstream's own 404
        assert doc["name"] == name and isinstance(doc["message"], str) and doc["id"]


@pytest.mark.parametrize(
    ("path", "fields", "headers", "status", "name"),
    [
        (CORE, {"prompt": "x"}, {}, 401, "unauthorized"),
        (CORE, {"aspect_ratio": "1:1"}, AUTH, 400, "bad_request"),
        (CORE, {"prompt": "x", "aspect_ratio": "4:3"}, AUTH, 400, "bad_request"),
        (CORE, {"prompt": "x", "model": "sd3.5-large"}, AUTH, 400, "bad_request"),
        (CORE, {"prompt": "x", "cfg_scale": "5"}, AUTH, 400, "bad_request"),
        (CORE, {"prompt": "x", "output_format": "gif"}, AUTH, 400, "bad_request"),
        (CORE, {"prompt": "x", "seed": "4294967295"}, AUTH, 400, "bad_request"),
        (CORE, {"prompt": "x"}, {**AUTH, "Accept": "image/png"}, 400, "bad_request"),
        (SD3, {"prompt": "x", "model": "sd3.7-huge"}, AUTH, 400, "bad_request"),
        (SD3, {"prompt": "x", "cfg_scale": "11"}, AUTH, 400, "bad_request"),
        (SD3, {"prompt": f"x {fake_api.REFUSE}"}, AUTH, 403, "content_moderation"),
    ],
)
async def test_v2_refusals(fake, path, fields, headers, status, name):  # noqa: ANN001, PLR0913
    async with fake.post(path, data=multipart(**fields), headers=headers) as resp:
        assert resp.status == status
        doc = await resp.json()
    assert doc["name"] == name and doc["errors"] and doc["id"]


async def test_v2_refuses_a_form_that_is_not_multipart(fake):  # noqa: ANN001
    async with fake.post(CORE, data={"prompt": "x"}, headers=AUTH) as resp:  # urlencoded
        assert resp.status == 400
    async with fake.post(CORE, json={"prompt": "x"}, headers=AUTH) as resp:
        assert resp.status == 400


@pytest.mark.parametrize(
    ("accept", "content_type", "check"),
    [
        ("application/json", "application/json; type=image/png", lambda b: b.startswith(b'{"image":')),
        ("image/*", "image/png", lambda b: b.startswith(b"\x89PNG")),
        (None, "image/png", lambda b: b.startswith(b"\x89PNG")),
    ],
)
async def test_v2_answers_by_accept(fake, accept, content_type, check: Any):  # noqa: ANN001
    headers = {**AUTH, **({"Accept": accept} if accept else {})}
    async with fake.post(SD3, data=multipart(prompt="x", model="sd3.5-medium"), headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == content_type
        assert check(await resp.read())


# -- edits and image-to-image ----------------------------------------------------------------------

EDIT = "/v2beta/stable-image/edit/"
ULTRA = "/v2beta/stable-image/generate/ultra"
IMAGE = fake_api.png(64, 64)


def with_files(files: dict[str, bytes], **fields: str) -> aiohttp.FormData:
    form = multipart(**fields)
    for name, data in files.items():
        form.add_field(name, data, filename=f"{name}.png", content_type="image/png")
    return form


@pytest.mark.parametrize(
    ("path", "files", "fields", "status", "error"),
    [
        (EDIT + "inpaint", {}, {"prompt": "x"}, 400, "image: is required"),
        (EDIT + "inpaint", {"image": IMAGE}, {}, 400, "prompt: is required"),
        (EDIT + "inpaint", {"image": IMAGE}, {"prompt": "x" * 10001}, 400, "prompt: at most 10000 characters"),
        (EDIT + "inpaint", {"image": IMAGE}, {"prompt": "x", "grow_mask": "101"}, 400, "grow_mask: must be"),
        (EDIT + "inpaint", {"image": IMAGE, "mask": b"not an image"}, {"prompt": "x"}, 400, "mask: must be"),
        (EDIT + "inpaint", {"image": fake_api.png(63, 64)}, {"prompt": "x"}, 400, "image: every side"),
        (EDIT + "inpaint", {"image": PNG_1X1 + b"x"}, {"prompt": "x"}, 400, "image: every side"),
        (EDIT + "inpaint", {"image": b"GIF89a..."}, {"prompt": "x"}, 400, "image: must be a jpeg, png or webp"),
        (EDIT + "inpaint", {}, {"prompt": "x", "image": "a.png"}, 400, "image: must be a file"),
        (EDIT + "inpaint", {"image": IMAGE, "prompt": b"x"}, {}, 400, "prompt: must be a text field"),
        (EDIT + "erase", {"image": IMAGE}, {"prompt": "x"}, 400, "prompt: unknown field"),
        (EDIT + "erase", {"image": IMAGE}, {"grow_mask": "21"}, 400, "grow_mask: must be a whole number from 0 to 20"),
        (EDIT + "outpaint", {"image": IMAGE, "mask": IMAGE}, {"left": "8"}, 400, "mask: unknown field"),
        (EDIT + "outpaint", {"image": IMAGE}, {"prompt": "x"}, 400, "at least one outpaint direction"),
        (EDIT + "outpaint", {"image": IMAGE}, {"left": "2001"}, 400, "left: must be a whole number from 0 to 2000"),
        (EDIT + "outpaint", {"image": IMAGE}, {"up": "8", "creativity": "1.5"}, 400, "creativity: must be"),
        (EDIT + "outpaint", {"image": fake_api.png(161, 64)}, {"left": "8"}, 400, "image: its aspect ratio"),
        (EDIT + "search-and-replace", {"image": IMAGE}, {"prompt": "x"}, 400, "search_prompt: is required"),
        (EDIT + "search-and-recolor", {"image": IMAGE}, {"prompt": "x"}, 400, "select_prompt: is required"),
        (EDIT + "search-and-recolor", {"image": IMAGE}, {"prompt": "x", "select_prompt": "y", "seed": "-1"}, 400,
         "seed: must be"),
        (EDIT + "remove-background", {"image": IMAGE}, {"output_format": "jpeg"}, 400, "output_format: must be one of"),
        (EDIT + "remove-background", {"image": IMAGE}, {"prompt": "x"}, 400, "prompt: unknown field"),
        (SD3, {"image": IMAGE}, {"prompt": "x", "mode": "image-to-image"}, 400, "strength: is required"),
        (SD3, {}, {"prompt": "x", "mode": "image-to-image", "strength": "0.5"}, 400, "image: is required"),
        (SD3, {"image": IMAGE}, {"prompt": "x", "strength": "0.5"}, 400, "image: is only valid for image-to-image"),
        (SD3, {}, {"prompt": "x", "strength": "0.5"}, 400, "strength: is only valid for image-to-image"),
        (SD3, {"image": IMAGE}, {"prompt": "x", "mode": "image-to-image", "strength": "0.5", "aspect_ratio": "1:1"},
         400, "aspect_ratio: is only valid for text-to-image"),
        (SD3, {"image": IMAGE}, {"prompt": "x", "mode": "image-to-image", "strength": "2"}, 400, "strength: must be"),
        (ULTRA, {"image": IMAGE}, {"prompt": "x"}, 400, "strength: is required when image is provided"),
        (ULTRA, {"image": fake_api.png(16385, 64)}, {"prompt": "x", "strength": "0.1"}, 400, "at most 16384"),
        (CORE, {"image": IMAGE}, {"prompt": "x"}, 400, "image: unknown field"),
        (EDIT + "inpaint", {"image": IMAGE}, {"prompt": f"x {fake_api.REFUSE}"}, 403, "content moderation"),
        (EDIT + "search-and-replace", {"image": IMAGE}, {"prompt": "x", "search_prompt": f"{fake_api.REFUSE}"}, 403,
         "content moderation"),
    ],
)
async def test_edit_refusals(fake, path, files, fields, status, error):  # noqa: ANN001, PLR0913
    async with fake.post(path, data=with_files(files, **fields), headers=AUTH) as resp:
        assert resp.status == status
        doc = await resp.json()
    assert doc["id"] and doc["name"] and any(error in e for e in doc["errors"]), doc


@pytest.mark.parametrize(
    ("path", "files", "fields"),
    [
        (EDIT + "inpaint", {"image": IMAGE, "mask": fake_api.png(128, 128)}, {"prompt": "x", "grow_mask": "100"}),
        (EDIT + "inpaint", {"image": fake_api.png(161, 64)}, {"prompt": "x"}),  # no aspect-ratio rule
        (EDIT + "erase", {"image": IMAGE}, {"grow_mask": "20", "seed": "4294967294"}),
        (EDIT + "outpaint", {"image": fake_api.png(160, 64)}, {"down": "2000", "creativity": "1"}),  # 2.5:1 exactly
        (EDIT + "search-and-replace", {"image": IMAGE}, {"prompt": "x", "search_prompt": "y", "style_preset": "anime"}),
        (EDIT + "search-and-recolor", {"image": IMAGE}, {"prompt": "x", "select_prompt": "y", "grow_mask": "0"}),
        (EDIT + "remove-background", {"image": IMAGE}, {"output_format": "webp"}),
        (SD3, {"image": IMAGE}, {"prompt": "x", "mode": "image-to-image", "strength": "0", "model": "sd3.5-medium"}),
        (ULTRA, {"image": IMAGE}, {"prompt": "x", "strength": "1"}),
    ],
)
async def test_edits_stability_takes(fake, path, files, fields):  # noqa: ANN001
    headers = {**AUTH, "Accept": "application/json"}
    async with fake.post(path, data=with_files(files, **fields), headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        doc = await resp.json()
    fmt = fields.get("output_format", "png")
    assert resp.headers["Content-Type"] == f"application/json; type=image/{fmt}"
    assert set(doc) == {"image", "finish_reason", "seed"} and doc["finish_reason"] == "SUCCESS"


async def test_a_body_over_10_mib_is_a_413(fake):  # noqa: ANN001
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("image", io.BytesIO(fake_api.png(64, 64, marker=b"x" * (10 * 1024 * 1024))), filename="a.png")
    async with fake.post(EDIT + "erase", data=form, headers=AUTH) as resp:
        assert resp.status == 413
        doc = await resp.json()
    assert doc["errors"] == ["Your request was larger than 10MiB."]
