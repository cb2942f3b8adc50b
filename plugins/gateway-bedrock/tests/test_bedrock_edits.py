"""images.edits to Bedrock through the real openai SDK, against the fake bedrock-runtime that
verifies the SigV4 signature and each task's body as the Bedrock user guide documents it."""
from __future__ import annotations

import base64

import openai
import pytest
from gateway_bedrock.testing import ACCESS_KEY, SECRET_KEY, mask_png, path_of, png, read_png

NOVA = "amazon.nova-canvas-v1:0"
TITAN1 = "amazon.titan-image-generator-v1"
TITAN2 = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"
INPAINT = "stability.stable-image-inpaint-v1:0"
SIGV4 = {"x-portkey-provider": "bedrock", "x-portkey-aws-access-key-id": ACCESS_KEY,
         "x-portkey-aws-secret-access-key": SECRET_KEY}
#: Distinct opaque 8x8 pictures, and a mask of the middle: black (Titan, Nova) or white (Stability) there.
IMAGES = [png(8, 8, lambda x, y, k=k: (30 * k, 8 * x, 8 * y)) for k in range(1, 4)]
MASK = mask_png(8, 8, (2, 2, 6, 6))
WHITE_MASK = mask_png(8, 8, (2, 2, 6, 6), inside=(255, 255, 255), outside=(0, 0, 0))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sdk(server, **headers: str) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="placeholder", max_retries=0,
                              default_headers={**SIGV4, **headers})


def files(*blobs: bytes) -> list[tuple[str, bytes, str]]:
    return [(f"in{i}.png", blob, "image/png") for i, blob in enumerate(blobs)]


def returned(result) -> list[bytes]:  # noqa: ANN001
    return [base64.b64decode(d.b64_json) for d in result.data]


async def test_a_mask_is_nova_inpainting_signed_and_answered(gateway_server, bedrock, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model=NOVA, image=("door.png", IMAGES[0], "image/png"),
                                          mask=("m.png", MASK), prompt="a red door", n=2, response_format="b64_json",
                                          extra_body={"negative_prompt": "rust", "seed": 11})
    rec = fake_upstream.last
    assert rec.path == path_of(NOVA)
    assert rec.json() == {
        "taskType": "INPAINTING",
        "inPaintingParams": {"text": "a red door", "negativeText": "rust", "image": b64(IMAGES[0]),
                             "maskImage": b64(MASK)},
        "imageGenerationConfig": {"numberOfImages": 2, "seed": 11}}
    [signed] = bedrock.signed  # the fake recomputed the signature over these very bytes
    assert signed.signed_headers == ["accept", "content-type", "host", "x-amz-date"]
    assert returned(result) == bedrock.served[-1]


async def test_an_openai_mask_becomes_novas_black_where_the_image_changes(gateway_server, bedrock, fake_upstream):  # noqa: ANN001
    # OpenAI's convention: transparent where the image changes (the middle), opaque elsewhere.
    openai_mask = png(8, 8, lambda x, y: (0, 0, 0, 0 if 2 <= x < 6 and 2 <= y < 6 else 255))
    async with sdk(gateway_server) as client:
        await client.images.edit(model=NOVA, image=("door.png", IMAGES[0], "image/png"),
                                 mask=("m.png", openai_mask), prompt="a red door")
    sent = base64.b64decode(fake_upstream.last.json()["inPaintingParams"]["maskImage"])
    width, height, rows = read_png(sent)
    assert (width, height) == (8, 8)
    assert [[px[:3] for px in row] for row in rows] == [
        [(0, 0, 0) if 2 <= x < 6 and 2 <= y < 6 else (255, 255, 255) for x in range(8)] for y in range(8)]


async def test_several_images_are_a_titan_variation_in_the_order_sent(gateway_server, bedrock, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model=TITAN2, image=files(*IMAGES), prompt="the same room at night",
                                          size="1280x768", quality="standard", response_format="b64_json",
                                          extra_body={"similarity_strength": 0.9, "cfg_scale": 8})
    assert fake_upstream.last.json() == {
        "taskType": "IMAGE_VARIATION",
        "imageVariationParams": {"text": "the same room at night", "images": [b64(i) for i in IMAGES],
                                 "similarityStrength": 0.9},
        "imageGenerationConfig": {"numberOfImages": 1, "width": 1280, "height": 768, "quality": "standard",
                                  "cfgScale": 8.0}}
    assert returned(result) == bedrock.served[-1]


