"""The 'conditional' strategy plugin: the strategy contract, then its own behaviour."""
from __future__ import annotations

import pytest

import gateway_openai
import gateway_route_conditional
from gateway_route_conditional import query
from gateway.testing import Reply
from gateway.testing.contracts import StrategyPluginContract

OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_openai, gateway_route_conditional]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}


class TestContract(StrategyPluginContract):
    mode = "conditional"
    entrypoint = "route-conditional"
    strategy_fields = {"conditions": [{"query": {"metadata.x": "1"}, "then": "b"}], "default": "a"}


def config(**strategy) -> dict[str, str]:  # noqa: ANN003
    return TestContract().config_header(**strategy)


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
