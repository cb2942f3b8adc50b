"""What a Replicate request costs (gateway_replicate/prices.py): an official model's price per
output image, an estimate; a model billed by run time has no known cost."""
from __future__ import annotations

import pytest

from gateway_replicate.testing import install

H = {"x-portkey-provider": "replicate", "Authorization": "Bearer r8_test_key"}
GEN = "/v1/images/generations"


async def test_flux_schnell_is_priced_per_output_image_and_estimated(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                                     log_capture, gateway_images):
    fake = install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "n": 2, "size": "1024x1024"}, headers=H)
    assert resp.status == 200, await resp.text()
    # One prediction made both images (one create, billed per output); each output is then
    # fetched once, without the key, for the gateway's own URL.
    [pred] = fake.predictions.values()
    assert [r.method for r in fake_upstream.requests] == ["POST", "GET", "GET"]
    assert sorted(r.path for r in fake.deliveries()) == [f"/delivery/{pred.id}/out-{i}.png" for i in (0, 1)]
    assert not [r for r in fake.deliveries() if "Authorization" in r.headers]
    assert await gateway_images([d["url"] for d in (await resp.json())["data"]]) == fake.served[0]
    assert resp.headers["x-gateway-cost"] == "0.006000"  # 2 x $0.003
    [line] = [e for e in log_capture.events("request.finished") if e["path"] == GEN]  # not the images' GETs
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
