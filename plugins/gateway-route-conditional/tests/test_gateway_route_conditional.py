"""The 'conditional' strategy plugin: the strategy contract, its query language, then its routing."""
from __future__ import annotations

from typing import Any

import msgspec
import pytest

import gateway_route_conditional
from gateway.testing import Reply
from gateway.testing.contracts import IMAGES, StrategyPluginContract
from gateway_route_conditional import query

T = StrategyPluginContract.target
CONDITIONS = [
    {"query": {"metadata.tier": "pro"}, "then": "pro"},
    {"query": {"$and": [{"params.n": {"$gte": 2}}, {"params.model": {"$in": ["fake-image"]}}]}, "then": "bulk"},
    {"query": {"$or": [{"params.size": {"$regex": "^1792"}}, {"metadata.region": {"$nin": ["eu", "us"]}}]},
     "then": "wide"},
    {"query": {"url.pathname": {"$eq": "/v1/models"}}, "then": "pro"},
    {"query": {"metadata.score": {"$lt": 10}, "params.quality": {"$ne": "hd"}}, "then": "cheap"},
]
TARGETS = [T("pro"), T("bulk"), T("wide"), T("cheap"), T("base")]


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


class TestConditional(StrategyPluginContract):
    mode = "conditional"
    entrypoint = "route-conditional"
    plugins = [gateway_route_conditional]
    strategy_fields = {"conditions": [{"query": {"metadata.x": "1"}, "then": "b"}], "default": "a"}

    def routed(self, default: str | None = "base") -> dict[str, str]:
        return self.config_header(TARGETS, conditions=CONDITIONS, default=default)

    @pytest.mark.parametrize(
        ("metadata", "body", "expect"),
        [
            ({"tier": "pro"}, {"prompt": "x"}, "pro"),
            ({"region": "eu"}, {"prompt": "x", "n": 3, "model": "fake-image"}, "bulk"),
            ({"region": "eu"}, {"prompt": "x", "n": 1, "model": "fake-hd"}, "base"),
            ({"region": "eu"}, {"prompt": "x", "size": "1792x1024"}, "wide"),
            ({"region": "apac"}, {"prompt": "x"}, "wide"),
            ({"region": "us", "score": "3"}, {"prompt": "x"}, "cheap"),
            ({"region": "us", "score": "3"}, {"prompt": "x", "quality": "hd"}, "base"),
            ({"region": "us", "score": "30"}, {"prompt": "x"}, "base"),
        ],
    )
    async def test_the_first_matching_condition_picks_the_target(
            self, gateway_client: Any, fake_upstream: Any, metadata: dict[str, str], body: dict[str, Any],
            expect: str) -> None:
        headers = {**self.routed(), "x-portkey-metadata": msgspec.json.encode(metadata).decode()}
        resp = await gateway_client.post(IMAGES, json=body, headers=headers)
        assert resp.status == 200, await resp.text()
        assert self.keys_sent(fake_upstream) == [expect]

    async def test_url_pathname_and_no_default(self, gateway_client: Any, fake_upstream: Any) -> None:
        fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
        headers = {**self.routed(), "x-portkey-metadata": '{"region": "us"}'}
        resp = await gateway_client.get("/v1/models", headers=headers)
        assert resp.status == 200
        assert fake_upstream.last.headers["Authorization"] == "Bearer sk-pro"
        headers = {**self.routed(default=None), "x-portkey-metadata": '{"region": "us"}'}
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=headers)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "no_route"

    @pytest.mark.parametrize(
        ("strategy", "needle"),
        [
            ({"conditions": [{"query": {"metadata.a": {"$near": 1}}, "then": "t"}]},
             "unknown operator '$near' - at `$.strategy.conditions[0].query.metadata.a.$near`"),
            ({"conditions": [{"query": {"$xor": []}, "then": "t"}]}, "unknown operator '$xor'"),
            ({"conditions": [{"query": {}, "then": "missing"}]}, "no target is named 'missing'"),
            ({"conditions": [{"query": {}}]}, "needs `query` and `then`"),
            ({"conditions": [], "default": "t"}, "needs `conditions`"),
            ({"conditions": [{"query": {"a": {"$regex": "("}}, "then": "t"}]}, "bad regular"),
            ({"conditions": "all of them"}, "at `$.strategy.conditions`"),
        ],
    )
    async def test_a_bad_condition_is_a_400_naming_it(self, gateway_client: Any, fake_upstream: Any,
                                                      strategy: dict[str, Any], needle: str) -> None:
        headers = self.config_header([T("t")], **{"conditions": None, "default": None, **strategy})
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=headers)
        assert resp.status == 400
        assert needle in (await resp.json())["error"]["message"]
        assert fake_upstream.requests == []
