"""The fal.ai translations in process: endpoint ids, bodies per model family, answers, errors."""
from __future__ import annotations

import base64

import msgspec
import pytest

from gateway.sdk import IMAGES_EDITS, BadParam, ContentPolicyViolation, MalformedAnswer
from gateway.testing import PNG_1X1, answer, image_url_allowed, make_attempt
from gateway_fal_ai import FalProvider
from gateway_fal_ai.answers import error_from_answer, read_result
from gateway_fal_ai.queue import endpoint, read_status, read_submitted


def body_of(params: dict, **kw) -> tuple[list[dict], list[str]]:  # noqa: ANN003
    """Each upstream call's body for a generation, and the plan's adjustments."""
    attempt = make_attempt(FalProvider, body={"prompt": "a fox", **params}, **kw)
    assert attempt.plan is not None
    bodies = [msgspec.json.decode(attempt.provider.build_generation(attempt, p).body) for p in attempt.plan.parts]
    return bodies, attempt.plan.adjusted


# -- endpoint ids and URLs -------------------------------------------------------------------

@pytest.mark.parametrize(("model", "app"), [
    ("fal-ai/flux/dev", "fal-ai/flux"),
    ("fal-ai/flux-pro/v1.1-ultra", "fal-ai/flux-pro"),
    ("fal-ai/bytedance/seedream/v4/text-to-image", "fal-ai/bytedance"),
    ("fal-ai/fast-sdxl", "fal-ai/fast-sdxl"),
    ("workflows/me/my-flow/run", "workflows/me/my-flow"),
])
def test_requests_live_under_the_app_id_not_the_sub_path(model, app):  # noqa: ANN001
    target = endpoint(model)
    assert target.submit_url("https://queue.fal.run") == f"https://queue.fal.run/{model}"
    assert target.request_url("https://queue.fal.run", "r-1") == f"https://queue.fal.run/{app}/requests/r-1"


@pytest.mark.parametrize("model", ["flux", "fal-ai", "fal-ai/../admin", "fal-ai/flux?x=1", "https://evil.example/x",
                                   "fal-ai//dev", "workflows/me", "fal-ai/flux/dev#frag"])
def test_model_strings_that_are_not_endpoint_ids_are_a_400(model):  # noqa: ANN001
    with pytest.raises(BadParam) as e:
        endpoint(model)
    assert e.value.param == "model"


def test_submit_goes_to_the_full_id_under_a_custom_host_with_a_key_header():
    attempt = make_attempt(FalProvider, body={"prompt": "a fox", "model": "fal-ai/flux/dev"}, api_key="id:secret",
                           custom_host="https://proxy.example/fal")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert (req.method, req.url) == ("POST", "https://proxy.example/fal/fal-ai/flux/dev")
    assert req.headers["Authorization"] == "Key id:secret"
    assert req.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(("timeout", "header"), [(None, "600"), ("10500", "11"), ("2000", "2"), ("300", None)])
def test_request_timeout_header_follows_the_attempts_budget(timeout, header):  # noqa: ANN001
    headers = {"x-portkey-request-timeout": timeout} if timeout else {}
    attempt = make_attempt(FalProvider, body={"prompt": "a fox"}, headers=headers)
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.headers.get("X-Fal-Request-Timeout") == header


def test_no_key_sends_no_authorization():
    attempt = make_attempt(FalProvider, body={"prompt": "a fox"}, api_key=None)
    assert attempt.provider.auth_headers(attempt) == {}


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://v3.fal.media/files/rabbit/a.png", True), ("https://fal.media/files/tiger/b.jpg", True),
    ("https://queue.fal.run/files/c.png", True), ("http://v3.fal.media/files/a.png", False),
    ("https://fal.media.evil.example/a.png", False), ("https://storage.example/a.png", False),
])
def test_result_files_are_fetched_from_fals_cdn_only(url, allowed):  # noqa: ANN001
    assert image_url_allowed(FalProvider, url) is allowed