async def test_outpainting_mode_and_a_mask_make_titan_outpainting(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        await client.images.edit(model=TITAN1, image=("a.png", IMAGES[1], "image/png"), mask=("m.png", MASK),
                                 prompt="a wider beach", extra_body={"outpainting_mode": "PRECISE"})
    assert fake_upstream.last.json() == {
        "taskType": "OUTPAINTING",
        "outPaintingParams": {"text": "a wider beach", "image": b64(IMAGES[1]), "maskImage": b64(MASK),
                              "outPaintingMode": "PRECISE"},
        "imageGenerationConfig": {"numberOfImages": 1}}


async def test_sd35_image_to_image_drops_the_size_and_says_so(gateway_server, bedrock, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        raw = await client.images.with_raw_response.edit(
            model="us." + SD35, image=("a.png", IMAGES[2], "image/png"), prompt="as a watercolour", size="1024x1024",
            response_format="b64_json", extra_body={"strength": 0.35, "seed": 9, "output_format": "png"})
    assert raw.headers["x-portkey-adjusted-params"] == "size=1024x1024->(dropped)"
    assert fake_upstream.last.path == path_of("us." + SD35)
    assert fake_upstream.last.json() == {"prompt": "as a watercolour", "mode": "image-to-image",
                                         "image": b64(IMAGES[2]), "strength": 0.35, "seed": 9, "output_format": "png"}
    assert returned(raw.parse()) == bedrock.served[-1]


async def test_stable_image_inpaint_takes_the_image_and_its_mask(gateway_server, bedrock, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model=INPAINT, image=("a.png", IMAGES[0], "image/png"),
                                          mask=("m.png", WHITE_MASK), prompt="a cat on the sofa",
                                          response_format="b64_json", extra_body={"grow_mask": 3})
    assert fake_upstream.last.json() == {"prompt": "a cat on the sofa", "image": b64(IMAGES[0]),
                                         "mask": b64(WHITE_MASK), "grow_mask": 3}
    assert returned(result) == bedrock.served[-1]


async def test_n_beyond_five_is_two_calls_with_advancing_seeds(gateway_server, bedrock, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(model=NOVA, image=files(IMAGES[0]), prompt="a garden", n=7,
                                          response_format="b64_json", extra_body={"seed": 40})
    configs = sorted((r.json()["imageGenerationConfig"] for r in fake_upstream.requests), key=lambda c: c["seed"])
    assert configs == [{"numberOfImages": 5, "seed": 40}, {"numberOfImages": 2, "seed": 45}]
    assert len(result.data) == 7 and len(bedrock.signed) == 2


@pytest.mark.parametrize(
    ("model", "image", "mask", "says"),
    [
        pytest.param(NOVA, IMAGES[0], mask_png(8, 8, (2, 2, 6, 6), inside=(128, 128, 128)),
                     "only pure black and pure white pixels", id="grey-mask"),
        pytest.param(NOVA, IMAGES[0], mask_png(4, 4, (1, 1, 3, 3)), "must be the size of the image",
                     id="mask-of-another-size"),
        pytest.param(NOVA, png(8, 8, lambda x, y: (9, 9, 9, 0 if x < 2 else 255)), MASK,
                     "transparent or translucent pixels", id="nova-input-with-transparency"),
    ],
)
async def test_bedrocks_own_refusals_come_back_as_its_validation_errors(gateway_server, fake_upstream,  # noqa: ANN001
                                                                       model, image, mask, says):
    async with sdk(gateway_server) as client:
        with pytest.raises(openai.BadRequestError) as e:
            await client.images.edit(model=model, image=("a.png", image, "image/png"), mask=("m.png", mask),
                                     prompt="a red door")
    err = e.value.body
    assert err["type"] == "ValidationException" and says in err["message"]
    assert len(fake_upstream.requests) == 1  # a 400 is not retried


@pytest.mark.parametrize(
    ("model", "blobs", "mask", "extra", "param"),
    [
        pytest.param("stability.stable-diffusion-xl-v1", IMAGES[:1], None, {}, "model", id="sdxl-cannot-edit"),
        pytest.param(SD35, IMAGES[:1], MASK, {"strength": 0.5}, "mask", id="sd3-takes-no-mask"),
        pytest.param(SD35, IMAGES[:1], None, {}, "strength", id="sd3-needs-strength"),
        pytest.param(NOVA, IMAGES[:2], MASK, {}, "image", id="inpainting-takes-one-image"),
        pytest.param(TITAN2, IMAGES[:1], None, {"outpainting_mode": "DEFAULT"}, "mask", id="outpainting-needs-mask"),
    ],
)
async def test_what_bedrock_cannot_do_is_a_400_before_any_call(gateway_server, fake_upstream,  # noqa: ANN001
                                                              model, blobs, mask, extra, param):
    async with sdk(gateway_server) as client:
        with pytest.raises(openai.BadRequestError) as e:
            await client.images.edit(model=model, image=files(*blobs), mask=("m.png", mask) if mask else openai.omit,
                                     prompt="a red door", extra_body=extra)
    assert e.value.body["param"] == param
    assert fake_upstream.requests == []


async def test_a_refused_prompt_is_a_content_policy_violation(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        with pytest.raises(openai.BadRequestError) as e:
            await client.images.edit(model=NOVA, image=files(IMAGES[0]), prompt="something forbidden")
    assert e.value.body["code"] == "content_policy_violation"
