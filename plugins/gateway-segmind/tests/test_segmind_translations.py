"""The Segmind provider's translations in process (no server): requests built, answers read."""
from __future__ import annotations

import base64

import msgspec
import pytest

from gateway.sdk import PROXY, BadParam, ContentPolicyViolation, MalformedAnswer, ProviderError
from gateway.testing import answer, make_attempt
from gateway_segmind.provider import SegmindProvider
from gateway_segmind.testing import JPEG_1X1

B64 = base64.b64encode(JPEG_1X1).decode()


def test_n3_is_one_call_with_samples_and_the_key_in_x_api_key():
    attempt = make_attempt(SegmindProvider, body={"prompt": "a fox", "n": 3, "size": "1024x768", "steps": 30},
                           api_key="SG_unit")
    [part] = attempt.plan.parts
    req = attempt.provider.build_generation(attempt, part)
    assert (req.method, req.url) == ("POST", "https://api.segmind.com/v1/sdxl1.0-txt2img")
    assert msgspec.json.decode(req.body) == {"prompt": "a fox", "samples": 3, "img_width": 1024, "img_height": 768,
                                             "num_inference_steps": 30, "base64": True}
    assert req.headers["x-api-key"] == "SG_unit" and "Authorization" not in req.headers
    assert req.headers["Content-Type"] == "application/json"


def test_n_over_the_samples_limit_is_split_with_seeds_apart():
    attempt = make_attempt(SegmindProvider, body={"prompt": "a fox", "model": "ssd-1b", "n": 6, "seed": 100})
    bodies = [msgspec.json.decode(attempt.provider.build_generation(attempt, part).body)
              for part in attempt.plan.parts]
    assert [(b["samples"], b["seed"]) for b in bodies] == [(4, 100), (2, 104)]


def test_a_custom_host_is_where_the_request_goes():
    attempt = make_attempt(SegmindProvider, body={"prompt": "a fox", "model": "flux-schnell"},
                           custom_host="https://segmind.internal.example/v1")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url == "https://segmind.internal.example/v1/flux-schnell"
    assert msgspec.json.decode(req.body) == {"prompt": "a fox", "samples": 1}


def test_a_model_that_is_not_a_slug_is_a_bad_param():
    attempt = make_attempt(SegmindProvider, body={"prompt": "a fox", "model": "../get-user-credits"})
    with pytest.raises(BadParam) as info:
        attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert info.value.param == "model"


def test_parse_a_list_of_base64_images():
    attempt = make_attempt(SegmindProvider, body={"prompt": "a fox", "n": 2})
    part = attempt.plan.parts[0]
    result = attempt.provider.parse_generation(attempt, part, answer(200, {"image": [B64, B64], "status": "Success"}))
    assert [(img.b64, img.data) for img in result.images] == [(B64, JPEG_1X1)] * 2


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/octet-stream"])
def test_parse_the_image_itself(content_type):  # noqa: ANN001
    attempt = make_attempt(SegmindProvider, body={"prompt": "a fox", "model": "flux-schnell"})
    result = attempt.provider.parse_generation(attempt, attempt.plan.parts[0],
                                               answer(200, JPEG_1X1, content_type=content_type))
    [image] = result.images
    assert (image.data, image.content_type) == (JPEG_1X1, "image/jpeg")


def test_parse_refuses_a_wrong_count_and_reads_a_refusal():
    attempt = make_attempt(SegmindProvider, body={"prompt": "a fox", "n": 2})
    part = attempt.plan.parts[0]
    with pytest.raises(MalformedAnswer, match="asked for 2 images, got 1"):
        attempt.provider.parse_generation(attempt, part, answer(200, {"image": B64}))
    with pytest.raises(ContentPolicyViolation):
        attempt.provider.parse_generation(attempt, part, answer(200, {"error": "Image blocked by the safety checker"}))


def test_upstream_error_keeps_status_code_and_headers():
    provider = make_attempt(SegmindProvider).provider
    err = provider.upstream_error(answer(406, {"error": "Not enough credits"}, {"x-remaining-credits": "0"}))
    assert isinstance(err, ProviderError)
    assert (err.status, err.code, err.message) == (406, "insufficient_credits", "segmind error: Not enough credits")
    assert err.upstream_headers["x-remaining-credits"] == "0"


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("/sdxl1.0-txt2img", "https://api.segmind.com/v1/sdxl1.0-txt2img?x=1"),
        ("/v2/flux-schnell", "https://api.segmind.com/v2/flux-schnell?x=1"),
    ],
)
def test_passthrough_request(path, url):  # noqa: ANN001
    attempt = make_attempt(SegmindProvider, endpoint=PROXY, path=path, query_string="x=1", body=b'{"prompt": "a"}',
                           headers={"Content-Type": "application/json", "x-portkey-provider": "segmind"},
                           api_key="SG_unit")
    req = attempt.provider.build_proxy(attempt)
    assert (req.method, req.url, req.body) == ("POST", url, b'{"prompt": "a"}')
    assert req.headers["x-api-key"] == "SG_unit"
    assert not [name for name in req.headers if name.lower().startswith("x-portkey-")]
