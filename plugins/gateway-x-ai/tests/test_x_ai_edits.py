"""images.edits through xAI end to end: the real openai SDK against the gateway and the fake of
xAI's JSON edits endpoint, asserting the exact body sent and the refusals before any upstream call."""
from __future__ import annotations

import base64

import openai

from gateway.testing import PNG_1X1, edit_form
from gateway_x_ai.testing import EDITS, KEY, REFUSED, data_uri_bytes

H = {"x-portkey-provider": "x-ai", "Authorization": f"Bearer {KEY}"}
#: Real PNGs made distinct by trailing bytes, so identity and order show.
IMAGES = [PNG_1X1 + bytes([i]) * 32 for i in range(4)]


def sdk(server) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=KEY, max_retries=0,
                              default_headers={"x-portkey-provider": "x-ai"})


async def test_one_image_edit_through_the_openai_sdk(gateway_server, fake_upstream, xai):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model="grok-imagine-image", image=("a.png", IMAGES[1], "image/png"),
                                          prompt="add a hat", n=2, response_format="b64_json")
    assert [base64.b64decode(d.b64_json) for d in result.data] == xai.served
    sent = fake_upstream.last
    assert sent.path == EDITS and sent.headers["Content-Type"] == "application/json"
    body = sent.json()
    assert data_uri_bytes(body.pop("image")["url"]) == IMAGES[1]
    assert body == {"prompt": "add a hat", "model": "grok-imagine-image", "n": 2, "response_format": "b64_json"}


async def test_three_images_go_in_order_with_the_ratio(gateway_server, fake_upstream, xai):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model="grok-imagine-image-2.0", prompt="<IMAGE_0> meets <IMAGE_1>",
                                          image=[(f"{i}.png", IMAGES[i], "image/png") for i in range(3)],
                                          size="1024x1536", quality="low", response_format="url")
    assert result.data[0].url.startswith(fake_upstream.url + "/xai-imgen/")
    body = fake_upstream.last.json()
    assert [data_uri_bytes(s["url"]) for s in body.pop("images")] == IMAGES[:3]
    assert body == {"prompt": "<IMAGE_0> meets <IMAGE_1>", "model": "grok-imagine-image-2.0",
                    "response_format": "url", "quality": "low", "aspect_ratio": "2:3", "resolution": "1k"}


async def test_one_image_edit_drops_size_or_refuses_it_strictly(gateway_client, fake_upstream, xai):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(IMAGES[0], size="1024x1024"), headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "size=1024x1024->(dropped)"
    assert "aspect_ratio" not in fake_upstream.last.json()
    before = len(fake_upstream.requests)
    resp = await gateway_client.post(EDITS, data=edit_form(IMAGES[0], size="1024x1024"),
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "size"
    assert len(fake_upstream.requests) == before


async def test_four_images_or_a_mask_never_reach_xai(gateway_client, fake_upstream, xai):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(*IMAGES), headers=H)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "image"
    resp = await gateway_client.post(EDITS, data=edit_form(IMAGES[0], mask=PNG_1X1), headers=H)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "mask"
    assert fake_upstream.requests == []


async def test_refused_edit_carries_the_policy_code(gateway_client, xai):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(IMAGES[0], prompt=f"make it a {REFUSED}"), headers=H)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"
