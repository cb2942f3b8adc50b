"""What a Together request costs (gateway_together_ai/prices.py): the megapixels of each image
made times the model's rate, an estimate; a model without a confirmed rate, or a request without
a size, has no known cost."""
from __future__ import annotations

import pytest

from gateway_together_ai.testing import GENERATIONS as GEN

H = {"x-portkey-provider": "together-ai", "Authorization": "Bearer tg-key"}


async def test_flux_schnell_is_priced_by_megapixel_and_estimated(gateway_client, fake_upstream,  # noqa: ANN001
                                                                 log_capture):
    body = {"prompt": "a fox", "n": 2, "size": "1024x768", "response_format": "b64_json"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert len(fake_upstream.requests) == 1
    # Two images of 0.75 megapixel at $0.0027 a megapixel.
    assert resp.headers["x-gateway-cost"] == "0.004050"
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] == pytest.approx(0.00405) and line["cost_exact"] is False


async def test_the_free_endpoint_costs_nothing(gateway_client):  # noqa: ANN001
    body = {"prompt": "a fox", "model": "black-forest-labs/FLUX.1-schnell-Free", "size": "1024x1024",
            "response_format": "b64_json"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == "0.000000"


@pytest.mark.parametrize("body", [
    pytest.param({"model": "black-forest-labs/FLUX.1-dev", "size": "1024x1024"}, id="rate-not-confirmed"),
    pytest.param({}, id="no-size"),
])
async def test_unknown_cost_without_a_rate_or_a_size(gateway_client, log_capture, body):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json", **body}, headers=H)
    assert resp.status == 200, await resp.text()
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] is None and line["cost_exact"] is False
