"""images.edits through Seedream end to end: the real openai SDK against the gateway and the fake
Ark API, asserting the exact body (reference images as data URIs in order, typed form natives) and
the refusals before any upstream call."""
from __future__ import annotations

import base64

import openai
import pytest

from gateway.testing import PNG_1X1, edit_form
from gateway_bytedance_seedream.testing import GENERATIONS, KEY, data_uri_bytes

H = {"x-portkey-provider": "bytedance-seedream", "Authorization": f"Bearer {KEY}"}
EDITS = "/v1/images/edits"
#: Real PNGs made distinct by trailing bytes, so identity and order show.
IMAGES = [PNG_1X1 + bytes([i]) * 32 for i in range(15)]


@pytest.fixture
def gateway_settings(fake_upstream, ark):  # noqa: ANN001, ANN201
    return {"providers": {"bytedance-seedream": {"base_url": fake_upstream.url + "/api/v3"}}}


async def test_edit_through_the_openai_sdk_keeps_image_order(gateway_server, fake_upstream, ark):  # noqa: ANN001
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key=KEY, max_retries=0,
                                  default_headers={"x-portkey-provider": "bytedance-seedream"}) as sdk:
        result = await sdk.images.edit(model="seedream-4-0-250828", prompt="put image 1's hat on image 2", n=2,
                                       image=[(f"{i}.png", IMAGES[i], "image/png") for i in range(3)],
                                       size="1280x720", response_format="b64_json")
    assert sorted(base64.b64decode(d.b64_json) for d in result.data) == sorted(ark.served)
    assert len(fake_upstream.requests) == 2
    for rec in fake_upstream.requests:
        assert rec.path == GENERATIONS
        body = rec.json()
        assert [data_uri_bytes(u) for u in body.pop("image")] == IMAGES[:3]
        assert body == {"model": "seedream-4-0-250828", "prompt": "put image 1's hat on image 2", "size": "1280x720",
                        "response_format": "b64_json"}


async def test_one_image_and_form_natives(gateway_client, fake_upstream, ark):  # noqa: ANN001
    form = edit_form(IMAGES[0], prompt="a hat", watermark="false", sequential_image_generation="disabled",
                     quality="2K")
    resp = await gateway_client.post(EDITS, data=form, headers=H)
    assert resp.status == 200, await resp.text()
    body = fake_upstream.requests[0].json()  # then the gateway fetches the image for its own URL
    assert data_uri_bytes(body.pop("image")) == IMAGES[0]
    assert body == {"model": "seedream-4-5-251128", "prompt": "a hat", "size": "2K", "watermark": False,
                    "sequential_image_generation": "disabled"}


async def test_fifteen_images_or_a_mask_never_reach_ark(gateway_client, fake_upstream, ark):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(*IMAGES), headers=H)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "image"
    resp = await gateway_client.post(EDITS, data=edit_form(IMAGES[0], mask=PNG_1X1), headers=H)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "mask"
    resp = await gateway_client.post(EDITS, data=edit_form(IMAGES[0], watermark="maybe"), headers=H)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "watermark"
    assert fake_upstream.requests == []
