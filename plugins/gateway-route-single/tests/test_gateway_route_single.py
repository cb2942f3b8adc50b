"""The 'single' strategy plugin: installed, registered, and refused once disabled."""
from __future__ import annotations

import msgspec
import pytest

import gateway_openai
import gateway_route_single
from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.testing import Reply

OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_openai, gateway_route_single]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}


def config(**strategy) -> dict[str, str]:  # noqa: ANN003
    node = {"strategy": {"mode": "single", **strategy},
            "targets": [{"name": "a", "provider": "openai", "api_key": "sk-a"},
                        {"name": "b", "provider": "openai", "api_key": "sk-b"}]}
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


@pytest.mark.gateway_entrypoints
def test_plugin_is_installed(gateway_app):  # noqa: ANN001
    assert "single" in gateway_app[GATEWAY].registry.strategies
    names = [name for name, _ in gateway_app[GATEWAY].pm.list_name_plugin()]
    assert "route-single" in names


async def test_disabled_plugin_makes_configs_using_it_a_400(aiohttp_client, fake_upstream):  # noqa: ANN001
    app = create_app({"plugins": {"disable": ["route-single"]},
                      "providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}, load_entrypoints=True)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())
    assert resp.status == 400
    assert "unknown strategy mode 'single'" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


async def test_single_uses_the_first_target(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(500, json={"error": {"message": "x"}}))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())
    assert resp.status == 500
    assert [r.headers["Authorization"] for r in fake_upstream.requests] == ["Bearer sk-a"]
