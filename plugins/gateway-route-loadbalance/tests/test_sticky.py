"""Sticky load balancing (``strategy.sticky`` / ``strategy.sticky_session``) in one process, on the
memory cache.  Across two instances sharing Redis: plugins/gateway-cache-redis/tests/test_routing_redis.py."""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import msgspec
import pytest
from aiohttp import web

import gateway_route_loadbalance
from gateway.sdk import StartupError
from gateway.testing import Recorded, fake_provider, make_app, services_of

GEN = "/v1/images/generations"
OK = {"created": 1, "data": [{"b64_json": "aW1hZ2U="}]}
ALPHA, BETA = "gk-alpha-0123456789", "gk-beta-0123456789"


class Draws(random.Random):
    """An rng whose ``random()`` answers the values it was given, in order."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


class Upstream:
    """The fake provider's generations: 200, or 500 for the keys in ``failing``."""

    def __init__(self, fake_upstream: Any) -> None:
        self.failing: set[str] = set()
        self.fake = fake_upstream
        fake_upstream.on("POST", GEN, self.handle)

    async def handle(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        key = rec.headers["Authorization"].removeprefix("Bearer sk-")
        if key in self.failing:
            return web.json_response({"error": {"message": "down"}}, status=500)
        return web.json_response(OK)

    def keys(self) -> list[str]:
        out = [r.headers["Authorization"].removeprefix("Bearer sk-") for r in self.fake.requests]
        self.fake.requests.clear()
        return out


def config(sticky: dict[str, Any] | None = None, field: str = "sticky", weights: tuple[float, ...] = (1, 3),
           **strategy: Any) -> dict[str, Any]:
    names = "ab" if len(weights) == 2 else "abc"
    node: dict[str, Any] = {"strategy": {"mode": "loadbalance", **strategy},
                            "targets": [{"provider": "fake", "api_key": f"sk-{n}", "weight": w}
                                        for n, w in zip(names, weights)]}
    node["strategy"][field] = sticky if sticky is not None else {"hash_fields": ["metadata.user"]}
    return node


def headers(cfg: dict[str, Any], user: str | None = None, **more: str) -> dict[str, str]:
    out = {"x-portkey-config": msgspec.json.encode(cfg).decode(), **more}
    if user is not None:
        out["x-portkey-metadata"] = msgspec.json.encode({"user": user}).decode()
    return out


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return [fake_provider.plugin, gateway_route_loadbalance]


@pytest.fixture
def gateway_settings(fake_upstream: Any) -> dict[str, Any]:
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}}


@pytest.fixture
def upstream(fake_upstream: Any) -> Upstream:
    return Upstream(fake_upstream)


@pytest.fixture
def lb(gateway_services: Any) -> Any:
    return gateway_services.registry.strategies["loadbalance"]


async def send(client: Any, hdrs: dict[str, str], body: dict[str, Any] | None = None) -> int:
    resp = await client.post(GEN, json=body or {"prompt": "x"}, headers=hdrs)
    await resp.read()
    return resp.status


async def test_the_same_user_goes_to_one_target_and_users_spread_by_weight(gateway_client, upstream,  # noqa: ANN001
                                                                            lb):  # noqa: ANN001
    lb.rng = random.Random(11)
    cfg = config()
    for _ in range(200):
        assert await send(gateway_client, headers(cfg, "alice")) == 200
    assert len(set(upstream.keys())) == 1
    users = [f"user-{i}" for i in range(200)]
    for user in users:
        await send(gateway_client, headers(cfg, user))
    first = upstream.keys()
    share = first.count("b") / len(first)
    # weights 1:3; binomial sd = sqrt(.75 * .25 / 200) ~ 0.031: four sd either way
    assert 0.62 < share < 0.88, share
    for user in reversed(users):
        await send(gateway_client, headers(cfg, user))
    assert upstream.keys() == list(reversed(first))


async def test_hash_fields_read_params_and_headers(gateway_client, upstream, lb):  # noqa: ANN001
    lb.rng = Draws(0.1, 0.9)
    cfg = config({"hash_fields": ["params.model", "headers.x-session"]}, weights=(1, 1))
    one = headers(cfg, **{"x-session": "s1"})
    two = headers(cfg, **{"X-Session": "s2"})
    for _ in range(3):
        await send(gateway_client, one, {"prompt": "x", "model": "fake-image"})
        await send(gateway_client, two, {"prompt": "y", "model": "fake-image"})
    assert upstream.keys() == ["a", "b"] * 3


async def test_requests_with_none_of_the_fields_are_drawn(gateway_client, upstream, lb):  # noqa: ANN001
    lb.rng = Draws(0.1, 0.9, 0.1, 0.9)
    cfg = config(weights=(1, 1))
    for _ in range(4):
        await send(gateway_client, headers(cfg))
    assert upstream.keys() == ["a", "b", "a", "b"]


async def test_a_choice_lasts_ttl_seconds(gateway_client, upstream, lb):  # noqa: ANN001
    lb.rng = Draws(0.1, 0.9)
    cfg = config({"hash_fields": ["metadata.user"], "ttl": 1}, weights=(1, 1))
    for _ in range(3):
        await send(gateway_client, headers(cfg, "alice"))
    assert upstream.keys() == ["a"] * 3
    await asyncio.sleep(1.1)
    await send(gateway_client, headers(cfg, "alice"))
    await send(gateway_client, headers(cfg, "alice"))
    assert upstream.keys() == ["b", "b"]


