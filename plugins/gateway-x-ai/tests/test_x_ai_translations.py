"""The xAI translations in process (no server): the body a request becomes, the edit body,
the answer and error readings."""
from __future__ import annotations

import base64

import msgspec
import pytest

from gateway.sdk import CONTENT_POLICY, IMAGES_EDITS, BadParam, ContentPolicyViolation, MalformedAnswer
from gateway.testing import PNG_1X1, answer, make_attempt
from gateway_x_ai import XAIProvider
from gateway_x_ai.models import resolution_for


def body_of(attempt) -> dict:  # noqa: ANN001
    [part] = attempt.plan.parts
    return msgspec.json.decode(attempt.provider.build_generation(attempt, part).body)


def test_size_becomes_aspect_ratio_and_resolution() -> None:
    attempt = make_attempt(XAIProvider, body={"prompt": "a fox", "model": "grok-imagine-image", "size": "1792x1024",
                                              "n": 3, "response_format": "b64_json"})
    assert body_of(attempt) == {"prompt": "a fox", "model": "grok-imagine-image", "n": 3,
                                "response_format": "b64_json", "aspect_ratio": "16:9", "resolution": "1k"}
    # 1792x1024 is 1.75:1, not 16:9 within 1%: lenient mode says so.
    assert attempt.plan.adjusted == ["size=1792x1024->16:9"]


@pytest.mark.parametrize(("size", "ratio", "resolution"), [
    ("1024x1024", "1:1", "1k"), ("2048x2048", "1:1", "2k"), ("1536x1536", "1:1", "2k"), ("1024x1536", "2:3", "1k"),
    ("2496x1152", "19.5:9", "2k"), ("576x1280", "9:20", "1k"),
])
def test_size_maps_to_the_nearest_ratio_and_resolution(size: str, ratio: str, resolution: str) -> None:
    body = body_of(make_attempt(XAIProvider, body={"prompt": "a fox", "size": size}))
    assert (body["aspect_ratio"], body["resolution"]) == (ratio, resolution)


def test_odd_size_is_adjusted_and_reported_or_refused_strictly() -> None:
    attempt = make_attempt(XAIProvider, body={"prompt": "a fox", "size": "1000x700"})
    assert body_of(attempt)["aspect_ratio"] == "3:2"
    assert attempt.plan.adjusted == ["size=1000x700->3:2"]
    with pytest.raises(BadParam) as err:
        make_attempt(XAIProvider, body={"prompt": "a fox", "size": "1000x700"},
                     headers={"x-portkey-strict-params": "true"})
    assert err.value.param == "size" and "9:19.5" in err.value.message


def test_resolution_threshold_is_the_middle_of_the_tiers() -> None:
    assert resolution_for(1448, 1448) == "1k" and resolution_for(1449, 1449) == "2k"


def test_auto_size_and_no_size_send_neither_field() -> None:
    for extra in ({"size": "auto"}, {}):
        attempt = make_attempt(XAIProvider, body={"prompt": "a fox", "model": "grok-imagine-image", **extra})
        assert body_of(attempt) == {"prompt": "a fox", "model": "grok-imagine-image"}
        assert attempt.plan.adjusted == []


def test_native_aspect_ratio_and_resolution_win_over_size() -> None:
    body = body_of(make_attempt(XAIProvider, body={"prompt": "a fox", "size": "1024x1024", "aspect_ratio": "21:9",
                                                   "resolution": "2k"}))
    assert (body["aspect_ratio"], body["resolution"]) == ("21:9", "2k")


def test_client_body_goes_as_sent_only_without_size() -> None:
    raw = b'{"prompt":"a fox","model":"grok-imagine-image","n":2,"response_format":"url"}'
    attempt = make_attempt(XAIProvider, body=raw)
    attempt.inbound.body = raw
    assert attempt.provider.build_generation(attempt, attempt.plan.parts[0]).body == raw
    sized = make_attempt(XAIProvider, body={"prompt": "a fox", "model": "grok-imagine-image", "size": "1024x1024"})
    assert b'"size"' not in sized.provider.build_generation(sized, sized.plan.parts[0]).body


def test_quality_only_on_the_2_family_and_mapped_to_its_tiers() -> None:
    attempt = make_attempt(XAIProvider, body={"prompt": "a fox", "model": "grok-imagine-image-2.0", "quality": "high"})
    assert body_of(attempt)["quality"] == "medium"
    assert attempt.plan.adjusted == ["quality=high->medium"]
    attempt = make_attempt(XAIProvider, body={"prompt": "a fox", "model": "grok-imagine-image-quality",
                                              "quality": "low"})
    assert "quality" not in body_of(attempt)
    assert attempt.plan.adjusted == ["quality=low->(dropped)"]


def test_n_above_ten_is_capped_and_one_call() -> None:
    attempt = make_attempt(XAIProvider, body={"prompt": "a fox", "n": 12})
    assert [p.n for p in attempt.plan.parts] == [10]
    assert attempt.plan.adjusted == ["n=12->10"]


def test_style_is_dropped() -> None:
    attempt = make_attempt(XAIProvider, body={"prompt": "a fox", "style": "vivid"})
    assert "style" not in body_of(attempt)
    assert attempt.plan.adjusted == ["style=vivid->(dropped)"]


