"""Routing configs end to end: strategies alone and nested, retries, timeouts, fallbacks."""
from __future__ import annotations

import random

import msgspec
import pytest

from gateway.keys import GATEWAY
from gateway.testing import Reply, openai_fake

GEN = "/v1/images/generations"
OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


def cfg(config: dict) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode(config).decode()}


def leaf(key: str, **kw) -> dict:  # noqa: ANN003
    return {"provider": "openai", "api_key": key, **kw}


@pytest.fixture
def sleeps(gateway_app):  # noqa: ANN001, ANN201
    """Retries record their waits here instead of sleeping."""
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    gateway_app[GATEWAY].sleep = sleep
    return waited


def keys(upstream) -> list[str]:  # noqa: ANN001
    return [r.headers["Authorization"].removeprefix("Bearer ") for r in upstream.requests]


async def test_fallback_moves_on_after_non_2xx(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "down"}}), Reply(json=OK))
    config = {"strategy": {"mode": "fallback"}, "targets": [leaf("a"), leaf("b")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 200 and await resp.json() == {**OK, "provider": "openai"}
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert keys(fake_upstream) == ["a", "b"]
    line = log_capture.events("request.finished")[-1]
    assert line["attempts"] == 2 and line["path_taken"] == ["config.targets[0]", "config.targets[1]"]
    assert [t["status"] for t in line["tries"]] == [500, 200]


async def test_fallback_on_status_codes_only(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "down"}}), Reply(json=OK))
    config = {"strategy": {"mode": "fallback", "on_status_codes": [429]}, "targets": [leaf("a"), leaf("b")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 500
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert keys(fake_upstream) == ["a"]


async def test_fallback_all_fail_returns_last(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "one"}}), Reply(503, json={"error": {"message": "two"}}))
    config = {"strategy": {"mode": "fallback"}, "targets": [leaf("a"), leaf("b")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 503
    assert (await resp.json())["error"]["message"] == "openai error: two"
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


async def test_fallback_skips_targets_that_cannot_serve(gateway_client, fake_upstream):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "not-installed", "api_key": "x"}, leaf("b")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 200
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    config = {"strategy": {"mode": "fallback"}, "targets": [{"provider": "not-installed", "api_key": "x"}]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 400 and "not-installed" in (await resp.json())["error"]["message"]


async def test_timeout_then_fallback(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK, delay=2), Reply(json=OK))
    config = {"strategy": {"mode": "fallback"}, "request_timeout": 100, "targets": [leaf("slow"), leaf("fast")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 200
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


async def test_connection_reset_then_fallback(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(reset="before"), Reply(json=OK))
    config = {"strategy": {"mode": "fallback"}, "targets": [leaf("a"), leaf("b")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 200 and keys(fake_upstream) == ["a", "b"]


async def test_passthrough_body_is_resent_to_the_next_target(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/variations", Reply(502, body=b"bad gateway"), Reply(json=OK))
    payload = bytes(range(256)) * 100
    config = {"strategy": {"mode": "fallback"}, "targets": [leaf("a"), leaf("b")]}
    resp = await gateway_client.post("/v1/images/variations", data=payload,
                                     headers={**cfg(config), "Content-Type": "application/octet-stream"})
    assert resp.status == 200
    assert [r.body for r in fake_upstream.requests] == [payload, payload]


async def test_single(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK))
    config = {"strategy": {"mode": "single"}, "targets": [leaf("only"), leaf("never")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 200 and keys(fake_upstream) == ["only"]
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[0]"


async def test_loadbalance_follows_weights(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    gateway_app[GATEWAY].registry.strategies["loadbalance"].rng = random.Random(7)
    fake_upstream.on("POST", GEN, Reply(json=OK))
    config = {"strategy": {"mode": "loadbalance"},
              "targets": [leaf("light", weight=1), leaf("heavy", weight=3), leaf("never", weight=0)]}
    n = 800
    for _ in range(n):
        resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
        assert resp.status == 200
        await resp.read()
    got = keys(fake_upstream)
    assert "never" not in got
    share = got.count("heavy") / n
    # binomial sd = sqrt(.75 * .25 / 800) ~ 0.015: four sd either way
    assert 0.69 < share < 0.81, share


async def test_loadbalance_has_no_failover(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "down"}}))
    config = {"strategy": {"mode": "loadbalance"}, "targets": [leaf("a"), leaf("b")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 500 and len(fake_upstream.requests) == 1


CONDITIONAL = {
    "strategy": {
        "mode": "conditional",
        "conditions": [
            {"query": {"metadata.tier": "pro"}, "then": "pro"},
            {"query": {"$and": [{"params.n": {"$gte": 2}}, {"params.model": {"$in": ["dall-e-2"]}}]}, "then": "bulk"},
            {"query": {"$or": [{"params.size": {"$regex": "^1792"}}, {"metadata.region": {"$nin": ["eu", "us"]}}]},
             "then": "wide"},
            {"query": {"url.pathname": {"$eq": "/v1/models"}}, "then": "pro"},
            {"query": {"metadata.score": {"$lt": 10}, "params.quality": {"$ne": "hd"}}, "then": "cheap"},
        ],
        "default": "base",
    },
    "targets": [
        {"name": "pro", **leaf("pro")}, {"name": "bulk", **leaf("bulk")}, {"name": "wide", **leaf("wide")},
        {"name": "cheap", **leaf("cheap")}, {"name": "base", **leaf("base")},
    ],
}


@pytest.mark.parametrize(
    ("metadata", "body", "expect"),
    [
        ({"tier": "pro"}, {"prompt": "x"}, "pro"),
        ({"region": "eu"}, {"prompt": "x", "n": 3, "model": "dall-e-2"}, "bulk"),
        ({"region": "eu"}, {"prompt": "x", "n": 1, "model": "dall-e-3"}, "base"),
        ({"region": "eu"}, {"prompt": "x", "size": "1792x1024"}, "wide"),
        ({"region": "apac"}, {"prompt": "x"}, "wide"),
        ({"region": "us", "score": "3"}, {"prompt": "x"}, "cheap"),
        ({"region": "us", "score": "3"}, {"prompt": "x", "quality": "hd"}, "base"),
        ({"region": "us", "score": "30"}, {"prompt": "x"}, "base"),
    ],
)
async def test_conditional(gateway_client, fake_upstream, metadata, body, expect):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK))
    headers = {**cfg(CONDITIONAL), "x-portkey-metadata": msgspec.json.encode(metadata).decode()}
    resp = await gateway_client.post(GEN, json=body, headers=headers)
    assert resp.status == 200
    assert keys(fake_upstream) == [expect]


async def test_conditional_url_pathname_and_no_default(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    headers = {**cfg(CONDITIONAL), "x-portkey-metadata": '{"region": "us"}'}
    resp = await gateway_client.get("/v1/models", headers=headers)
    assert resp.status == 200 and keys(fake_upstream) == ["pro"]
    no_default = {**CONDITIONAL, "strategy": {**CONDITIONAL["strategy"], "default": None}}
    resp = await gateway_client.post(GEN, json={"prompt": "x"},
                                     headers={**cfg(no_default), "x-portkey-metadata": '{"region": "us"}'})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "no_route"


@pytest.mark.parametrize(
    ("strategy", "needle"),
    [
        ({"mode": "conditional", "conditions": [{"query": {"metadata.a": {"$near": 1}}, "then": "t"}]},
         "unknown operator '$near' - at `$.strategy.conditions[0].query.metadata.a.$near`"),
        ({"mode": "conditional", "conditions": [{"query": {"$xor": []}, "then": "t"}]}, "unknown operator '$xor'"),
        ({"mode": "conditional", "conditions": [{"query": {}, "then": "missing"}]}, "no target is named 'missing'"),
        ({"mode": "conditional", "conditions": [{"query": {}}]}, "needs `query` and `then`"),
        ({"mode": "conditional", "conditions": [], "default": "t"}, "needs `conditions`"),
        ({"mode": "conditional", "conditions": [{"query": {"a": {"$regex": "("}}, "then": "t"}]}, "bad regular"),
    ],
)
async def test_conditional_validation(gateway_client, fake_upstream, strategy, needle):  # noqa: ANN001
    config = {"strategy": strategy, "targets": [{"name": "t", **leaf("t")}]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 400
    assert needle in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


async def test_nested_targets_and_inheritance(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    gateway_app[GATEWAY].registry.strategies["loadbalance"].rng = random.Random(1)
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "x"}}), Reply(json=OK))
    config = {
        "strategy": {"mode": "fallback"},
        "override_params": {"quality": "hd", "model": "dall-e-2"},
        "request_timeout": 5000,
        "targets": [
            {"strategy": {"mode": "single"}, "override_params": {"model": "dall-e-3"},
             "targets": [{"strategy": {"mode": "loadbalance"},
                          "targets": [leaf("deep", override_params={"style": "vivid"})]}]},
            leaf("second"),
        ],
    }
    resp = await gateway_client.post(GEN, json={"prompt": "x", "quality": "standard"}, headers=cfg(config))
    assert resp.status == 200
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    first, second = (r.json() for r in fake_upstream.requests)
    assert first == {"prompt": "x", "quality": "hd", "model": "dall-e-3", "style": "vivid"}
    # dall-e-2 has no quality tiers: lenient mode drops it and says so.
    assert second == {"prompt": "x", "model": "dall-e-2"}
    assert resp.headers["x-portkey-adjusted-params"] == "quality=hd->(dropped)"


async def test_retries_with_backoff(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(503, json={"error": {"message": "busy"}}),
                     Reply(429, json={"error": {"message": "slow down"}}), Reply(json=OK))
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(leaf("a", retry={"attempts": 3})))
    assert resp.status == 200
    assert resp.headers["x-portkey-retry-attempt-count"] == "2"
    assert sleeps == [1.0, 2.0]


async def test_retries_exhausted(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "down"}}))
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(leaf("a", retry={"attempts": 3})))
    assert resp.status == 500
    assert resp.headers["x-portkey-retry-attempt-count"] == "-1"
    assert sleeps == [1.0, 2.0, 4.0] and len(fake_upstream.requests) == 4


