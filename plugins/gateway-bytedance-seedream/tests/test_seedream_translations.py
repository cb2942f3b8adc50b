"""The Seedream translations in process (no server): bodies, sizes, regions, edits, answers, errors."""
from __future__ import annotations

import base64

import msgspec
import pytest

from gateway.sdk import CONTENT_POLICY, IMAGES_EDITS, PROXY, BadParam, BadRequest, ContentPolicyViolation, \
    MalformedAnswer, ProviderError
from gateway.testing import PNG_1X1, answer, image_url_allowed, make_attempt
from gateway_bytedance_seedream import SeedreamProvider
from gateway_bytedance_seedream.provider import refused

M45, M40, M50 = "seedream-4-5-251128", "seedream-4-0-250828", "seedream-5-0-260128"
STRICT = {"x-portkey-strict-params": "true"}


def bodies(attempt) -> list[dict]:  # noqa: ANN001
    return [msgspec.json.decode(attempt.provider.build_generation(attempt, part).body) for part in attempt.plan.parts]


def one(**body) -> tuple[object, dict]:  # noqa: ANN003
    attempt = make_attempt(SeedreamProvider, body={"prompt": "a fox", **body})
    [sent] = bodies(attempt)
    return attempt, sent


# -- sizes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "size", "sent"), [
    (M45, "1024x1024", "1920x1920"),      # under 2560x1440 pixels: scaled up, shape kept
    (M45, "1024x1536", "1568x2352"),
    (M45, "2048x2048", "2048x2048"),
    (M40, "1024x1024", "1024x1024"),      # 4.0 takes from 1280x720 pixels
    (M40, "512x512", "960x960"),
    (M50, "4096x4096", "3225x3225"),      # 5.0: at most 3072x3072x1.1025 pixels
    (M45, "8000x100", "7680x480"),        # at most 16:1, then up to the pixel floor
])
def test_size_is_fitted_into_the_models_pixel_range(model: str, size: str, sent: str) -> None:
    attempt, body = one(model=model, size=size)
    assert body["size"] == sent
    assert attempt.plan.adjusted == ([] if size == sent else [f"size={size}->{sent}"])
    w, h = (int(x) for x in sent.split("x"))
    assert max(w, h) <= 16 * min(w, h)


def test_small_size_is_refused_strictly() -> None:
    with pytest.raises(BadParam) as err:
        make_attempt(SeedreamProvider, body={"prompt": "a fox", "model": M45, "size": "1024x1024"}, headers=STRICT)
    assert err.value.param == "size"


def test_auto_and_no_size_send_none() -> None:
    assert "size" not in one(size="auto")[1]
    assert one(model=M45)[1] == {"model": M45, "prompt": "a fox"}


def test_quality_carries_the_resolution_tier() -> None:
    assert one(model=M45, quality="4K")[1]["size"] == "4K"
    assert one(model=M40, quality="1K")[1]["size"] == "1K"
    attempt, body = one(model=M45, quality="1K")  # 4.5 has no 1K tier
    assert "size" not in body and attempt.plan.adjusted == ["quality=1K->(dropped)"]
    attempt, body = one(model=M45, quality="high")
    assert "size" not in body and attempt.plan.adjusted == ["quality=high->(dropped)"]


def test_a_tier_next_to_a_size_is_dropped_or_refused_strictly() -> None:
    attempt, body = one(model=M45, size="2048x2048", quality="4K")
    assert body["size"] == "2048x2048" and attempt.plan.adjusted == ["quality=4K->(dropped)"]
    attempt = make_attempt(SeedreamProvider, body={"prompt": "a fox", "model": M45, "size": "2048x2048",
                                                   "quality": "4K"}, headers=STRICT)
    with pytest.raises(BadParam) as err:
        bodies(attempt)
    assert err.value.param == "quality"


# -- the rest of the body -----------------------------------------------------------------------------

def test_n_is_one_call_per_image_without_an_n_field() -> None:
    attempt = make_attempt(SeedreamProvider, body={"prompt": "a fox", "n": 3, "response_format": "b64_json",
                                                   "watermark": False})
    sent = bodies(attempt)
    assert sent == [{"model": M45, "prompt": "a fox", "response_format": "b64_json", "watermark": False}] * 3


def test_watermark_is_not_forced() -> None:
    assert "watermark" not in one()[1]
    assert one(watermark=True)[1]["watermark"] is True


def test_natives_per_model() -> None:
    attempt, body = one(model=M45, seed=7, output_format="png")
    assert "seed" not in body and "output_format" not in body
    assert attempt.plan.adjusted == ["output_format=(dropped)", "seed=(dropped)"]
    assert one(model=M50, output_format="png")[1]["output_format"] == "png"
    # An inference endpoint ID is another model: its natives go as sent.
    assert one(model="ep-20260101-abc", seed=7, guidance_scale=2.5)[1] == {
        "model": "ep-20260101-abc", "prompt": "a fox", "seed": 7, "guidance_scale": 2.5}


def test_style_and_user_are_not_sent() -> None:
    attempt, body = one(style="vivid", user="u-1")
    assert body == {"model": M45, "prompt": "a fox"} and attempt.plan.adjusted == ["style=vivid->(dropped)"]


