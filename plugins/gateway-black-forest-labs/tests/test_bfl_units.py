"""The Black Forest Labs translations in process: request bodies per model, where requests go,
which polling URLs are followed, and how answers and errors read.  No server."""
from __future__ import annotations

import pathlib

import msgspec
import pytest

from gateway.sdk import BadParam, ContentPolicyViolation, GatewayError, MalformedAnswer, ProviderError
from gateway.testing import image_url_allowed, make_attempt
from gateway_black_forest_labs.hosts import follows_polling_url, poll_url
from gateway_black_forest_labs.models import EDIT_MODELS, FAMILIES, MODELS
from gateway_black_forest_labs.provider import BlackForestLabsProvider as BFL
from gateway_black_forest_labs.tasks import Task, error_from_answer, outcome, read_submitted, read_task


def body_of(attempt, part: int = 0) -> dict:  # noqa: ANN001
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[part])
    return msgspec.json.decode(req.body)


# -- generation bodies per model ------------------------------------------------------------

def test_flux2_takes_width_height_in_multiples_of_16_and_the_key_in_x_key():
    attempt = make_attempt(BFL, body={"prompt": "a fox", "size": "1792x1024", "seed": 7, "output_format": "png",
                                      "safety_tolerance": 4}, api_key="bfl-key-1")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.method == "POST" and req.url == "https://api.bfl.ai/v1/flux-2-pro"
    assert msgspec.json.decode(req.body) == {"prompt": "a fox", "width": 1792, "height": 1024, "seed": 7,
                                             "output_format": "png", "safety_tolerance": 4}
    assert req.headers["x-key"] == "bfl-key-1" and "Authorization" not in req.headers
    assert req.headers["Content-Type"] == "application/json"
    assert attempt.plan.adjusted == []


@pytest.mark.parametrize(("size", "sent"), [
    ("1000x1000", (992, 992)),       # to the multiple of 16
    ("4096x4096", (2048, 2048)),     # into 4 megapixels
    ("32x48", (64, 96)),             # up to 64 a side, keeping the shape
])
def test_flux2_sizes_are_fitted_leniently(size, sent):  # noqa: ANN001
    attempt = make_attempt(BFL, body={"prompt": "a fox", "model": "flux-2-max", "size": size})
    body = body_of(attempt)
    assert (body["width"], body["height"]) == sent
    assert attempt.plan.adjusted == [f"size={size}->{sent[0]}x{sent[1]}"]


def test_new_flux2_snapshots_work_by_family():
    for model in ("flux-2-pro-preview", "flux-2-klein-9b-preview", "flux-2-ultra-2027"):
        attempt = make_attempt(BFL, body={"prompt": "x", "model": model, "size": "1000x600"})
        assert attempt.provider.build_generation(attempt, attempt.plan.parts[0]).url.endswith(f"/v1/{model}")
        assert (body_of(attempt)["width"], body_of(attempt)["height"]) == (992, 608)


@pytest.mark.parametrize(("model", "size", "ratio"), [
    ("flux-kontext-pro", "1792x1024", "16:9"),
    ("flux-kontext-max", "1024x1536", "2:3"),
    ("flux-pro-1.1-ultra", "2560x1080", "21:9"),
])
def test_kontext_and_ultra_take_an_aspect_ratio(model, size, ratio):  # noqa: ANN001
    attempt = make_attempt(BFL, body={"prompt": "a fox", "model": model, "size": size})
    assert body_of(attempt) == {"prompt": "a fox", "aspect_ratio": ratio}


def test_flux_pro_11_takes_256_to_1440_in_multiples_of_32():
    attempt = make_attempt(BFL, body={"prompt": "a fox", "model": "flux-pro-1.1", "size": "1792x1024",
                                      "prompt_upsampling": True})
    assert body_of(attempt) == {"prompt": "a fox", "width": 1440, "height": 832, "prompt_upsampling": True}


def test_size_auto_and_no_size_leave_the_models_default():
    for body in ({"prompt": "a fox", "size": "auto"}, {"prompt": "a fox"}):
        attempt = make_attempt(BFL, body=body)
        assert body_of(attempt) == {"prompt": "a fox"} and attempt.plan.adjusted == []


