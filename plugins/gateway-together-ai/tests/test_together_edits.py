"""images.edits through Together AI: the real openai SDK against the gateway and the fake of
Together's images API, asserting the exact body sent (the image field per model, data URIs
decoding to the uploaded bytes, their order), the refusals before any upstream call, and the
edit request built in process."""
from __future__ import annotations

import base64
import io
from typing import Any

import aiohttp
import msgspec
import openai
import pytest

from gateway.sdk import IMAGES_EDITS, BadParam
from gateway.testing import PNG_1X1, edit_form, make_attempt
from gateway_together_ai import TogetherProvider
from gateway_together_ai.testing import GENERATIONS, data_uri_bytes, install

H = {"x-portkey-provider": "together-ai", "Authorization": "Bearer tg-key"}
EDITS = "/v1/images/edits"
KONTEXT = "black-forest-labs/FLUX.1-kontext-pro"
#: Real PNGs made distinct by trailing marker bytes, so identity and order show.
IMAGES = [PNG_1X1 + bytes([i]) * 64 for i in range(7)]


def sdk(server) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="tg-key", max_retries=0,
                              default_headers={"x-portkey-provider": "together-ai"})


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def form(*images: bytes, mask: bytes | None = None, **fields: str) -> aiohttp.FormData:
    return edit_form(*images, mask=mask, **{"prompt": "add a hat", **fields})


# -- the body per edit model ------------------------------------------------------------------

async def test_kontext_takes_the_image_as_a_data_uri_in_image_url(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model=KONTEXT, image=("a.png", IMAGES[1], "image/png"), prompt="add a hat",
                                          size="1024x768", response_format="b64_json",
                                          extra_body={"seed": 5, "steps": 28, "aspect_ratio": "4:3"})
    assert base64.b64decode(result.data[0].b64_json)[:8] == b"\x89PNG\r\n\x1a\n"
    sent = fake_upstream.last
    assert sent.path == GENERATIONS and sent.headers["Authorization"] == "Bearer tg-key"
    body = sent.json()
    assert body == {"model": KONTEXT, "prompt": "add a hat", "n": 1, "width": 1024, "height": 768,
                    "response_format": "base64", "seed": 5, "steps": 28, "aspect_ratio": "4:3",
                    "image_url": data_uri(IMAGES[1])}
    assert data_uri_bytes(body["image_url"]) == IMAGES[1]


async def test_flux2_takes_every_image_in_order_in_reference_images(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        await client.images.edit(model="black-forest-labs/FLUX.2-dev", prompt="one room",
                                 image=[(f"in{i}.png", io.BytesIO(b), "image/png") for i, b in enumerate(IMAGES[:3])])
    body = fake_upstream.last.json()
    assert set(body) == {"model", "prompt", "n", "reference_images"}
    assert [data_uri_bytes(u) for u in body["reference_images"]] == IMAGES[:3]


async def test_the_default_edit_model_is_kontext_pro_and_n_splits_with_the_seed_moved_on(gateway_client,  # noqa: ANN001
                                                                                       fake_upstream):
    resp = await gateway_client.post(EDITS, data=form(IMAGES[0], n="2", seed="5", response_format="url"), headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 2
    bodies = sorted((r.json() for r in fake_upstream.requests if r.method == "POST"), key=lambda b: b["seed"])
    assert [(b["model"], b["n"], b["seed"], b["image_url"]) for b in bodies] == [
        (KONTEXT, 1, 5, data_uri(IMAGES[0])), (KONTEXT, 1, 6, data_uri(IMAGES[0]))]


async def test_a_text_image_url_is_dropped_and_reported(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=form(IMAGES[0], image_url="https://example.com/x.png"), headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "image_url=(dropped)"
    assert fake_upstream.last.json()["image_url"] == data_uri(IMAGES[0])


# -- what a model cannot do is a 400 before any upstream call ---------------------------------

@pytest.mark.parametrize(("fields", "count", "mask", "param"), [
    ({"model": KONTEXT}, 2, None, "image"),
    ({"model": KONTEXT}, 1, IMAGES[6], "mask"),
    ({"model": "black-forest-labs/FLUX.2-dev"}, 7, None, "image"),
    ({"model": "black-forest-labs/FLUX.2-pro"}, 1, IMAGES[6], "mask"),
    ({"model": "black-forest-labs/FLUX.1-schnell"}, 1, None, "model"),
    ({"model": KONTEXT, "steps": "many"}, 1, None, "steps"),
    ({"model": KONTEXT, "image_url": "https://example.com/x.png"}, 1, None, "image_url"),
])
async def test_refused_before_any_upstream_call(gateway_client, fake_upstream, fields, count, mask, param):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=form(*IMAGES[:count], mask=mask, **fields),
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["param"] == param
    assert fake_upstream.requests == []


# -- in process ----------------------------------------------------------------------------------

def built(body: dict[str, Any], images: list[bytes]) -> Any:
    attempt = make_attempt(TogetherProvider, endpoint=IMAGES_EDITS, body={"prompt": "add a hat", **body},
                           images=images, api_key="tg-unit")
    assert attempt.plan is not None
    return attempt.provider.build_edit(attempt, attempt.plan.parts[0])


def test_build_edit_types_the_forms_numbers_and_booleans():
    req = built({"model": "black-forest-labs/FLUX.2-flex", "guidance_scale": "3", "disable_safety_checker": "true",
                 "negative_prompt": "blur"}, IMAGES[:2])
    assert (req.method, req.url) == ("POST", "https://api.together.xyz/v1/images/generations")
    assert req.headers["Authorization"] == "Bearer tg-unit" and req.headers["Content-Type"] == "application/json"
    assert msgspec.json.decode(req.body) == {
        "model": "black-forest-labs/FLUX.2-flex", "prompt": "add a hat", "n": 1, "guidance_scale": 3.0,
        "disable_safety_checker": True, "negative_prompt": "blur", "reference_images": [data_uri(b) for b in IMAGES[:2]]}


def test_build_edit_refuses_a_model_without_an_image_field():
    attempt = make_attempt(TogetherProvider, endpoint=IMAGES_EDITS, images=IMAGES[:1],
                           body={"prompt": "a hat", "model": "acme/other"})
    with pytest.raises(BadParam) as caught:
        attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    assert caught.value.param == "model"


# -- the fake enforces Together's image inputs ------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    ({"model": KONTEXT, "image_url": "data:image/png;base64," + base64.b64encode(b"not an image").decode()},
     "must be an image URL"),
    ({"model": KONTEXT, "reference_images": [data_uri(IMAGES[0])]}, "does not support `reference_images`"),
    ({"model": "black-forest-labs/FLUX.2-dev", "reference_images": []}, "non-empty array"),
    ({"model": "black-forest-labs/FLUX.1-schnell", "image_url": data_uri(IMAGES[0])}, "does not support `image_url`"),
])
async def test_the_fake_refuses_image_inputs_together_does_not_take(fake_upstream, body, message):  # noqa: ANN001
    install(fake_upstream)
    async with aiohttp.ClientSession() as session:
        async with session.post(fake_upstream.url + GENERATIONS, json={"prompt": "a hat", **body},
                                headers={"Authorization": "Bearer tg-key"}) as resp:
            assert resp.status == 400
            assert message in (await resp.json())["error"]["message"]
