"""The 'fallback' strategy plugin: the strategy contract, then its own behaviour."""
from __future__ import annotations

import pytest

import gateway_openai
import gateway_route_fallback
from gateway.testing import Reply
from gateway.testing.contracts import StrategyPluginContract

OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_openai, gateway_route_fallback]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}


class TestContract(StrategyPluginContract):
    mode = "fallback"
    entrypoint = "route-fallback"
    strategy_fields = {}


def config(**strategy) -> dict[str, str]:  # noqa: ANN003
    return TestContract().config_header(**strategy)


async def test_fallback_second_answers(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(429, json={"error": {"message": "x"}}), Reply(json=OK))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())
    assert resp.status == 200 and resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


async def test_fallback_stops_on_unlisted_status(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(400, json={"error": {"message": "bad"}}), Reply(json=OK))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"},
                                     headers=config(on_status_codes=[429, 503]))
    assert resp.status == 400 and len(fake_upstream.requests) == 1
