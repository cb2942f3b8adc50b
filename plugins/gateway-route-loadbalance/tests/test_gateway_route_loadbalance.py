"""The 'loadbalance' strategy plugin: installed, registered, and refused once disabled."""
from __future__ import annotations

import msgspec
import pytest

import gateway_openai
import gateway_route_loadbalance
from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.testing import Reply

OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_openai, gateway_route_loadbalance]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}


def config(**strategy) -> dict[str, str]:  # noqa: ANN003
    node = {"strategy": {"mode": "loadbalance", **strategy},
            "targets": [{"name": "a", "provider": "openai", "api_key": "sk-a"},
                        {"name": "b", "provider": "openai", "api_key": "sk-b"}]}
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


@pytest.mark.gateway_entrypoints
def test_plugin_is_installed(gateway_app):  # noqa: ANN001
    assert "loadbalance" in gateway_app[GATEWAY].registry.strategies
    names = [name for name, _ in gateway_app[GATEWAY].pm.list_name_plugin()]
    assert "route-loadbalance" in names


async def test_disabled_plugin_makes_configs_using_it_a_400(aiohttp_client, fake_upstream):  # noqa: ANN001
    app = create_app({"plugins": {"disable": ["route-loadbalance"]},
                      "providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}, load_entrypoints=True)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())
    assert resp.status == 400
    assert "unknown strategy mode 'loadbalance'" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


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
