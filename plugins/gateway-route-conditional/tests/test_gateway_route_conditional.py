"""The 'conditional' strategy plugin: installed, registered, and refused once disabled."""
from __future__ import annotations

import msgspec
import pytest

import gateway_openai
import gateway_route_conditional
from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.testing import Reply

OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_openai, gateway_route_conditional]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}


def config(**strategy) -> dict[str, str]:  # noqa: ANN003
    node = {"strategy": {"mode": "conditional", **strategy},
            "targets": [{"name": "a", "provider": "openai", "api_key": "sk-a"},
                        {"name": "b", "provider": "openai", "api_key": "sk-b"}]}
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


@pytest.mark.gateway_entrypoints
def test_plugin_is_installed(gateway_app):  # noqa: ANN001
    assert "conditional" in gateway_app[GATEWAY].registry.strategies
    names = [name for name, _ in gateway_app[GATEWAY].pm.list_name_plugin()]
    assert "route-conditional" in names


async def test_disabled_plugin_makes_configs_using_it_a_400(aiohttp_client, fake_upstream):  # noqa: ANN001
    app = create_app({"plugins": {"disable": ["route-conditional"]},
                      "providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}, load_entrypoints=True)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=config())
    assert resp.status == 400
    assert "unknown strategy mode 'conditional'" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []
from gateway_route_conditional import query  # noqa: E402


@pytest.mark.parametrize(
    ("q", "ctx", "expect"),
    [
        ({"metadata.t": "pro"}, {"metadata": {"t": "pro"}}, True),
        ({"metadata.t": "pro"}, {"metadata": {}}, False),
        ({"params.n": {"$gt": 1, "$lte": 4}}, {"params": {"n": 4}}, True),
        ({"params.n": {"$gt": "x"}}, {"params": {"n": 4}}, False),
        ({"params.model": {"$nin": ["a"]}}, {"params": {}}, True),
        ({"params.model": {"$ne": "a"}}, {"params": {"model": "a"}}, False),
        ({"params.a.b": {"$eq": 1}}, {"params": {"a": {"b": 1}}}, True),
        ({"$or": [{"metadata.t": "x"}, {"metadata.u": {"$regex": "^e"}}]}, {"metadata": {"u": "eu"}}, True),
        ({"$and": [{"metadata.t": "x"}, {"metadata.u": "eu"}]}, {"metadata": {"u": "eu"}}, False),
    ],
)
def test_query_semantics(q, ctx, expect):  # noqa: ANN001
    query.check(q)
    assert query.matches(q, ctx) is expect


async def test_condition_picks_named_target(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(json=OK))
    headers = {**config(conditions=[{"query": {"metadata.tier": "pro"}, "then": "b"}], default="a"),
               "x-portkey-metadata": '{"tier": "pro"}'}
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=headers)
    assert resp.status == 200 and fake_upstream.last.headers["Authorization"] == "Bearer sk-b"
