"""The 'fallback' strategy plugin: installed, registered, and refused once disabled."""
from __future__ import annotations

import msgspec
import pytest

import gateway_openai
import gateway_route_fallback
from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.testing import Reply

OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_openai, gateway_route_fallback]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}


def config(**strategy) -> dict[str, str]:  # noqa: ANN003
    node = {"strategy": {"mode": "fallback", **strategy},
            "targets": [{"name": "a", "provider": "openai", "api_key": "sk-a"},
                        {"name": "b", "provider": "openai", "api_key": "sk-b"}]}
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


@pytest.mark.gateway_entrypoints
def test_plugin_is_installed(gateway_app):  # noqa: ANN001
    assert "fallback" in gateway_app[GATEWAY].registry.strategies
    names = [name for name, _ in gateway_app[GATEWAY].pm.list_name_plugin()]
    assert "route-fallback" in names


async def test_disabled_plugin_makes_configs_using_it_a_400(aiohttp_client, fake_upstream):  # noqa: ANN001
    app = create_app({"plugins": {"disable": ["route-fallback"]},
                      "providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}, load_entrypoints=True)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())
    assert resp.status == 400
    assert "unknown strategy mode 'fallback'" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


async def test_fallback_second_answers(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(429, json={"error": {"message": "x"}}), Reply(json=OK))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())
    assert resp.status == 200 and resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


async def test_fallback_stops_on_unlisted_status(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(400, json={"error": {"message": "bad"}}), Reply(json=OK))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"},
                                     headers=config(on_status_codes=[429, 503]))
    assert resp.status == 400 and len(fake_upstream.requests) == 1