# -- where it goes ------------------------------------------------------------------------------------

def test_default_region_and_auth() -> None:
    attempt = make_attempt(SeedreamProvider, body={"prompt": "a fox"}, api_key="ark-1")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url == "https://ark.ap-southeast.bytepluses.com/api/v3/images/generations"
    assert req.headers["Authorization"] == "Bearer ark-1" and req.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(("region", "url", "model"), [
    ("cn-beijing", "https://ark.cn-beijing.volces.com/api/v3/images/generations", "doubao-seedream-4-5-251128"),
    ("eu-west-1", "https://ark.eu-west.bytepluses.com/api/v3/images/generations", M45),
    ("ap-southeast-1", "https://ark.ap-southeast.bytepluses.com/api/v3/images/generations", M45),
])
def test_region_option_chooses_the_host_and_default_model(region: str, url: str, model: str) -> None:
    for attempt in (make_attempt(SeedreamProvider, body={"prompt": "a fox"}, options={"region": region}),
                    make_attempt(SeedreamProvider, body={"prompt": "a fox"},
                                 headers={"x-portkey-seedream-region": region})):
        req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
        assert req.url == url and msgspec.json.decode(req.body)["model"] == model


def test_a_named_model_is_kept_in_any_region() -> None:
    attempt = make_attempt(SeedreamProvider, body={"prompt": "a fox", "model": "doubao-seedream-4-0-250828",
                                                   "size": "512x512"}, options={"region": "cn-beijing"})
    assert bodies(attempt)[0]["size"] == "960x960"  # the family matched with Volcengine's prefix


def test_unknown_or_malformed_regions_are_refused() -> None:
    attempt = make_attempt(SeedreamProvider, body={"prompt": "a fox"}, options={"region": "us-east-1"})
    with pytest.raises(BadRequest) as err:
        bodies(attempt)
    assert err.value.param == "region" and "cn-beijing" in err.value.message
    with pytest.raises(BadRequest) as err:
        make_attempt(SeedreamProvider, body={"prompt": "a fox"}, options={"region": "evil.example.com/"})
    assert err.value.code == "invalid_provider_option"


def test_regions_come_from_settings_and_a_custom_host_wins() -> None:
    settings = {"regions": {"cn-beijing": "https://ark.proxy.internal/cn/api/v3/"}}
    attempt = make_attempt(SeedreamProvider, body={"prompt": "x"}, options={"region": "cn-beijing"}, settings=settings)
    assert attempt.provider.build_generation(attempt, attempt.plan.parts[0]).url == \
        "https://ark.proxy.internal/cn/api/v3/images/generations"
    attempt = make_attempt(SeedreamProvider, body={"prompt": "x"}, options={"region": "cn-beijing"},
                           custom_host="https://ark.example.org/api/v3")
    assert attempt.provider.build_generation(attempt, attempt.plan.parts[0]).url == \
        "https://ark.example.org/api/v3/images/generations"


def test_passthrough_goes_to_the_regions_base() -> None:
    attempt = make_attempt(SeedreamProvider, endpoint=PROXY, method="GET", path="/models",
                           options={"region": "cn-beijing"})
    assert attempt.provider.build_proxy(attempt).url == "https://ark.cn-beijing.volces.com/api/v3/models"


def test_result_hosts_are_arks_object_storage() -> None:
    for url in ("https://ark-content-generation-v2-ap-southeast-1.tos-ap-southeast-1.volces.com/seedream-4-0/a.jpeg",
                "https://ark-content-generation-v2-cn-beijing.tos-cn-beijing.volces.com/doubao-seedream-4-5/a.jpeg",
                "https://ark-content-generation-v2-ap-southeast-1.tos-ap-southeast-1.bytepluses.com/seedream/a.png"):
        assert image_url_allowed(SeedreamProvider, url), url
    for url in ("https://my-bucket.tos-cn-beijing.volces.com/a.jpeg", "https://evil.example.com/a.jpeg",
                "http://ark-content-generation-v2-cn-beijing.tos-cn-beijing.volces.com/a.jpeg"):
        assert not image_url_allowed(SeedreamProvider, url), url


# -- edits --------------------------------------------------------------------------------------------

def edit(**kwargs) -> tuple[object, dict]:  # noqa: ANN003
    attempt = make_attempt(SeedreamProvider, endpoint=IMAGES_EDITS, **kwargs)
    return attempt, msgspec.json.decode(attempt.provider.build_edit(attempt, attempt.plan.parts[0]).body)


def uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_one_reference_image_is_a_string_several_a_list_in_order() -> None:
    _, body = edit(body={"prompt": "add a hat"}, images=[PNG_1X1])
    assert body == {"model": M45, "prompt": "add a hat", "image": uri(PNG_1X1)}
    images = [PNG_1X1 + bytes([i]) for i in range(3)]
    _, body = edit(body={"prompt": "combine", "size": "2560x1440"}, images=images)
    assert body["image"] == [uri(i) for i in images] and body["size"] == "2560x1440"


