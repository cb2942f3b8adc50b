"""What the core does with a routing config: nesting and inheritance, retries, timeouts, re-sends.

Each strategy's own behaviour is tested in its plugin (``plugins/gateway-route-*/tests``)."""
from __future__ import annotations

import random

import msgspec
import pytest

from gateway.keys import GATEWAY
from gateway.testing import Reply

GEN = "/v1/images/generations"
OK = {"created": 1, "data": [{"url": "https://img/1.png"}]}


def cfg(config: dict) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode(config).decode()}


def leaf(key: str, **kw) -> dict:  # noqa: ANN003
    return {"provider": "fake", "api_key": key, **kw}


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


async def test_nested_targets_and_inheritance(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    gateway_app[GATEWAY].registry.strategies["loadbalance"].rng = random.Random(1)
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "x"}}), Reply(json=OK))
    config = {
        "strategy": {"mode": "fallback"},
        "override_params": {"quality": "hd", "model": "fake-image"},
        "request_timeout": 5000,
        "targets": [
            {"strategy": {"mode": "single"}, "override_params": {"model": "fake-hd"},
             "targets": [{"strategy": {"mode": "loadbalance"},
                          "targets": [leaf("deep", override_params={"style": "vivid"})]}]},
            leaf("second"),
        ],
    }
    resp = await gateway_client.post(GEN, json={"prompt": "x", "quality": "standard"}, headers=cfg(config))
    assert resp.status == 200
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    first, second = (r.json() for r in fake_upstream.requests)
    assert first == {"prompt": "x", "quality": "hd", "model": "fake-hd", "style": "vivid"}
    # dall-e-2 has no quality tiers: lenient mode drops it and says so.
    assert second == {"prompt": "x", "model": "fake-image"}
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