async def test_a_target_that_fails_is_forgotten(gateway_client, upstream, lb):  # noqa: ANN001
    lb.rng = Draws(0.1, 0.9)
    cfg = config(weights=(1, 1))
    upstream.failing = {"a"}
    assert await send(gateway_client, headers(cfg, "alice")) == 500
    upstream.failing = set()
    for _ in range(3):
        assert await send(gateway_client, headers(cfg, "alice")) == 200
    assert upstream.keys() == ["a", "b", "b", "b"]


async def test_each_caller_has_their_own_choices(aiohttp_client, fake_upstream):  # noqa: ANN001
    settings = {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                "gateway_keys": {"alpha": {"key": ALPHA}, "beta": {"key": BETA}}}
    app = make_app(settings, [fake_provider.plugin, gateway_route_loadbalance])
    services_of(app).registry.strategies["loadbalance"].rng = Draws(0.1, 0.9)
    client = await aiohttp_client(app)
    upstream = Upstream(fake_upstream)
    cfg = config(weights=(1, 1))
    for _ in range(2):
        for key in (ALPHA, BETA):
            assert await send(client, headers(cfg, "alice", **{"x-portkey-api-key": key})) == 200
    assert upstream.keys() == ["a", "b", "a", "b"]


async def test_sticky_session_is_portkeys_spelling(gateway_client, gateway_services, upstream, lb):  # noqa: ANN001
    lb.rng = Draws(0.9)
    cfg = config({"hash_fields": ["metadata.user"]}, field="sticky_session", weights=(1, 1))
    for _ in range(3):
        await send(gateway_client, headers(cfg, "alice"))
    assert upstream.keys() == ["b"] * 3
    # Stored under a hash (no user name, caller or key in clear), for an hour by default.
    backend = gateway_services.cache.backend
    [(key, (value, expires))] = [(k, v) for k, v in backend._data.items() if k.startswith("st:")]
    assert len(key) == 3 + 64 and value == b"config.targets[1]"
    assert 3500 < expires - time.monotonic() <= 3600


async def test_disabled_sticky_draws_every_time(gateway_client, upstream, lb):  # noqa: ANN001
    lb.rng = Draws(0.1, 0.9)
    cfg = config({"enabled": False}, weights=(1, 1))
    await send(gateway_client, headers(cfg, "alice"))
    await send(gateway_client, headers(cfg, "alice"))
    assert upstream.keys() == ["a", "b"]


async def test_a_sticky_target_whose_circuit_opens_is_replaced(gateway_client, gateway_services,  # noqa: ANN001
                                                                upstream, lb):  # noqa: ANN001
    gateway_services.router.circuits.clock = lambda: 1_700_000_000.0
    lb.rng = Draws(0.1, 0.1, 0.9)
    cfg = config(weights=(1, 1), cb_config={"failure_threshold": 1, "cooldown_interval": 60000})
    assert await send(gateway_client, headers(cfg, "alice")) == 200
    upstream.failing = {"a"}
    assert await send(gateway_client, headers(cfg, "bob")) == 500  # `a` fails: its circuit opens
    upstream.failing = set()
    # Alice's target is left out while its circuit is open: she gets a new one, and keeps it.
    assert await send(gateway_client, headers(cfg, "alice")) == 200
    assert await send(gateway_client, headers(cfg, "alice")) == 200
    assert upstream.keys() == ["a", "a", "b", "b"]


async def test_with_the_cache_down_targets_are_drawn(gateway_client, gateway_services, upstream, lb):  # noqa: ANN001
    lb.rng = Draws(0.1, 0.9, 0.1)
    backend = gateway_services.cache.backend

    async def broken(*_args: Any, **_kw: Any) -> Any:
        raise ConnectionError("cache is down")

    backend._get = backend._add = backend._set = backend._delete = broken
    cfg = config(weights=(1, 1))
    statuses = [await send(gateway_client, headers(cfg, "alice")) for _ in range(3)]
    assert statuses == [200] * 3 and upstream.keys() == ["a", "b", "a"]


@pytest.mark.parametrize(("sticky", "where", "needle"), [
    ({"hash_fields": []}, "$.strategy.sticky.hash_fields", "needs `hash_fields`"),
    ({"hash_fields": ["user"]}, "$.strategy.sticky.hash_fields[0]", "metadata.<key>"),
    ({"hash_fields": ["metadata.user", "body.x"]}, "$.strategy.sticky.hash_fields[1]", "'body.x'"),
    ({"hash_fields": ["metadata."]}, "$.strategy.sticky.hash_fields[0]", "metadata.<key>"),
    ({"hash_fields": ["metadata.user"], "ttl": 0}, "$.strategy.sticky.ttl", "seconds"),
    ({"hash_fields": "metadata.user"}, "$.strategy.sticky.hash_fields", "array"),
])
async def test_sticky_settings_are_checked_with_their_path(gateway_client, fake_upstream,  # noqa: ANN001
                                                           sticky, where, needle):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=headers(config(sticky)))
    assert resp.status == 400
    message = (await resp.json())["error"]["message"]
    assert f"at `{where}`" in message and needle in message, message
    assert fake_upstream.requests == []


async def test_sticky_and_sticky_session_together_is_a_400(gateway_client, fake_upstream):  # noqa: ANN001
    cfg = config(sticky_session={"hash_fields": ["metadata.user"]})
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=headers(cfg))
    assert resp.status == 400 and "not both - at `$.strategy`" in (await resp.json())["error"]["message"]


def test_a_saved_config_is_checked_at_start_up(fake_upstream: Any) -> None:
    settings = {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                "configs": {"pc-sticky": config({"hash_fields": ["cookie.x"]})}}
    with pytest.raises(StartupError) as info:
        make_app(settings, [fake_provider.plugin, gateway_route_loadbalance])
    assert "[configs.pc-sticky]" in str(info.value) and "$.strategy.sticky.hash_fields[0]" in str(info.value)
