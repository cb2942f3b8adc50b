"""The request's log line names the model sent upstream (whoever picked it), says why each
failed try failed, and is a warning when the answer is a 5xx."""
from __future__ import annotations

import msgspec
import pytest

from gateway.testing import Reply, fake_provider

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-test"}


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "configs": {"pc-hd": {"provider": "fake", "api_key": "sk-saved", "override_params": {"model": "fake-hd"}}}}


@pytest.mark.parametrize(("body", "headers", "model"), [
    ({"prompt": "a cat"}, H, "fake-image"),                                  # the provider's default
    ({"prompt": "a cat", "model": "fake-hd"}, H, "fake-hd"),                # the caller's
    ({"prompt": "a cat"}, {"x-portkey-config": "pc-hd"}, "fake-hd"),        # a saved config's override
])
async def test_the_log_line_names_the_model_sent(gateway_client, fake_upstream, log_capture, body, headers,
                                                 model):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post(GEN, json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json().get("model", "fake-image") == model  # unnamed: the provider's default
    [line] = log_capture.events("request.finished")
    assert line["model"] == model and line["level"] == "info"


async def test_failed_tries_say_why_and_a_5xx_is_a_warning(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(503, json={"error": {"message": "overloaded", "code": "overloaded"}}),
                     Reply(500, json={"error": {"message": "boom"}}))
    cfg = msgspec.json.encode({"provider": "fake", "api_key": "sk-x", "retry": {"attempts": 1}}).decode()
    resp = await gateway_client.post(GEN, json={"prompt": "a cat"}, headers={"x-portkey-config": cfg})
    assert resp.status == 500
    [line] = log_capture.events("request.finished")
    assert line["level"] == "warning"
    assert [(t["status"], t["error"], t["model"]) for t in line["tries"]] == [
        (503, "overloaded", "fake-image"), (500, "provider_error", "fake-image")]


async def test_the_gateways_own_time_is_a_header_and_on_the_log_line(gateway_client, fake_upstream,
                                                                     log_capture):  # noqa: ANN001
    # The provider takes 300 ms: the overhead leaves that out.
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}, delay=0.3))
    resp = await gateway_client.post(GEN, json={"prompt": "a cat", "response_format": "b64_json"}, headers=H)
    assert resp.status == 200, await resp.text()
    overhead = float(resp.headers["x-gateway-overhead-ms"])
    [line] = log_capture.events("request.finished")
    assert line["upstream_ms"] >= 300 and line["ms"] >= 300
    assert 0 <= overhead < 150 and 0 <= line["overhead_ms"] < 150
    assert abs(line["ms"] - line["upstream_ms"] - line["overhead_ms"]) < 0.05
    # Errors the gateway makes itself carry it too.
    resp = await gateway_client.post(GEN, json={}, headers=H)
    assert resp.status == 400 and float(resp.headers["x-gateway-overhead-ms"]) >= 0
