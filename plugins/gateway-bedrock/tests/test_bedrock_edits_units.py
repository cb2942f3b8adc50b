"""The Bedrock edit translations in process (no server): ``make_attempt(..., endpoint=IMAGES_EDITS)``."""
from __future__ import annotations

import base64

import msgspec
import pytest
from gateway_bedrock.provider import BedrockProvider
from gateway_bedrock.testing import ACCESS_KEY, SECRET_KEY, mask_png, png

from gateway.sdk import IMAGES_EDITS, BadParam, MalformedAnswer
from gateway.testing import answer, make_attempt

NOVA = "amazon.nova-canvas-v1:0"
TITAN2 = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"
INPAINT = "stability.stable-image-inpaint-v1:0"
#: Distinct opaque 4x4 pictures, and a mask changing their middle (black: Titan and Nova change it).
IMAGES = [png(4, 4, lambda x, y, k=k: (40 * k, 16 * x, 16 * y)) for k in range(1, 7)]
MASK = mask_png(4, 4, (1, 1, 3, 3))
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(14)
PROMPT = "a lighthouse at dusk"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def edit(body: dict[str, object], images: list[bytes], mask: bytes | None = None, **kw: object):  # noqa: ANN201
    return make_attempt(BedrockProvider, endpoint=IMAGES_EDITS, body=body, images=images, mask=mask, **kw)


def sent(attempt, part: int = 0) -> dict[str, object]:  # noqa: ANN001
    req = attempt.provider.build_edit(attempt, attempt.plan.parts[part])
    return msgspec.json.decode(req.body)


def test_a_mask_makes_nova_inpainting_with_text_fields_read_as_numbers():
    # A form sends every value as text: "7" and "6.5" go as numbers.
    attempt = edit({"model": NOVA, "n": 2, "quality": "hd", "negative_prompt": "blur", "seed": "7",
                    "cfg_scale": "6.5"}, [IMAGES[0]], MASK)
    req = attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    assert req.url == "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-canvas-v1:0/invoke"
    assert (req.headers["Content-Type"], req.headers["Accept"]) == ("application/json", "application/json")
    assert "Authorization" not in req.headers  # authorize() signs, last
    assert msgspec.json.decode(req.body) == {
        "taskType": "INPAINTING",
        "inPaintingParams": {"text": PROMPT, "negativeText": "blur", "image": b64(IMAGES[0]), "maskImage": b64(MASK)},
        "imageGenerationConfig": {"numberOfImages": 2, "quality": "premium", "cfgScale": 6.5, "seed": 7}}
    assert attempt.plan.adjusted == ["quality=hd->premium"]


def test_images_without_a_mask_make_a_variation_in_order():
    attempt = edit({"model": TITAN2, "size": "1152x640", "similarity_strength": "0.8", "negativeText": "fog"},
                   IMAGES[:3])
    assert sent(attempt) == {
        "taskType": "IMAGE_VARIATION",
        "imageVariationParams": {"text": PROMPT, "negativeText": "fog", "images": [b64(i) for i in IMAGES[:3]],
                                 "similarityStrength": 0.8},
        "imageGenerationConfig": {"numberOfImages": 1, "width": 1152, "height": 640}}


def test_outpainting_mode_makes_outpainting_and_a_mask_prompt_stands_for_the_mask():
    attempt = edit({"model": NOVA, "outpainting_mode": "PRECISE", "mask_prompt": "the boat"}, [IMAGES[0]])
    assert sent(attempt) == {
        "taskType": "OUTPAINTING",
        "outPaintingParams": {"text": PROMPT, "image": b64(IMAGES[0]), "maskPrompt": "the boat",
                              "outPaintingMode": "PRECISE"},
        "imageGenerationConfig": {"numberOfImages": 1}}


def test_inpainting_keeps_the_input_size_a_size_is_dropped_or_refused():
    attempt = edit({"model": NOVA, "size": "1000x500"}, [IMAGES[0]], MASK)
    assert sent(attempt)["imageGenerationConfig"] == {"numberOfImages": 1}
    # The size mapping negotiation noted is replaced by the drop.
    assert attempt.plan.adjusted == ["size=1000x500->(dropped)"]
    attempt = edit({"model": NOVA, "size": "1024x1024"}, [IMAGES[0]], MASK, headers={"x-portkey-strict-params": "true"})
    with pytest.raises(BadParam) as e:
        sent(attempt)
    assert e.value.param == "size" and "keeps the input image's size" in e.value.message


def test_a_native_of_another_task_is_dropped_or_refused():
    attempt = edit({"model": NOVA, "similarity_strength": "0.5"}, [IMAGES[0]], MASK)
    assert "similarityStrength" not in sent(attempt)["inPaintingParams"]
    assert attempt.plan.adjusted == ["similarity_strength=(dropped)"]
    attempt = edit({"model": NOVA, "similarity_strength": "0.5"}, [IMAGES[0]], MASK,
                   headers={"x-portkey-strict-params": "true"})
    with pytest.raises(BadParam) as e:
        sent(attempt)
    assert e.value.param == "similarity_strength"


@pytest.mark.parametrize("seed", ["5", 5])
def test_each_further_call_advances_the_seed_once(seed):  # noqa: ANN001
    # Seven images are two Nova calls (five, two); a seed sent as text or as a number advances by five.
    attempt = edit({"model": NOVA, "n": 7, "seed": seed}, [IMAGES[0]])
    configs = [sent(attempt, i)["imageGenerationConfig"] for i in range(2)]
    assert [(c["numberOfImages"], c["seed"]) for c in configs] == [(5, 5), (2, 10)]


