"""What a Bedrock request costs (gateway_bedrock/prices.py): no Bedrock price is shipped (none
confirmed), so a request's cost is unknown unless the settings price the model; a settings
pattern prices the region-prefixed IDs too."""
from __future__ import annotations

from typing import Any

import pytest
from gateway_bedrock.prices import PRICES
from gateway_bedrock.testing import ACCESS_KEY, SECRET_KEY

SIGV4 = {"x-portkey-provider": "bedrock", "x-portkey-aws-access-key-id": ACCESS_KEY,
         "x-portkey-aws-secret-access-key": SECRET_KEY}
GEN = "/v1/images/generations"
CORE = "stability.stable-image-core-v1:1"


@pytest.fixture
def gateway_settings(gateway_settings: dict[str, Any]) -> dict[str, Any]:
    """The fake Bedrock, and one model priced by the operator (a pattern, as the README shows)."""
    return {**gateway_settings, "prices": {"bedrock": {f"*{CORE}": {"per_image": 0.04}}}}


def test_no_price_is_shipped() -> None:
    assert PRICES == ()


async def test_a_model_the_settings_do_not_price_has_no_cost(gateway_client, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a red fox", "n": 2}, headers=SIGV4)  # Nova Canvas
    assert resp.status == 200, await resp.text()
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] is None and line["cost_exact"] is False


@pytest.mark.parametrize("model", [CORE, "us." + CORE])
async def test_a_settings_price_is_an_estimate_per_image(gateway_client, log_capture, model):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a red fox", "model": model, "n": 2}, headers=SIGV4)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == "0.080000"  # two calls (one image each) at $0.04
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] == pytest.approx(0.08) and line["cost_exact"] is False