def test_passthrough_maps_v1_paths_onto_the_queue_host():
    attempt = make_attempt(FalProvider, endpoint="proxy", method="GET", path="/fal-ai/flux/requests/r-1/status",
                           query_string="logs=1")
    assert attempt.provider.proxy_url(attempt, "/fal-ai/flux/requests/r-1/status", "logs=1") == \
        "https://queue.fal.run/fal-ai/flux/requests/r-1/status?logs=1"


# -- generation bodies per family ------------------------------------------------------------

def test_flux_dev_takes_image_size_num_images_and_natives():
    bodies, adjusted = body_of({"model": "fal-ai/flux/dev", "n": 3, "size": "1024x768", "seed": 7,
                                "output_format": "png", "enable_safety_checker": False})
    assert bodies == [{"prompt": "a fox", "image_size": {"width": 1024, "height": 768}, "num_images": 3, "seed": 7,
                       "output_format": "png", "enable_safety_checker": False}]
    assert adjusted == []


def test_more_images_than_one_request_makes_are_split_with_the_seed_moved_on():
    bodies, _ = body_of({"model": "fal-ai/flux/schnell", "n": 6, "seed": 10})
    assert [(b.get("num_images"), b["seed"]) for b in bodies] == [(4, 10), (2, 14)]


def test_an_enum_image_size_sent_natively_wins_over_the_mapped_size():
    bodies, _ = body_of({"model": "fal-ai/flux/dev", "size": "1024x1024", "image_size": "landscape_16_9"})
    assert bodies[0]["image_size"] == "landscape_16_9"


def test_sides_beyond_fals_image_size_limit_are_fitted_leniently_and_refused_strictly():
    bodies, adjusted = body_of({"model": "fal-ai/flux/dev", "size": "20000x10000"})
    assert bodies[0]["image_size"] == {"width": 14142, "height": 7071}
    assert adjusted == ["size=20000x10000->14142x7071"]
    with pytest.raises(BadParam) as e:
        body_of({"model": "fal-ai/flux/dev", "size": "20000x10000"}, headers={"x-portkey-strict-params": "true"})
    assert e.value.param == "size"


def test_ultra_takes_the_nearest_aspect_ratio():
    bodies, adjusted = body_of({"model": "fal-ai/flux-pro/v1.1-ultra", "size": "1792x1024", "n": 2})
    assert bodies == [{"prompt": "a fox", "aspect_ratio": "16:9", "num_images": 2}]
    assert adjusted == ["size=1792x1024->16:9"]


def test_flux2_pro_makes_one_image_per_request():
    bodies, _ = body_of({"model": "fal-ai/flux-2-pro", "n": 3, "seed": 1, "safety_tolerance": "2"})
    assert bodies == [{"prompt": "a fox", "seed": s, "safety_tolerance": "2"} for s in (1, 2, 3)]


def test_flux2_dev_sides_are_512_to_2048():
    bodies, adjusted = body_of({"model": "fal-ai/flux-2", "size": "256x256"})
    assert bodies[0]["image_size"] == {"width": 512, "height": 512}
    assert adjusted == ["size=256x256->512x512"]


@pytest.mark.parametrize(("model", "size", "sent"), [
    # Seedream 4: total pixels between 960x960 and 4096x4096.
    ("fal-ai/bytedance/seedream/v4/text-to-image", "512x512", {"width": 960, "height": 960}),
    # Seedream 4.5: at least 2560x1440 pixels.
    ("fal-ai/bytedance/seedream/v4.5/text-to-image", "1024x1024", {"width": 1920, "height": 1920}),
    ("fal-ai/bytedance/seedream/v4/text-to-image", "auto", "auto"),
])
def test_seedream_sizes(model, size, sent):  # noqa: ANN001
    bodies, _ = body_of({"model": model, "size": size, "n": 6})
    assert bodies == [{"prompt": "a fox", "image_size": sent, "num_images": 6}]