def test_edit_form_text_natives_are_typed() -> None:
    _, body = edit(body={"prompt": "x", "watermark": "false", "sequential_image_generation": "auto",
                         "sequential_image_generation_options": '{"max_images": 2}'}, images=[PNG_1X1])
    assert body["watermark"] is False and body["sequential_image_generation_options"] == {"max_images": 2}
    with pytest.raises(BadParam) as err:
        edit(body={"prompt": "x", "watermark": "nope"}, images=[PNG_1X1])
    assert err.value.param == "watermark"
    with pytest.raises(BadParam) as err:
        edit(body={"prompt": "x", "optimize_prompt_options": "{mode"}, images=[PNG_1X1])
    assert err.value.param == "optimize_prompt_options"


def test_fifteen_images_or_a_mask_are_refused() -> None:
    with pytest.raises(BadParam) as err:
        edit(body={"prompt": "x"}, images=[PNG_1X1] * 15)
    assert err.value.param == "image"
    with pytest.raises(BadParam) as err:
        edit(body={"prompt": "x"}, images=[PNG_1X1], mask=PNG_1X1)
    assert err.value.param == "mask"


# -- answers and errors -------------------------------------------------------------------------------

def parse(body: object):  # noqa: ANN201
    attempt = make_attempt(SeedreamProvider, body={"prompt": "a fox"})
    return attempt.provider.parse_generation(attempt, attempt.plan.parts[0], answer(200, body))


def test_parse_reads_urls_b64_created_and_usage() -> None:
    b64 = base64.b64encode(PNG_1X1).decode()
    result = parse({"model": M45, "created": 1757469561, "data": [
        {"url": "https://ark-content-generation-v2-ap-southeast-1.tos-ap-southeast-1.volces.com/a.jpeg",
         "size": "2048x2048"}, {"b64_json": b64, "size": "2048x2048"}],
        "usage": {"generated_images": 2, "output_tokens": 32768, "total_tokens": 32768}})
    assert result.images[0].url.endswith("/a.jpeg") and msgspec.json.decode(result.images[1].b64) == b64
    assert result.created == 1757469561 and result.extra["usage"]["generated_images"] == 2


def test_a_group_keeps_the_images_made_when_one_was_refused() -> None:
    result = parse({"created": 1, "data": [
        {"error": {"code": "OutputImageSensitiveContentDetected", "message": "sensitive"}},
        {"url": "https://ark-content-generation-v2-cn-beijing.tos-cn-beijing.volces.com/b.jpeg"}]})
    assert [i.url[-6:] for i in result.images] == ["b.jpeg"]


def test_only_refused_images_is_a_content_policy_violation() -> None:
    with pytest.raises(ContentPolicyViolation) as err:
        parse({"created": 1, "data": [{"error": {"code": "OutputImageSensitiveContentDetected",
                                                 "message": "The output image may contain sensitive information."}}]})
    assert err.value.code == CONTENT_POLICY and "OutputImageSensitiveContentDetected" in err.value.message


@pytest.mark.parametrize("body", [
    {"created": 1, "data": []}, {"created": 1}, {"unexpected": True}, [1, 2],
    {"created": 1, "data": [{"error": {"code": "InternalServiceError", "message": "boom"}}]},
    {"created": 1, "data": [{"size": "2048x2048"}]}, {"created": 1, "data": [{"b64_json": 12}]},
    {"error": {"code": "InvalidParameter", "message": "bad"}, "data": [{"url": "https://x"}]},
])
def test_answers_without_usable_images_are_malformed(body: object) -> None:
    with pytest.raises(MalformedAnswer):
        parse(body)


@pytest.mark.parametrize("code", [
    "InputTextSensitiveContentDetected", "InputImageSensitiveContentDetected", "OutputImageSensitiveContentDetected",
    "SensitiveContentDetected", "SensitiveContentDetected.SevereViolation",
    "InputImageSensitiveContentDetected.PrivacyInformation", "InputTextRiskDetection", "OutputImageRiskDetection",
])
def test_refusal_codes_become_the_policy_code(code: str) -> None:
    assert refused(code)
    provider = make_attempt(SeedreamProvider, body={"prompt": "x"}).provider
    body = msgspec.json.encode({"error": {"code": code, "message": "The request failed because the input text may "
                                                                   "contain sensitive information. Request ID: 1",
                                          "param": "", "type": "BadRequest"}})
    err = provider.error_from_response(400, body, "application/json")
    assert isinstance(err, ContentPolicyViolation) and err.status == 400 and code in err.message


def test_other_errors_keep_status_message_and_code() -> None:
    provider = make_attempt(SeedreamProvider, body={"prompt": "x"}).provider
    for status, code in ((400, "ContentSecurityDetectionError"), (429, "RateLimitExceeded.EndpointRPMExceeded"),
                         (404, "InvalidEndpointOrModel.NotFound")):
        body = msgspec.json.encode({"error": {"code": code, "message": "m", "param": "", "type": "X"}})
        err = provider.error_from_response(status, body, "application/json")
        assert type(err) is ProviderError and (err.status, err.code, err.message) == (
            status, code, "bytedance-seedream error: m")