def test_n_is_one_task_per_image_with_the_seed_moved_on():
    attempt = make_attempt(BFL, body={"prompt": "a fox", "n": 3, "seed": 40})
    assert [p.n for p in attempt.plan.parts] == [1, 1, 1]
    assert [body_of(attempt, i)["seed"] for i in range(3)] == [40, 41, 42]


def test_natives_a_model_does_not_take_are_dropped_leniently_and_refused_strictly():
    # FLUX.2 [pro] has no prompt_upsampling (FLUX.2 [flex] has); webhooks are the gateway's business.
    body = {"prompt": "a fox", "prompt_upsampling": True, "webhook_url": "https://example.com/hook"}
    attempt = make_attempt(BFL, body=body)
    assert body_of(attempt) == {"prompt": "a fox"}
    assert attempt.plan.adjusted == ["prompt_upsampling=(dropped)", "webhook_url=(dropped)"]
    with pytest.raises(BadParam) as caught:
        make_attempt(BFL, body=body, headers={"x-portkey-strict-params": "true"})
    assert caught.value.param == "prompt_upsampling"
    flex = make_attempt(BFL, body={"prompt": "a fox", "model": "flux-2-flex", "prompt_upsampling": False,
                                   "steps": 30, "guidance": 5.5})
    assert body_of(flex) == {"prompt": "a fox", "prompt_upsampling": False, "steps": 30, "guidance": 5.5}


def test_quality_and_style_are_not_bfls():
    attempt = make_attempt(BFL, body={"prompt": "a fox", "quality": "hd", "style": "vivid"})
    assert body_of(attempt) == {"prompt": "a fox"}
    assert sorted(attempt.plan.adjusted) == ["quality=hd->(dropped)", "style=vivid->(dropped)"]


def test_an_unknown_model_gets_width_height_as_asked_and_any_known_native():
    attempt = make_attempt(BFL, body={"prompt": "a fox", "model": "flux-3-pro", "size": "1000x700", "n": 2,
                                      "raw": True})
    assert len(attempt.plan.parts) == 2
    assert body_of(attempt) == {"prompt": "a fox", "width": 1000, "height": 700, "raw": True}


@pytest.mark.parametrize("model", ["../credits", "flux 2", "a/b", "-flux", "x" * 101])
def test_a_model_that_is_not_an_endpoint_name_is_a_400(model):  # noqa: ANN001
    attempt = make_attempt(BFL, body={"prompt": "a fox", "model": model})
    with pytest.raises(BadParam) as caught:
        attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert caught.value.param == "model"


# -- where requests go -------------------------------------------------------------------------

def test_region_option_chooses_the_regional_endpoint():
    eu = make_attempt(BFL, body={"prompt": "x"}, options={"region": "eu"})
    assert eu.provider.build_generation(eu, eu.plan.parts[0]).url == "https://api.eu.bfl.ai/v1/flux-2-pro"
    us = make_attempt(BFL, body={"prompt": "x"}, headers={"x-portkey-bfl-region": "us"})
    assert us.provider.api_base(us) == "https://api.us.bfl.ai"
    glob = make_attempt(BFL, body={"prompt": "x"}, options={"region": "global"})
    assert glob.provider.api_base(glob) == "https://api.bfl.ai"
    custom = make_attempt(BFL, body={"prompt": "x"}, options={"region": "eu"}, custom_host="https://proxy.example/bfl")
    assert custom.provider.api_base(custom) == "https://proxy.example/bfl"


def test_an_unknown_region_is_a_400_naming_it():
    with pytest.raises(GatewayError) as caught:
        make_attempt(BFL, body={"prompt": "x"}, options={"region": "asia"})
    assert caught.value.status == 400 and "region" in caught.value.message


def test_passthrough_goes_below_v1_of_the_api_base():
    attempt = make_attempt(BFL, endpoint="proxy", method="GET", path="/get_result", query_string="id=abc")
    assert attempt.provider.proxy_url(attempt, "/get_result", "id=abc") == "https://api.bfl.ai/v1/get_result?id=abc"
    eu = make_attempt(BFL, endpoint="proxy", method="GET", path="/credits", options={"region": "eu"})
    assert eu.provider.build_proxy(eu).url == "https://api.eu.bfl.ai/v1/credits"
    assert eu.provider.build_proxy(eu).headers["x-key"] == "test-key"


# -- the polling URL: followed only on BFL's hosts ---------------------------------------------

BASE = "https://api.bfl.ai"