def test_sd3_image_to_image_takes_strength_and_keeps_the_input_size():
    attempt = edit({"model": SD35, "size": "auto", "strength": "0.6", "negative_prompt": "rain", "seed": "3",
                    "output_format": "jpeg"}, [IMAGES[0]])
    assert sent(attempt) == {"prompt": PROMPT, "mode": "image-to-image", "image": b64(IMAGES[0]), "strength": 0.6,
                             "negative_prompt": "rain", "seed": 3, "output_format": "jpeg"}
    assert attempt.plan.adjusted == []  # "auto" is what happens: the input image sets the size


def test_stable_image_inpaint_with_and_without_a_mask():
    attempt = edit({"model": INPAINT, "grow_mask": "8", "negative_prompt": "text"}, [IMAGES[0]], MASK)
    assert sent(attempt) == {"prompt": PROMPT, "image": b64(IMAGES[0]), "mask": b64(MASK), "grow_mask": 8,
                             "negative_prompt": "text"}
    attempt = edit({"model": INPAINT}, [IMAGES[1]])
    assert sent(attempt) == {"prompt": PROMPT, "image": b64(IMAGES[1])}


@pytest.mark.parametrize(
    ("body", "images", "mask", "param"),
    [
        pytest.param({"model": NOVA}, IMAGES[:2], MASK, "image", id="inpainting-takes-one-image"),
        pytest.param({"model": NOVA, "mask_prompt": "sky"}, IMAGES[:1], MASK, "mask_prompt", id="mask-and-prompt"),
        pytest.param({"model": NOVA, "outpainting_mode": "DEFAULT"}, IMAGES[:1], None, "mask",
                     id="outpainting-needs-a-mask"),
        pytest.param({"model": TITAN2}, [WEBP], None, "image", id="amazon-takes-png-or-jpeg"),
        pytest.param({"model": NOVA}, IMAGES[:1], WEBP, "mask", id="amazon-mask-png-or-jpeg"),
        pytest.param({"model": NOVA, "seed": "seven"}, IMAGES[:1], None, "seed", id="seed-not-a-number"),
        pytest.param({"model": TITAN2, "cfg_scale": "nan"}, IMAGES[:1], None, "cfg_scale", id="cfg-not-finite"),
        pytest.param({"model": SD35}, IMAGES[:1], None, "strength", id="sd3-needs-strength"),
        pytest.param({"model": SD35, "strength": "0.5"}, IMAGES[:1], MASK, "mask", id="sd3-takes-no-mask"),
        pytest.param({"model": SD35, "strength": "0.5"}, IMAGES[:2], None, "image", id="sd3-takes-one-image"),
        pytest.param({"model": NOVA}, IMAGES[:6], None, "image", id="variation-takes-five"),
        pytest.param({"model": "stability.stable-diffusion-xl-v1"}, IMAGES[:1], None, "model", id="sdxl-cannot"),
        pytest.param({"model": "stability.stable-image-ultra-v1:1"}, IMAGES[:1], None, "model", id="ultra-cannot"),
    ],
)
def test_what_the_model_cannot_take_is_a_400_before_any_call(body, images, mask, param):  # noqa: ANN001
    with pytest.raises(BadParam) as e:
        sent(edit(body, images, mask))
    assert e.value.param == param


@pytest.mark.parametrize("model", ["eu.amazon.nova-canvas-v1:0", "apac.amazon.titan-image-generator-v1",
                                   "arn:aws:bedrock:us-east-1:1:inference-profile/us.amazon.nova-canvas-v1:0",
                                   "amazon.nova-canvas-v2:0"])
def test_prefixed_ids_arns_and_new_versions_edit_as_their_family(model):  # noqa: ANN001
    attempt = edit({"model": model}, [IMAGES[0]], MASK)
    assert sent(attempt)["taskType"] == "INPAINTING"
    assert attempt.provider.build_edit(attempt, attempt.plan.parts[0]).url.endswith(
        "/model/" + model.replace("/", "%2F") + "/invoke")


def test_an_application_profile_edits_as_the_model_it_names():
    arn = "arn:aws:bedrock:us-east-1:1:application-inference-profile/a1b2"
    named = {"x-portkey-aws-bedrock-model": SD35}
    attempt = edit({"model": arn, "strength": "0.4"}, [IMAGES[0]], headers=named)
    assert sent(attempt)["mode"] == "image-to-image"
    # Negotiation could not look the ARN up: the model's input limits still hold.
    for images, mask, param in (([IMAGES[0]], MASK, "mask"), (IMAGES[:2], None, "image")):
        with pytest.raises(BadParam) as e:
            sent(edit({"model": arn, "strength": "0.4"}, images, mask, headers=named))
        assert e.value.param == param
    with pytest.raises(BadParam) as e:
        sent(edit({"model": arn}, [IMAGES[0]]))
    assert e.value.param == "model"


async def test_authorize_signs_the_edit_body():
    attempt = edit({"model": NOVA}, [IMAGES[0]], MASK,
                   options={"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}, api_key=None)
    req = attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    await attempt.provider.authorize(attempt, req)
    assert req.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "X-Amz-Date" in req.headers


def test_the_edit_answer_is_read_as_a_generation_answer():
    attempt = edit({"model": INPAINT, "output_format": "jpeg"}, [IMAGES[0]])
    part = attempt.plan.parts[0]
    result = attempt.provider.parse_generation(
        attempt, part, answer(200, {"seeds": [1], "finish_reasons": [None], "images": [b64(IMAGES[2])]}))
    assert [(base64.b64decode(i.b64), i.content_type) for i in result.images] == [(IMAGES[2], "image/jpeg")]
    with pytest.raises(MalformedAnswer):
        attempt.provider.parse_generation(attempt, part, answer(200, {"finish_reasons": [None]}))