def test_auth_is_bearer() -> None:
    attempt = make_attempt(XAIProvider, body={"prompt": "a fox"}, api_key="xai-123")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.headers["Authorization"] == "Bearer xai-123"
    assert req.url == "https://api.x.ai/v1/images/generations"


# -- edits ---------------------------------------------------------------------------------------

async def build_edit(**kwargs):  # noqa: ANN003, ANN201
    attempt = make_attempt(XAIProvider, endpoint=IMAGES_EDITS, **kwargs)
    req = await attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    return attempt, req


async def test_one_image_edit_is_json_with_image_and_drops_size() -> None:
    attempt, req = await build_edit(body={"prompt": "add a hat", "size": "1024x1536", "n": 2}, images=[PNG_1X1])
    assert req.url == "https://api.x.ai/v1/images/edits"
    assert req.headers["Content-Type"] == "application/json"
    body = msgspec.json.decode(req.body)
    assert body == {"prompt": "add a hat", "model": "grok-imagine-image", "n": 2,
                    "image": {"url": "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()}}
    assert attempt.plan.adjusted == ["size=1024x1536->(dropped)"]


async def test_one_image_edit_with_size_is_refused_strictly() -> None:
    with pytest.raises(BadParam) as err:
        await build_edit(body={"prompt": "add a hat", "size": "1024x1536"}, images=[PNG_1X1],
                         headers={"x-portkey-strict-params": "true"})
    assert err.value.param == "size" and "aspect ratio" in err.value.message


async def test_several_images_go_in_order_in_images_with_the_ratio() -> None:
    images = [PNG_1X1 + bytes([i]) for i in range(3)]
    _, req = await build_edit(body={"prompt": "combine", "size": "1536x1024", "model": "grok-imagine-image-2.0",
                                    "quality": "low"}, images=images)
    body = msgspec.json.decode(req.body)
    assert [base64.b64decode(s["url"].partition(",")[2]) for s in body["images"]] == images
    assert (body["aspect_ratio"], body["resolution"], body["quality"]) == ("3:2", "1k", "low")
    assert "image" not in body


async def test_four_images_or_a_mask_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(BadParam) as err:
        await build_edit(body={"prompt": "x"}, images=[PNG_1X1] * 4)
    assert err.value.param == "image"
    with pytest.raises(BadParam) as err:
        await build_edit(body={"prompt": "x"}, images=[PNG_1X1], mask=PNG_1X1)
    assert err.value.param == "mask"


# -- answers ---------------------------------------------------------------------------------------

def parse(body: object):  # noqa: ANN201
    attempt = make_attempt(XAIProvider, body={"prompt": "a fox"})
    return attempt.provider.parse_generation(attempt, attempt.plan.parts[0], answer(200, body))


def test_parse_keeps_urls_b64_and_usage() -> None:
    b64 = base64.b64encode(PNG_1X1).decode()
    result = parse({"data": [{"url": "https://imgen.x.ai/a.jpg", "mime_type": "image/jpeg"}, {"b64_json": b64}],
                    "usage": {"cost_in_usd_ticks": 4}})
    assert result.images[0].url == "https://imgen.x.ai/a.jpg"
    assert msgspec.json.decode(result.images[1].b64) == b64
    assert result.extra == {"usage": {"cost_in_usd_ticks": 4}}


def test_parse_strips_a_data_uri_prefix_from_b64_json() -> None:
    b64 = base64.b64encode(PNG_1X1).decode()
    result = parse({"data": [{"b64_json": "data:image/png;base64," + b64}]})
    assert result.images[0].b64 == b64 and result.raw is None


def test_withheld_image_is_a_content_policy_violation() -> None:
    for withheld in ({"url": None, "respect_moderation": False}, {"url": "", "respect_moderation": False},
                     {"respect_moderation": False}):
        with pytest.raises(ContentPolicyViolation) as err:
            parse({"data": [withheld]})
        assert err.value.code == CONTENT_POLICY
    # A flag saying the image respects moderation is an ordinary answer.
    assert parse({"data": [{"url": "https://imgen.x.ai/a.jpg", "respect_moderation": True}]}).images


@pytest.mark.parametrize("body", [{"data": []}, {"data": [{"url": ""}]}, {"unexpected": 1}, {"data": [{}]}])
def test_answers_without_images_are_malformed(body: object) -> None:
    with pytest.raises(MalformedAnswer):
        parse(body)


def test_xai_errors_keep_status_and_moderation_becomes_the_policy_code() -> None:
    provider = make_attempt(XAIProvider, body={"prompt": "x"}).provider
    err = provider.error_from_response(400, b'{"code":"Client specified an invalid argument","error":"Argument not '
                                            b'supported: size"}', "application/json")
    assert (err.status, err.message, err.code) == (400, "x-ai error: Argument not supported: size", None)
    err = provider.error_from_response(
        400, b'{"code":"Client specified an invalid argument","error":"Generated image rejected by content '
             b'moderation.","usage":{"cost_in_usd_ticks":500000000}}', "application/json")
    assert isinstance(err, ContentPolicyViolation) and err.status == 400
    assert err.message == "x-ai error: Generated image rejected by content moderation."
