"""What a Segmind request costs (gateway_segmind/prices.py): the listed models are billed by GPU
time, so no price is shipped and a request's cost is unknown; a price the operator sets in the
settings is an estimate per image made."""
from __future__ import annotations

import pytest

from gateway_segmind.prices import PRICES
from gateway_segmind.testing import install

KEY = "SG_test_0123456789"
H = {"x-portkey-provider": "segmind", "Authorization": f"Bearer {KEY}"}
GEN = "/v1/images/generations"


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    install(fake_upstream)
    return {"providers": {"segmind": {"base_url": fake_upstream.url + "/v1"}},
            "prices": {"segmind": {"ssd-1b": {"per_image": 0.004}}}}


def test_no_price_is_shipped() -> None:
    assert PRICES == ()


async def test_the_default_model_billed_by_gpu_time_has_no_cost(gateway_client, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "size": "1024x1024"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.events("request.finished")[-1]
    assert line["model"] == "sdxl1.0-txt2img"
    assert line["cost"] is None and line["cost_exact"] is False


async def test_a_settings_price_counts_every_sample(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    body = {"prompt": "a fox", "model": "ssd-1b", "n": 2, "size": "1024x1024"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert len(fake_upstream.requests) == 1  # one call, `samples: 2`
    assert resp.headers["x-gateway-cost"] == "0.008000"
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] == pytest.approx(0.008) and line["cost_exact"] is False