def test_auto_size_leaves_image_size_out_where_the_endpoint_has_no_auto():
    bodies, adjusted = body_of({"model": "fal-ai/flux/dev", "size": "auto"})
    assert bodies == [{"prompt": "a fox"}] and adjusted == []


def test_recraft_takes_its_own_styles_and_one_image_per_request():
    bodies, adjusted = body_of({"model": "fal-ai/recraft/v3/text-to-image", "style": "digital_illustration/noir",
                                "n": 2})
    assert bodies == [{"prompt": "a fox", "style": "digital_illustration/noir"}] * 2 and adjusted == []
    bodies, adjusted = body_of({"model": "fal-ai/recraft/v3/text-to-image", "style": "vivid"})
    assert "style" not in bodies[0] and adjusted == ["style=vivid->(dropped)"]


def test_ideogram_makes_up_to_eight_per_request_and_quality_is_dropped():
    bodies, adjusted = body_of({"model": "fal-ai/ideogram/v3", "n": 8, "quality": "hd",
                                "rendering_speed": "TURBO"})
    assert bodies == [{"prompt": "a fox", "num_images": 8, "rendering_speed": "TURBO"}]
    assert adjusted == ["quality=hd->(dropped)"]


@pytest.mark.parametrize(("model", "per_call"), [
    ("fal-ai/qwen-image", 4),
    ("fal-ai/qwen-image-2512", 4),
    ("fal-ai/qwen-image-3/text-to-image", 4),  # a new version: its family
    ("fal-ai/bytedance/seedream/v9/text-to-image", 6),
    ("fal-ai/flux-2-ultra", 1),
    ("fal-ai/flux-2/klein/4b", 4),
])
def test_families_cover_new_versions(model, per_call):  # noqa: ANN001
    bodies, _ = body_of({"model": model, "n": 8, "size": "1024x1024"})
    assert len(bodies) == -(-8 // per_call)
    assert bodies[0]["image_size"] == {"width": 1024, "height": 1024}
    assert bodies[0].get("num_images", 1) == per_call


def test_a_new_ultra_endpoint_takes_aspect_ratios():
    bodies, _ = body_of({"model": "fal-ai/flux-pro/v1.1-ultra-finetuned", "size": "1024x1024"})
    assert bodies[0]["aspect_ratio"] == "1:1"


def test_an_unknown_model_gets_prompt_image_size_natives_and_one_image_per_request():
    bodies, adjusted = body_of({"model": "fal-ai/fast-sdxl", "n": 2, "size": "1000x700", "style": "vivid",
                                "negative_prompt": "blur", "num_inference_steps": 20})
    assert bodies == [{"prompt": "a fox", "image_size": {"width": 1000, "height": 700}, "negative_prompt": "blur",
                       "num_inference_steps": 20}] * 2
    assert adjusted == ["style=vivid->(dropped)"]


def test_a_native_num_images_on_an_unknown_model_is_passed_as_sent():
    bodies, _ = body_of({"model": "fal-ai/fast-sdxl", "num_images": 3})
    assert bodies == [{"prompt": "a fox", "num_images": 3}]


# -- edits -----------------------------------------------------------------------------------

def edit_body(params: dict, images: list[bytes], mask: bytes | None = None,
              **kw) -> tuple[dict, list[str]]:  # noqa: ANN003
    attempt = make_attempt(FalProvider, endpoint=IMAGES_EDITS, body={"prompt": "add a hat", **params},
                           images=images, mask=mask, **kw)
    req = attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    assert req.url.startswith("https://queue.fal.run/")
    return msgspec.json.decode(req.body), attempt.plan.adjusted


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_kontext_is_the_default_edit_model_with_one_image_url():
    attempt = make_attempt(FalProvider, endpoint=IMAGES_EDITS, body={"prompt": "add a hat", "n": 2, "seed": "7",
                                                                     "size": "1024x1536"}, images=[PNG_1X1])
    req = attempt.provider.build_edit(attempt, attempt.plan.parts[0])
    assert req.url == "https://queue.fal.run/fal-ai/flux-pro/kontext"
    assert msgspec.json.decode(req.body) == {"prompt": "add a hat", "aspect_ratio": "2:3", "num_images": 2,
                                             "seed": 7, "image_url": data_uri(PNG_1X1)}


def test_flux2_pro_edit_takes_a_list_of_images_up_to_eight():
    body, _ = edit_body({"model": "fal-ai/flux-2-pro/edit", "size": "auto"}, [PNG_1X1] * 3)
    assert body == {"prompt": "add a hat", "image_size": "auto", "image_urls": [data_uri(PNG_1X1)] * 3}
    with pytest.raises(BadParam) as e:
        edit_body({"model": "fal-ai/flux-2-pro/edit"}, [PNG_1X1] * 9)
    assert e.value.param == "image"


def test_seedream_edit_images_and_typed_form_fields():
    body, _ = edit_body({"model": "fal-ai/bytedance/seedream/v4/edit", "n": 2, "enable_safety_checker": "false",
                         "size": "2048x2048"}, [PNG_1X1, PNG_1X1])
    assert body == {"prompt": "add a hat", "image_size": {"width": 2048, "height": 2048}, "num_images": 2,
                    "enable_safety_checker": False, "image_urls": [data_uri(PNG_1X1)] * 2}


def test_ideogram_edit_takes_the_mask_and_drops_size():
    body, adjusted = edit_body({"model": "fal-ai/ideogram/v3/edit", "size": "1024x1024"}, [PNG_1X1], mask=PNG_1X1)
    assert set(body) == {"prompt", "image_url", "mask_url"}
    assert body["image_url"] == data_uri(PNG_1X1) and body["mask_url"].startswith("data:image/png;base64,")
    assert adjusted == ["size=1024x1024->(dropped)"]
    with pytest.raises(BadParam) as e:
        edit_body({"model": "fal-ai/ideogram/v3/edit"}, [PNG_1X1])
    assert e.value.param == "mask"


def test_any_other_edit_endpoint_takes_image_urls():
    body, _ = edit_body({"model": "fal-ai/nano-banana/edit"}, [PNG_1X1, PNG_1X1])
    assert body == {"prompt": "add a hat", "image_urls": [data_uri(PNG_1X1)] * 2}


@pytest.mark.parametrize(("params", "param"), [
    ({"model": "fal-ai/flux/dev"}, "model"),  # not an edit endpoint
    ({"model": "fal-ai/flux-pro/kontext", "image_url": "https://example.com/a.png"}, "image_url"),
    ({"model": "fal-ai/flux-pro/kontext", "seed": "seven"}, "seed"),
    ({"model": "fal-ai/qwen-image-edit", "mask": None, "enable_safety_checker": "maybe"}, "enable_safety_checker"),
])
def test_edit_refusals_name_the_field(params, param):  # noqa: ANN001
    with pytest.raises(BadParam) as e:
        edit_body(params, [PNG_1X1])
    assert e.value.param == param


# -- answers ---------------------------------------------------------------------------------

def test_read_queue_answers():
    assert read_submitted(b'{"status": "IN_QUEUE", "request_id": "764cabcf-b745-4b3e-ae38-1200304cf45b"}') == \
        "764cabcf-b745-4b3e-ae38-1200304cf45b"
    assert read_status(b'{"status": "IN_PROGRESS", "logs": null}') == "IN_PROGRESS"
    for bad in (b'{"request_id": "../../x"}', b"[]", b"not json", b'{"status": "IN_QUEUE"}'):
        with pytest.raises(MalformedAnswer):
            read_submitted(bad)
    with pytest.raises(MalformedAnswer, match="unknown"):
        read_status(b'{"status": "FAILED"}')


def image(url: str) -> dict:
    return {"url": url, "width": 1024, "height": 768, "content_type": "image/jpeg"}


def test_flagged_images_are_dropped_and_all_flagged_is_a_refusal():
    body = msgspec.json.encode({"images": [image("https://v3.fal.media/files/a.jpg"),
                                           image("https://v3.fal.media/files/b.jpg")],
                                "has_nsfw_concepts": [False, True], "seed": 1})
    result, withheld = read_result(body, "r-1")
    assert [i.url for i in result.images] == ["https://v3.fal.media/files/a.jpg"] and withheld == 1
    assert result.images[0].content_type == "image/jpeg"
    body = msgspec.json.encode({"images": [image("https://v3.fal.media/files/a.jpg")], "has_nsfw_concepts": [True]})
    with pytest.raises(ContentPolicyViolation, match="flagged the image of request r-1"):
        read_result(body, "r-1")


def test_data_uris_and_a_single_image_are_read():
    uri = data_uri(PNG_1X1)
    assert [i.url for i in read_result(msgspec.json.encode({"images": [{"url": uri}]}), "r")[0].images] == [uri]
    assert [i.url for i in read_result(msgspec.json.encode({"image": {"url": uri}}), "r")[0].images] == [uri]


@pytest.mark.parametrize("doc", [{"images": []}, {"output": "x"}, {"images": [{"file": "x"}]},
                                 {"images": [{"url": "ftp://x"}]}, ["images"]])
def test_results_without_images_are_malformed(doc):  # noqa: ANN001
    with pytest.raises(MalformedAnswer):
        read_result(msgspec.json.encode(doc), "r")


def test_validation_errors_are_400s_naming_the_field():
    detail = [{"loc": ["body", "num_images"], "msg": "Input should be less than or equal to 4",
               "type": "less_than_equal", "url": "https://docs.fal.ai/errors#less_than_equal", "ctx": {"le": 4},
               "input": 5}]
    err = error_from_answer(422, msgspec.json.encode({"detail": detail}), "application/json")
    assert (err.status, err.param, err.code, err.type) == (400, "num_images", "less_than_equal",
                                                           "invalid_request_error")
    assert err.message == "fal-ai error: num_images: Input should be less than or equal to 4"
    nested = [{"loc": ["body", "image_size", "width"], "msg": "too wide", "type": "less_than_equal"}]
    assert error_from_answer(422, msgspec.json.encode({"detail": nested}), "application/json").param == \
        "image_size.width"


def test_content_checker_refusals_carry_the_policy_code():
    detail = [{"loc": ["body", "prompt"], "msg": "The content was flagged by a content checker.",
               "type": "content_policy_violation"}]
    err = error_from_answer(422, msgspec.json.encode({"detail": detail}), "application/json")
    assert isinstance(err, ContentPolicyViolation) and err.status == 400
    assert err.message == "fal-ai error: prompt: The content was flagged by a content checker."


def test_request_errors_keep_status_and_error_type():
    err = error_from_answer(504, b'{"detail": "Request timed out", "error_type": "request_timeout"}',
                            "application/json")
    assert (err.status, err.code, err.message) == (504, "request_timeout", "fal-ai error: Request timed out")
    err = error_from_answer(401, b'{"detail": "Unauthorized"}', "application/json")
    assert (err.status, err.type) == (401, "authentication_error")
    err = error_from_answer(502, b"<html>bad gateway</html>", "text/html")
    assert err.status == 502 and err.message == "fal-ai error: HTTP 502: <html>bad gateway</html>"


def test_upstream_error_keeps_fal_headers():
    provider = make_attempt(FalProvider, body={"prompt": "x"}).provider
    err = provider.upstream_error(answer(429, {"detail": "Too many requests"}, headers={"Retry-After": "3"}))
    assert err.status == 429 and err.upstream_headers["Retry-After"] == "3"
