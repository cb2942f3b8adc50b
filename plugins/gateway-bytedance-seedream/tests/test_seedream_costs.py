"""What a Seedream request costs (gateway_bytedance_seedream/prices.py): BytePlus's price per
generated image, an estimate, times the images each call made; Volcengine's CNY-billed IDs are
not priced."""
from __future__ import annotations

import pytest

from gateway_bytedance_seedream.testing import KEY, install

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "bytedance-seedream", "Authorization": f"Bearer {KEY}"}
CN_KEY = "ark-cn-key"


@pytest.fixture
def gateway_settings(fake_upstream, ark):  # noqa: ANN001, ANN201
    install(fake_upstream, key=CN_KEY, prefix="/cn/api/v3", platform="volcengine")
    return {"providers": {"bytedance-seedream": {
        "base_url": fake_upstream.url + "/api/v3",
        "regions": {"ap-southeast-1": fake_upstream.url + "/api/v3", "cn-beijing": fake_upstream.url + "/cn/api/v3"},
    }}}


async def test_the_default_model_is_priced_per_image_and_estimated(gateway_client, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == "0.040000"  # seedream-4-5: $0.04 an image
    line = log_capture.events("request.finished")[-1]
    assert line["model"] == "seedream-4-5-251128"
    assert line["cost"] == pytest.approx(0.04) and line["cost_exact"] is False


@pytest.mark.parametrize(("model", "cost"), [("seedream-4-0-250828", "0.030000"),
                                             ("seedream-5-0-260128", "0.035000")])
async def test_each_family_has_its_own_price(gateway_client, model, cost):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": model, "size": "2560x1440",
                                                "response_format": "b64_json"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == cost


async def test_n_calls_and_a_group_generation_count_every_image_made(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "n": 3, "response_format": "b64_json"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert len(fake_upstream.requests) == 3 and resp.headers["x-gateway-cost"] == "0.120000"
    # One call that made a set of two images is billed for both.
    body = {"prompt": "two panels", "sequential_image_generation": "auto",
            "sequential_image_generation_options": {"max_images": 2}, "response_format": "b64_json"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 2 and resp.headers["x-gateway-cost"] == "0.080000"


async def test_volcengine_ids_are_not_priced(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    headers = {**H, "Authorization": f"Bearer {CN_KEY}", "x-portkey-seedream-region": "cn-beijing"}
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json()["model"] == "doubao-seedream-4-5-251128"
    assert "x-gateway-cost" not in resp.headers  # billed in CNY at Volcengine's own price: unknown
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] is None and line["cost_exact"] is False
