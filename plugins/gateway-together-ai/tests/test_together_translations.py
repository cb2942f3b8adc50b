"""The Together AI provider's translations in process (no server): requests built, answers read."""
from __future__ import annotations

import msgspec
import pytest

from gateway.sdk import PROXY, ContentPolicyViolation, MalformedAnswer, ProviderError
from gateway.testing import answer, make_attempt
from gateway_together_ai import TogetherProvider

SCHNELL = "black-forest-labs/FLUX.1-schnell"
PRO = "black-forest-labs/FLUX.1.1-pro"


def test_n3_on_schnell_is_one_call():
    attempt = make_attempt(TogetherProvider, body={"prompt": "a fox", "n": 3, "size": "1024x768",
                                                   "response_format": "b64_json", "steps": 4}, api_key="tg-unit")
    [part] = attempt.plan.parts
    req = attempt.provider.build_generation(attempt, part)
    assert (req.method, req.url) == ("POST", "https://api.together.xyz/v1/images/generations")
    assert msgspec.json.decode(req.body) == {"model": SCHNELL, "prompt": "a fox", "n": 3, "width": 1024,
                                             "height": 768, "response_format": "base64", "steps": 4}
    assert req.headers["Authorization"] == "Bearer tg-unit"
    assert req.headers["Content-Type"] == "application/json"


def test_n3_on_pro_is_three_calls_of_the_fitted_size():
    attempt = make_attempt(TogetherProvider, body={"prompt": "a fox", "model": PRO, "n": 3, "size": "1792x1024"},
                           settings={"base_url": "https://together.internal.example/v1"})
    bodies = [msgspec.json.decode(attempt.provider.build_generation(attempt, part).body)
              for part in attempt.plan.parts]
    assert [(b["n"], b["width"], b["height"]) for b in bodies] == [(1, 1440, 832)] * 3
    assert attempt.plan.adjusted == ["size=1792x1024->1440x832"]
    assert attempt.provider.build_generation(attempt, attempt.plan.parts[0]).url == (
        "https://together.internal.example/v1/images/generations")


def test_parse_keeps_togethers_index_order():
    attempt = make_attempt(TogetherProvider, body={"prompt": "a fox", "n": 2})
    doc = {"id": "img-1", "model": SCHNELL, "object": "list", "data": [
        {"index": 1, "url": "https://api.together.ai/shrt/b", "type": "url"},
        {"index": 0, "b64_json": "iVBORw0KGgo=", "type": "b64_json"},
    ]}
    result = attempt.provider.parse_generation(attempt, attempt.plan.parts[0], answer(200, doc))
    assert [(img.b64, img.url) for img in result.images] == [("iVBORw0KGgo=", None),
                                                             (None, "https://api.together.ai/shrt/b")]


@pytest.mark.parametrize(("doc", "what"), [
    ({"id": "img-1", "data": []}, "no `data` list"),
    ({"data": [{"index": 0, "type": "b64_json"}]}, "neither `b64_json` nor `url`"),
])
def test_parse_refuses_what_together_does_not_document(doc, what):  # noqa: ANN001
    attempt = make_attempt(TogetherProvider)
    with pytest.raises(MalformedAnswer, match=what):
        attempt.provider.parse_generation(attempt, attempt.plan.parts[0], answer(200, doc))


def test_errors_keep_status_and_safety_refusals_have_one_code():
    provider = make_attempt(TogetherProvider).provider
    err = provider.upstream_error(answer(429, {"id": "e", "error": {"message": "slow down", "type": "rate_limit"}},
                                         {"Retry-After": "3"}))
    assert isinstance(err, ProviderError) and not isinstance(err, ContentPolicyViolation)
    assert (err.status, err.message) == (429, "together-ai error: slow down")
    assert err.upstream_headers["Retry-After"] == "3"
    refusal = provider.upstream_error(answer(500, {"error": {"message": "NSFW content detected"}}))
    assert isinstance(refusal, ContentPolicyViolation)
    assert (refusal.status, refusal.code) == (400, "content_policy_violation")


def test_passthrough_goes_below_the_v1_base_url():
    attempt = make_attempt(TogetherProvider, endpoint=PROXY, method="GET", path="/models",
                           headers={"x-portkey-provider": "together-ai"}, api_key="tg-unit")
    req = attempt.provider.build_proxy(attempt)
    assert (req.method, req.url) == ("GET", "https://api.together.xyz/v1/models")
    assert req.headers["Authorization"] == "Bearer tg-unit"
