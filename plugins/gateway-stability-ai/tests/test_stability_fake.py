"""The fake refuses what Stability documents as invalid, so the gateway's tests mean something."""
from __future__ import annotations

from typing import Any

import aiohttp
import pytest

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
