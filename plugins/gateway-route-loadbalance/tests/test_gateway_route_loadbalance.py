"""The 'loadbalance' strategy plugin: the strategy contract, then its own behaviour."""
from __future__ import annotations

import pytest

import gateway_openai
import gateway_route_loadbalance
from gateway.keys import GATEWAY
from gateway.testing import Reply
from gateway.testing.contracts import StrategyPluginContract

OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_openai, gateway_route_loadbalance]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}


class TestContract(StrategyPluginContract):
    mode = "loadbalance"
    entrypoint = "route-loadbalance"
    strategy_fields = {}


def config(**strategy) -> dict[str, str]:  # noqa: ANN003
    return TestContract().config_header(**strategy)


async def test_draws_are_repeatable_with_a_seeded_rng(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    import random

    fake_upstream.on("POST", "/v1/images/generations", Reply(json=OK))
    picks = []
    for _ in range(2):
        gateway_app[GATEWAY].registry.strategies["loadbalance"].rng = random.Random(42)
        fake_upstream.requests.clear()
        for _ in range(20):
            await (await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())).read()
        picks.append([r.headers["Authorization"] for r in fake_upstream.requests])
    assert picks[0] == picks[1] and len(set(picks[0])) == 2
