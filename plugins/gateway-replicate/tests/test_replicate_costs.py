"""What a Replicate request costs (gateway_replicate/prices.py): an official model's price per
output image, an estimate; a model billed by run time has no known cost."""
from __future__ import annotations

import pytest

from gateway_replicate.testing import install

H = {"x-portkey-provider": "replicate", "Authorization": "Bearer r8_test_key"}
GEN = "/v1/images/generations"


async def test_flux_schnell_is_priced_per_output_image_and_estimated(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                                     log_capture):
    install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "n": 2, "size": "1024x1024"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert len(fake_upstream.requests) == 1  # one prediction made both images
    assert resp.headers["x-gateway-cost"] == "0.006000"  # 2 x $0.003
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] == pytest.approx(0.006) and line["cost_exact"] is False


async def test_one_image_models_add_up_over_their_calls(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream)
    body = {"prompt": "a fox", "model": "black-forest-labs/flux-1.1-pro", "n": 2, "size": "1024x1024"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == "0.080000"  # two predictions at $0.04


async def test_a_model_billed_by_run_time_has_no_cost(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                      log_capture):
    install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "stability-ai/sdxl"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] is None and line["cost_exact"] is False
