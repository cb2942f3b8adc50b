"""The 'single' strategy plugin: the strategy contract, then its own behaviour."""
from __future__ import annotations

import pytest

import gateway_openai
import gateway_route_single
from gateway.testing import Reply
from gateway.testing.contracts import StrategyPluginContract

OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_openai, gateway_route_single]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}


class TestContract(StrategyPluginContract):
    mode = "single"
    entrypoint = "route-single"
    strategy_fields = {}


def config(**strategy) -> dict[str, str]:  # noqa: ANN003
    return TestContract().config_header(**strategy)


async def test_single_uses_the_first_target(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(500, json={"error": {"message": "x"}}))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())
    assert resp.status == 500
    assert [r.headers["Authorization"] for r in fake_upstream.requests] == ["Bearer sk-a"]
