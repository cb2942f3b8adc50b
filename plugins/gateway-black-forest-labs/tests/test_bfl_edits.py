"""images.edits through Black Forest Labs: the openai SDK and raw forms against the gateway and the
fake, asserting the exact body each edit model received (image fields, base64 decoding to the
uploaded bytes, order), Fill's mask, and every refusal before an upstream call."""
from __future__ import annotations

import base64
import io

import aiohttp
import openai
import pytest
from PIL import Image

from gateway.testing import PNG_1X1, edit_form, make_attempt
from gateway.sdk import IMAGES_EDITS
from gateway_black_forest_labs.provider import BlackForestLabsProvider as BFL
from gateway_black_forest_labs.testing import install

KEY = "bfl-test-key-0123456789"
H = {"x-portkey-provider": "black-forest-labs", "Authorization": f"Bearer {KEY}"}
EDITS = "/v1/images/edits"
#: Real PNGs made distinct by trailing marker bytes, so identity and order show.
IMAGES = [PNG_1X1 + bytes([i]) * 64 for i in range(5)]


def sdk(server) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=KEY, max_retries=0,
                              default_headers={"x-portkey-provider": "black-forest-labs"})


def files(*blobs: bytes) -> list[tuple[str, io.BytesIO, str]]:
    return [(f"in{i}.png", io.BytesIO(b), "image/png") for i, b in enumerate(blobs)]