@pytest.mark.parametrize("url", [
    "https://api.bfl.ai/v1/get_result?id=t1",
    "https://api.us1.bfl.ai/v1/get_result?id=t1",
    "https://api.eu2.bfl.ai:443/v1/get_result?id=t1",
])
def test_polling_urls_on_bfl_hosts_are_followed(url):  # noqa: ANN001
    assert follows_polling_url(url, BASE, custom_host=False)
    assert poll_url(url, "t1", BASE, custom_host=False) == url


@pytest.mark.parametrize("url", [
    "http://api.us1.bfl.ai/v1/get_result?id=t1",            # not https
    "https://api.us1.bfl.ai:8443/v1/get_result?id=t1",      # another port
    "https://evil.example/v1/get_result?id=t1",
    "https://bfl.ai.evil.example/v1/get_result?id=t1",
    "https://evil.example/x.bfl.ai/v1/get_result?id=t1",
    "https://api.bfl.ai@evil.example/v1/get_result?id=t1",  # userinfo
    "https://evilbfl.ai/v1/get_result?id=t1",
    "ftp://api.bfl.ai/v1/get_result?id=t1",
    "not a url",
])
def test_other_polling_urls_are_not_followed(url):  # noqa: ANN001
    assert not follows_polling_url(url, BASE, custom_host=False)
    assert poll_url(url, "t1", BASE, custom_host=False) == "https://api.bfl.ai/v1/get_result?id=t1"


def test_with_a_custom_host_only_its_own_origin_is_followed():
    proxy = "https://proxy.example/bfl"
    assert not follows_polling_url("https://api.us1.bfl.ai/v1/get_result?id=t", proxy, custom_host=True)
    assert poll_url("https://api.us1.bfl.ai/v1/get_result?id=t", "t", proxy, True) == \
        "https://proxy.example/bfl/v1/get_result?id=t"
    assert follows_polling_url("https://proxy.example/bfl/v1/get_result?id=t", proxy, custom_host=True)


def test_the_built_poll_url_quotes_the_id_and_a_missing_polling_url_builds_one():
    assert poll_url(None, "a b&c", BASE, False) == "https://api.bfl.ai/v1/get_result?id=a+b%26c"


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://delivery-eu1.bfl.ai/results/x/sample.jpeg?se=1&sig=2", True),
    ("https://delivery.us4.bfl.ai/results/x/sample.png", True),
    ("https://bfldeliveryprod.blob.core.windows.net/results/x.jpeg", True),
    ("https://api.bfl.ai/anything.png", True),                       # the API's own origin
    ("http://delivery-eu1.bfl.ai/x.jpeg", False),
    ("https://delivery-eu1.bfl.ai:8443/x.jpeg", False),
    ("https://evil.blob.core.windows.net/x.jpeg", False),
    ("https://delivery-eu1.bfl.ai.evil.example/x.jpeg", False),
])
def test_result_images_are_fetched_from_bfls_delivery_hosts_only(url, allowed):  # noqa: ANN001
    # The core's fetch rule over the hosts the provider declares.
    assert image_url_allowed(BFL, url, base_url=BASE) is allowed


# -- answers ------------------------------------------------------------------------------------

def test_submitted_task_reads_id_and_polling_url():
    got = read_submitted(b'{"id": "t-1", "polling_url": "https://api.us1.bfl.ai/v1/get_result?id=t-1", "cost": 3}')
    assert (got.id, got.polling_url) == ("t-1", "https://api.us1.bfl.ai/v1/get_result?id=t-1")
    for bad in (b"[]", b"nope", b'{"polling_url": "x"}', b'{"id": "a/b"}', b'{"id": "t", "polling_url": 3}'):
        with pytest.raises(MalformedAnswer):
            read_submitted(bad)


def test_task_statuses():
    assert read_task(b'{"id": "t", "status": "Pending", "progress": 0.3}', "t").finished is False
    assert read_task(b'{"id": "t", "status": "Generating"}', "t").finished is False
    assert read_task(b'{"status": "Pending"}', "t").id == "t"
    assert read_task(b'{"id": "other", "status": "Task not found"}', "t").finished
    assert read_task(b'{"id": "t", "status": "Ready", "result": {"sample": "https://x"}}', "t").finished
    with pytest.raises(MalformedAnswer, match="unknown `status`"):
        read_task(b'{"id": "t", "status": "Exploded"}', "t")
    with pytest.raises(MalformedAnswer, match="asked for task t"):
        read_task(b'{"id": "u", "status": "Ready"}', "t")


