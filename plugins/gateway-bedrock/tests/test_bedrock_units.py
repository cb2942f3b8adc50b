"""The Bedrock provider's translations in process (no server): ``make_attempt`` and ``answer``."""
from __future__ import annotations

import base64

import msgspec
import pytest
from gateway_bedrock.provider import BedrockProvider
from gateway_bedrock.testing import ACCESS_KEY, API_KEY, SECRET_KEY

from gateway.sdk import PROXY, AuthError, BadParam, MalformedAnswer
from gateway.testing import answer, make_attempt
from gateway.testing.provider_contract import make_png

NOVA = "amazon.nova-canvas-v1:0"
SIGV4 = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}


def test_build_generation_goes_to_the_regions_runtime_unsigned():
    attempt = make_attempt(BedrockProvider, body={"model": NOVA, "n": 2, "size": "1280x720"},
                           options={**SIGV4, "aws_region": "eu-west-1"}, api_key=None)
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.method == "POST"
    assert req.url == "https://bedrock-runtime.eu-west-1.amazonaws.com/model/amazon.nova-canvas-v1:0/invoke"
    assert msgspec.json.decode(req.body) == {
        "taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a lighthouse at dusk"},
        "imageGenerationConfig": {"numberOfImages": 2, "width": 1280, "height": 720}}
    assert (req.headers["Content-Type"], req.headers["Accept"]) == ("application/json", "application/json")
    assert "Authorization" not in req.headers  # authorize() signs, last


async def test_authorize_signs_with_the_attempts_keys_and_region():
    attempt = make_attempt(BedrockProvider, body={"model": NOVA}, options={**SIGV4, "aws_region": "eu-west-1"},
                           api_key="sk-placeholder")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    await attempt.provider.authorize(attempt, req)
    assert req.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-west-1/bedrock/aws4_request" in req.headers["Authorization"]
    assert req.headers["Host"] == "bedrock-runtime.eu-west-1.amazonaws.com"
    assert "X-Amz-Date" in req.headers


async def test_authorize_sends_a_provider_key_as_bearer():
    attempt = make_attempt(BedrockProvider, body={"model": NOVA}, api_key=API_KEY)
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    await attempt.provider.authorize(attempt, req)
    assert req.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "X-Amz-Date" not in req.headers


async def test_own_credentials_are_refused_for_a_custom_host(monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    attempt = make_attempt(BedrockProvider, body={"model": NOVA}, api_key=None,
                           custom_host="https://bedrock.example.test")
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert req.url.startswith("https://bedrock.example.test/model/")  # a custom host is used as it is
    with pytest.raises(AuthError, match="custom host"):
        await attempt.provider.authorize(attempt, req)
    assert "Authorization" not in req.headers


def test_nova_ratio_cut_replaces_the_size_note():
    attempt = make_attempt(BedrockProvider, body={"model": NOVA, "size": "4096x512"})
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    config = msgspec.json.decode(req.body)["imageGenerationConfig"]
    assert (config["width"], config["height"]) == (2048, 512)
    assert [a for a in attempt.plan.adjusted if a.startswith("size=")] == ["size=4096x512->2048x512"]


def test_native_parameter_of_another_family_is_dropped_or_refused():
    attempt = make_attempt(BedrockProvider, body={"model": NOVA, "steps": 30})
    attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert "steps=(dropped)" in attempt.plan.adjusted
    attempt = make_attempt(BedrockProvider, body={"model": NOVA, "steps": 30},
                           headers={"x-portkey-strict-params": "true"})
    with pytest.raises(BadParam) as e:
        attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert e.value.param == "steps"


def test_parse_generation_reads_amazon_images_and_counts_them():
    attempt = make_attempt(BedrockProvider, body={"model": NOVA})
    part = attempt.plan.parts[0]
    png = make_png(1)
    result = attempt.provider.parse_generation(
        attempt, part, answer(200, {"images": [base64.b64encode(png).decode()]}))
    assert [base64.b64decode(img.b64) for img in result.images] == [png]
    with pytest.raises(MalformedAnswer, match="asked for 1 images, got 2"):
        attempt.provider.parse_generation(
            attempt, part, answer(200, {"images": [base64.b64encode(png).decode()] * 2}))


def test_upstream_error_keeps_status_type_and_headers():
    provider = make_attempt(BedrockProvider).provider
    err = provider.upstream_error(answer(429, {"message": "Too many requests"}, headers={
        "x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "Retry-After": "3"}))
    assert (err.status, err.type, err.message) == (429, "ThrottlingException", "bedrock error: Too many requests")
    assert err.upstream_headers["Retry-After"] == "3"


def test_build_proxy_keeps_the_raw_path_and_drops_client_auth():
    body = b'{"prompt": "a red fox"}'
    attempt = make_attempt(BedrockProvider, endpoint=PROXY, method="POST",
                           path="/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.x/invoke",
                           query_string="b=2", body=body, options=SIGV4,
                           headers={"Content-Type": "application/json", "X-Amz-Date": "20000101T000000Z",
                                    "Authorization": "Bearer sk-placeholder", "x-portkey-provider": "bedrock"})
    req = attempt.provider.build_proxy(attempt)
    assert req.url == ("https://bedrock-runtime.us-east-1.amazonaws.com"
                       "/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.x/invoke?b=2")
    assert req.body == body and req.decompress is False
    assert "X-Amz-Date" not in req.headers and "Authorization" not in req.headers
    assert not [k for k in req.headers if k.lower().startswith("x-portkey-")]
    assert req.headers["Accept-Encoding"] == "identity"


def test_passthrough_declarations():
    assert BedrockProvider.proxy_reads_body is True
    assert {"accept", "x-amzn-bedrock-guardrailidentifier"} <= set(BedrockProvider.cache_vary_headers)
    assert "x-amzn-requestid" in BedrockProvider.volatile_headers