async def test_retry_only_listed_codes(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "down"}}), Reply(json=OK))
    resp = await gateway_client.post(
        GEN, json={"prompt": "x"}, headers=cfg(leaf("a", retry={"attempts": 2, "on_status_codes": [429]})))
    assert resp.status == 500 and resp.headers["x-portkey-retry-attempt-count"] == "0" and sleeps == []
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(leaf("a", retry={"attempts": 0})))
    assert resp.status == 200


async def test_timeout_408_is_not_retried_unless_listed(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK, delay=1))
    config = leaf("a", retry={"attempts": 2}, request_timeout=50)
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 408 and sleeps == []
    config = leaf("a", retry={"attempts": 1, "on_status_codes": [408]}, request_timeout=50)
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 408 and sleeps == [1.0] and resp.headers["x-portkey-retry-attempt-count"] == "-1"


@pytest.mark.parametrize(
    ("headers", "expect"),
    [
        ({"retry-after-ms": "1500"}, [1.5]),
        ({"x-ms-retry-after-ms": "250"}, [0.25]),
        ({"Retry-After": "7"}, [7.0]),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, [0.0]),
        ({}, [1.0]),
    ],
)
async def test_retry_after_headers(gateway_client, fake_upstream, sleeps, headers, expect):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(429, json={"error": {"message": "later"}}, headers=headers), Reply(json=OK))
    config = leaf("a", retry={"attempts": 1, "use_retry_after_header": True})
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 200 and sleeps == expect


async def test_retry_after_over_the_cap_stops(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(503, json={"error": {"message": "maintenance"}}, headers={"Retry-After": "120"}),
                     Reply(json=OK))
    config = leaf("a", retry={"attempts": 3, "use_retry_after_header": True})
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 503 and sleeps == [] and resp.headers["x-portkey-retry-attempt-count"] == "-1"
    assert resp.headers["Retry-After"] == "120"
    # several waits that together pass 60 s stop too
    sleeps.clear()
    fake_upstream.requests.clear()
    fake_upstream.on("POST", GEN, Reply(503, json={"error": {"message": "m"}}, headers={"Retry-After": "25"}))
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert sleeps == [25.0, 25.0] and resp.headers["x-portkey-retry-attempt-count"] == "-1"


async def test_retry_is_per_leaf_inside_fallback(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "x"}}), Reply(500, json={"error": {"message": "x"}}),
                     Reply(json=OK))
    config = {"strategy": {"mode": "fallback"}, "retry": {"attempts": 1}, "targets": [leaf("a"), leaf("b")]}
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(config))
    assert resp.status == 200 and keys(fake_upstream) == ["a", "a", "b"]
    assert resp.headers["x-portkey-retry-attempt-count"] == "0"