def test_ready_is_the_sample_url_with_an_upsampled_prompt_as_revised_prompt():
    image = outcome(Task(id="t", status="Ready", result={"sample": "https://delivery-eu1.bfl.ai/s.jpeg",
                                                          "prompt": "a red fox in snow, golden hour"}), "a fox")
    assert image.url == "https://delivery-eu1.bfl.ai/s.jpeg"
    assert image.revised_prompt == "a red fox in snow, golden hour"
    same = outcome(Task(id="t", status="Ready", result={"sample": "https://x/s.jpeg", "prompt": "a fox"}), "a fox")
    assert same.revised_prompt is None
    with pytest.raises(MalformedAnswer, match="without a `result.sample`"):
        outcome(Task(id="t", status="Ready", result={"seed": 1}), "a fox")


@pytest.mark.parametrize("status", ["Request Moderated", "Content Moderated"])
def test_moderated_tasks_are_content_policy_violations(status):  # noqa: ANN001
    with pytest.raises(ContentPolicyViolation) as caught:
        outcome(Task(id="t", status=status, details={"Moderation Reasons": ["Derivative Works"]}), "x")
    assert caught.value.status == 400 and caught.value.code == "content_policy_violation"
    assert status in caught.value.message and "Derivative Works" in caught.value.message


def test_failed_and_lost_tasks_are_502s_saying_so():
    with pytest.raises(ProviderError) as caught:
        outcome(Task(id="t", status="Error", details={"error": "CUDA out of memory"}), "x")
    assert (caught.value.status, caught.value.code) == (502, "generation_failed")
    assert "CUDA out of memory" in caught.value.message
    with pytest.raises(ProviderError) as caught:
        outcome(Task(id="t", status="Failed"), "x")
    assert caught.value.code == "generation_failed"
    with pytest.raises(ProviderError) as caught:
        outcome(Task(id="t", status="Task not found"), "x")
    assert (caught.value.status, caught.value.code) == (502, "task_not_found")
    with pytest.raises(ContentPolicyViolation):
        outcome(Task(id="t", status="Error", details="Content moderated by the safety system"), "x")


# -- errors ---------------------------------------------------------------------------------------

def test_validation_errors_are_400s_naming_the_field():
    body = {"detail": [{"type": "multiple_of", "loc": ["body", "width"], "msg": "Input should be a multiple of 16",
                        "input": 1000}, {"type": "missing", "loc": ["body", "prompt"], "msg": "Field required"}]}
    err = error_from_answer(422, msgspec.json.encode(body), "application/json")
    assert (err.status, err.param, err.type) == (400, "width", "invalid_request_error")
    assert err.message == ("black-forest-labs error: width: Input should be a multiple of 16; "
                           "prompt: Field required")


@pytest.mark.parametrize(("status", "detail", "type_", "code"), [
    (402, "Insufficient credits", "billing_error", "insufficient_credits"),
    (429, "You have exceeded the number of active tasks (24)", "rate_limit_error", "rate_limit_exceeded"),
    (403, "Not authenticated", "permission_error", None),
    (422, "Prompt too long", "invalid_request_error", None),
    (503, "Service unavailable", None, None),
])
def test_provider_errors_keep_status_and_detail(status, detail, type_, code):  # noqa: ANN001
    err = error_from_answer(status, msgspec.json.encode({"detail": detail}), "application/json")
    assert (err.status, err.message, err.code) == (status, f"black-forest-labs error: {detail}", code)
    assert err.type == (type_ or "provider_error")


def test_other_error_bodies():
    err = error_from_answer(502, b"<html>bad gateway</html>", "text/html")
    assert err.status == 502 and err.message == "black-forest-labs error: HTTP 502: <html>bad gateway</html>"
    err = error_from_answer(400, b'{"detail": "Request Moderated: input image"}', "application/json")
    assert isinstance(err, ContentPolicyViolation) and err.status == 400


# -- settings and docs ----------------------------------------------------------------------------

def test_every_declared_model_and_family_is_in_the_readme():
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in (*MODELS, *EDIT_MODELS, *(pattern for pattern, _ in FAMILIES)):
        assert f"`{name}`" in readme, name