def png_of(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def form(*images: bytes, mask: bytes | None = None, **fields: str) -> aiohttp.FormData:
    return edit_form(*images, mask=mask, **{"prompt": "add a hat", **fields})


async def test_flux2_takes_the_images_in_order_as_input_image_fields(gateway_server, fake_upstream,  # noqa: ANN001
                                                                     sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model="flux-2-pro", image=files(*IMAGES[:3]), prompt="put them together",
                                           size="1024x1536", n=2, response_format="b64_json",
                                           extra_body={"seed": "7", "output_format": "png"})
    assert len(result.data) == 2
    creates = bfl.creates()
    assert len(creates) == 2 and {c.path for c in creates} == {"/v1/flux-2-pro"}
    b64 = [base64.b64encode(i).decode() for i in IMAGES[:3]]
    bodies = sorted((c.json() for c in creates), key=lambda body: body["seed"])
    assert bodies[0] == {"prompt": "put them together", "width": 1024, "height": 1536, "seed": 7,
                         "output_format": "png", "input_image": b64[0], "input_image_2": b64[1],
                         "input_image_3": b64[2]}
    assert bodies[1]["seed"] == 8  # the form's text seed moved on for the second task
    for task in bfl.tasks.values():
        assert task.inputs == {"input_image": IMAGES[0], "input_image_2": IMAGES[1], "input_image_3": IMAGES[2]}
        assert task.body["seed"] in (7, 8)


async def test_the_default_edit_model_is_flux2_pro(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    resp = await gateway_client.post(EDITS, data=form(IMAGES[0]), headers=H)
    assert resp.status == 200, await resp.text()
    [create] = bfl.creates()
    assert create.path == "/v1/flux-2-pro"
    assert create.json() == {"prompt": "add a hat", "input_image": base64.b64encode(IMAGES[0]).decode()}


async def test_kontext_takes_an_aspect_ratio_and_typed_natives(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    body = form(*IMAGES[:2], model="flux-kontext-max", size="1536x1024", prompt_upsampling="true",
                safety_tolerance="2", response_format="url")
    resp = await gateway_client.post(EDITS, data=body, headers=H)
    assert resp.status == 200, await resp.text()
    [create] = bfl.creates()
    assert create.path == "/v1/flux-kontext-max"
    sent = create.json()
    assert {k: v for k, v in sent.items() if not k.startswith("input_image")} == {
        "prompt": "add a hat", "aspect_ratio": "3:2", "prompt_upsampling": True, "safety_tolerance": 2}
    assert [k for k in sent if k.startswith("input_image")] == ["input_image", "input_image_2"]
    # Kontext answers PNG by default: the stored image keeps its type.
    url = (await resp.json())["data"][0]["url"]
    image = await gateway_client.get("/" + url.split("://", 1)[1].partition("/")[2])
    assert image.headers["Content-Type"] == "image/png" and await image.read() == bfl.served[0][0]


async def test_fill_takes_the_image_and_its_mask_converted_to_white(gateway_server, fake_upstream,  # noqa: ANN001
                                                                     sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    source = png_of(Image.new("RGB", (2, 1), (10, 20, 30)))
    openai_mask = Image.new("RGBA", (2, 1), (0, 0, 0, 255))
    openai_mask.putpixel((0, 0), (0, 0, 0, 0))  # OpenAI: transparent where the image changes
    async with sdk(gateway_server) as client:
        raw = await client.images.with_raw_response.edit(
            model="flux-pro-1.0-fill", image=("in.png", source, "image/png"),
            mask=("m.png", png_of(openai_mask), "image/png"), prompt="a red door", size="1024x1024",
            extra_body={"steps": "30", "guidance": "2.5"})
    assert raw.headers["x-portkey-adjusted-params"] == "size=1024x1024->(dropped)"
    [create] = bfl.creates()
    sent = create.json()
    assert create.path == "/v1/flux-pro-1.0-fill"
    assert {k: v for k, v in sent.items() if k not in ("image", "mask")} == {"prompt": "a red door", "steps": 30,
                                                                              "guidance": 2.5}
    [task] = bfl.tasks.values()
    assert task.inputs["image"] == source
    with Image.open(io.BytesIO(task.inputs["mask"])) as mask:
        assert mask.mode == "L" and [mask.getpixel((x, 0)) for x in range(2)] == [255, 0]


@pytest.mark.parametrize(("fields", "images", "mask", "param"), [
    ({"model": "flux-2-klein-4b"}, IMAGES[:5], None, "image"),       # 4 at most
    ({"model": "flux-kontext-pro"}, IMAGES[:5], None, "image"),      # 4 at most
    ({"model": "flux-2-pro"}, IMAGES[:1], PNG_1X1, "mask"),          # no mask
    ({"model": "flux-pro-1.1"}, IMAGES[:1], None, "model"),          # does not edit
    ({"model": "flux-2-pro", "seed": "seven"}, IMAGES[:1], None, "seed"),
])
async def test_refused_before_any_upstream_call(gateway_client, fake_upstream, fields, images, mask,  # noqa: ANN001
                                                param):  # noqa: ANN001
    install(fake_upstream)
    resp = await gateway_client.post(EDITS, data=form(*images, mask=mask, **fields), headers=H)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["param"] == param
    assert fake_upstream.requests == []


async def test_fill_refuses_a_size_in_strict_mode(gateway_client, fake_upstream):  # noqa: ANN001
    install(fake_upstream)
    resp = await gateway_client.post(EDITS, data=form(IMAGES[0], model="flux-pro-1.0-fill", size="512x512"),
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "size" and "input image's size" in err["message"]
    assert fake_upstream.requests == []


async def test_a_text_image_field_is_dropped_leniently_and_refused_strictly(  # noqa: ANN201
        gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    body = form(IMAGES[0], model="flux-2-pro", input_image="https://example.com/x.png")
    resp = await gateway_client.post(EDITS, data=body, headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "input_image"
    assert fake_upstream.requests == []
    body = form(IMAGES[0], model="flux-2-pro", input_image="https://example.com/x.png")
    resp = await gateway_client.post(EDITS, data=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "input_image=(dropped)"
    assert bfl.creates()[0].json()["input_image"] == base64.b64encode(IMAGES[0]).decode()


def test_edit_bodies_in_process():
    attempt = make_attempt(BFL, endpoint=IMAGES_EDITS, body={"prompt": "swap", "model": "flux-2-klein-9b"},
                           images=IMAGES[:4])
    req = attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    assert req.url == "https://api.bfl.ai/v1/flux-2-klein-9b" and req.headers["x-key"] == "test-key"
    body = req.body.decode()
    assert '"input_image_4"' in body and '"input_image_5"' not in body
