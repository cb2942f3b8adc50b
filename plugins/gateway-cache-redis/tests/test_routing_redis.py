"""Sticky load balancing and circuit breakers across two real gateway processes sharing a real
redis-server: a choice or a circuit one instance makes, the other follows.  The provider (on
``fake_upstream``, in this process) fails on command: a key in ``Switch.failing`` answers 500.
Time is not waited out: a circuit's cooldown is ended by editing its state in Redis."""
from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from test_gateway_cache_redis import GEN, REDIS, GatewayProcess, redis, two_gateways  # noqa: F401 - the fixture

import gateway_cache_redis
import gateway_route_fallback
import gateway_route_loadbalance
from gateway.testing import Recorded, fake_provider

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (.ci/run installs it)")
OK = {"created": 1, "data": [{"b64_json": "aGk="}]}
Pair = tuple[GatewayProcess, GatewayProcess, aiohttp.ClientSession]
CB = {"failure_threshold": 2, "cooldown_interval": 30000}


class Switch:
    """The provider's generations: 200, or 500 for the keys in ``failing``; ``delay`` per key."""

    def __init__(self, upstream: Any) -> None:
        self.failing: set[str] = set()
        self.status = 500
        self.delay: dict[str, float] = {}
        self.upstream = upstream
        upstream.on("POST", GEN, self.handle)

    async def handle(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        key = rec.headers["Authorization"].removeprefix("Bearer sk-")
        await asyncio.sleep(self.delay.get(key, 0))
        if key in self.failing:
            return web.json_response({"error": {"message": "down", "type": "server_error"}}, status=self.status)
        return web.json_response(OK)

    def keys(self) -> list[str]:
        out = [r.headers["Authorization"].removeprefix("Bearer sk-") for r in self.upstream.requests]
        self.upstream.requests.clear()
        return out


@pytest.fixture
async def pair(tmp_path, redis, fake_upstream) -> AsyncIterator[Pair]:  # noqa: ANN001, F811
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[providers.openai]
base_url = "{fake_upstream.url}/v1"

[cache]
backend = "redis"
op_timeout = 0.3

[redis]
url = "{redis.url}"
""")
    async with two_gateways(config) as pair:
        yield pair


@pytest.fixture
async def store(redis) -> AsyncIterator[aioredis.Redis]:  # noqa: ANN001, F811
    client = aioredis.from_url(redis.url)
    try:
        yield client
    finally:
        await client.aclose()


def leaf(name: str, **kw: Any) -> dict[str, Any]:
    return {"provider": "openai", "api_key": f"sk-{name}", **kw}


async def post(session: aiohttp.ClientSession, gw: GatewayProcess, config: dict[str, Any],
               user: str | None = None) -> int:
    headers = {"x-portkey-config": msgspec.json.encode(config).decode()}
    if user is not None:
        headers["x-portkey-metadata"] = msgspec.json.encode({"user": user}).decode()
    async with session.post(gw.url + GEN, json={"prompt": "a fox"}, headers=headers) as resp:
        await resp.read()
        return resp.status


def events(name: str, *gateways: GatewayProcess) -> list[dict[str, Any]]:
    return [line for gw in gateways for line in gw.lines() if line.get("event") == name]


async def cool_down(store: aioredis.Redis) -> int:
    """End the cooldown of every open circuit (as if its cooldown_interval had passed)."""
    ended = 0
    async for key in store.scan_iter(match="cb:*"):
        if await store.hget(key, "s") == b"1":
            await store.hset(key, "u", 0)
            ended += 1
    return ended


async def circuit_count(session: aiohttp.ClientSession, gw: GatewayProcess, state: str) -> float:
    async with session.get(gw.url + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(f'gateway_circuit_transitions_total{{provider="openai",state="{state}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- sticky load balancing ------------------------------------------------------------------------------

STICKY = {"strategy": {"mode": "loadbalance", "sticky": {"hash_fields": ["metadata.user"]}},
          "targets": [leaf("light", weight=1), leaf("heavy", weight=3)]}


async def test_a_users_target_is_the_same_on_both_instances(pair, fake_upstream):  # noqa: ANN001
    a, b, session = pair
    switch = Switch(fake_upstream)
    users = [f"user-{i}" for i in range(100)]
    for i, user in enumerate(users):
        assert await post(session, (a, b)[i % 2], STICKY, user) == 200
    first = switch.keys()
    for i, user in enumerate(users):
        assert await post(session, (b, a)[i % 2], STICKY, user) == 200
    assert switch.keys() == first
    # Spread by weight (1:3) across users: sd = sqrt(.75 * .25 / 100) ~ 0.043, four sd either way.
    share = first.count("heavy") / len(first)
    assert 0.57 < share < 0.93, share


@pytest.mark.parametrize(("field", "default"), [("sticky", 300), ("sticky_session", 3600)])
async def test_a_choice_is_kept_in_redis_for_the_default_ttl(pair, fake_upstream, store, field, default):  # noqa: ANN001
    a, b, session = pair
    Switch(fake_upstream)
    config = {"strategy": {"mode": "loadbalance", field: {"hash_fields": ["metadata.user"]}},
              "targets": [leaf("light"), leaf("heavy")]}
    assert await post(session, a, config, "alice") == 200
    [key] = [k async for k in store.scan_iter(match="*st:*")]
    # Without `ttl`: Portkey 2.x's 300 s for `sticky`, its load-balancing page's 3600 s for `sticky_session`.
    assert default - 5 <= await store.ttl(key) <= default
    explicit = {**config, "strategy": {**config["strategy"], field: {"hash_fields": ["metadata.user"], "ttl": 42}}}
    assert await post(session, b, explicit, "bob") == 200
    ttls = sorted([await store.ttl(k) async for k in store.scan_iter(match="*st:*")])
    assert len(ttls) == 2 and 37 <= ttls[0] <= 42 and default - 5 <= ttls[1] <= default


async def test_a_sticky_target_that_fails_is_forgotten_by_both(pair, fake_upstream, store):  # noqa: ANN001
    a, b, session = pair
    switch = Switch(fake_upstream)
    assert await post(session, a, STICKY, "alice") == 200
    [chosen] = switch.keys()
    [key] = [k async for k in store.scan_iter(match="st:*")]
    assert b"alice" not in key and len(key) == 3 + 64
    assert await post(session, b, STICKY, "alice") == 200 and switch.keys() == [chosen]
    switch.failing = {chosen}
    assert await post(session, b, STICKY, "alice") == 500
    assert not await store.exists(key)
    switch.failing = set()
    assert await post(session, a, STICKY, "alice") == 200
    assert await store.exists(key)


# -- circuit breakers ------------------------------------------------------------------------------------

FALLBACK = {"strategy": {"mode": "fallback", "cb_config": CB}, "targets": [leaf("a"), leaf("b")]}


async def test_a_circuit_opens_half_opens_and_closes_across_instances(pair, fake_upstream, store):  # noqa: ANN001
    a, b, session = pair
    switch = Switch(fake_upstream)
    switch.failing = {"a"}
    # One failure through each instance: two in the shared window open the circuit.
    assert await post(session, a, FALLBACK) == 200
    assert await post(session, b, FALLBACK) == 200
    assert switch.keys() == ["a", "b", "a", "b"]
    for gw in (a, b, a, b):
        assert await post(session, gw, FALLBACK) == 200
    assert switch.keys() == ["b"] * 4
    [opened] = events("circuit.opened", a, b)
    assert opened["target"] == "config.targets[0]" and opened["provider"] == "openai"
    assert opened["failures"] == 2 and opened["requests"] == 2
    assert await circuit_count(session, a, "open") + await circuit_count(session, b, "open") == 1

    # The cooldown ends: one trial, through A; B meanwhile keeps away from `a`.
    assert await cool_down(store) == 1
    switch.failing = set()
    switch.delay["a"] = 1.0
    trial = asyncio.ensure_future(post(session, a, FALLBACK))
    await asyncio.sleep(0.5)
    assert await post(session, b, FALLBACK) == 200
    assert switch.keys() == ["a", "b"]
    assert await trial == 200
    switch.delay.clear()
    assert len(events("circuit.half_open", a)) == 1 and not events("circuit.half_open", b)
    [closed] = events("circuit.closed", a, b)
    assert closed["trial"] is True and closed in events("circuit.closed", a)
    for gw in (a, b):
        assert await post(session, gw, FALLBACK) == 200
    assert switch.keys() == ["a", "a"]
    assert await circuit_count(session, a, "closed") == 1


async def test_a_failed_trial_opens_the_circuit_for_both(pair, fake_upstream, store):  # noqa: ANN001
    a, b, session = pair
    switch = Switch(fake_upstream)
    switch.failing = {"a"}
    for gw in (a, b):
        await post(session, gw, FALLBACK)
    assert await cool_down(store) == 1
    switch.keys()
    assert await post(session, b, FALLBACK) == 200  # the trial fails, `b` answers
    assert switch.keys() == ["a", "b"]
    for gw in (a, b):
        assert await post(session, gw, FALLBACK) == 200
    assert switch.keys() == ["b", "b"]
    opened = events("circuit.opened", a, b)
    assert len(opened) == 2 and opened[-1] in events("circuit.opened", b) and opened[-1]["trial"] is True


async def test_when_every_target_is_open_both_instances_try_them_all(pair, fake_upstream):  # noqa: ANN001
    a, b, session = pair
    switch = Switch(fake_upstream)
    switch.failing = {"a", "b"}
    config = {"strategy": {"mode": "fallback", "cb_config": {**CB, "failure_threshold": 1}},
              "targets": [leaf("a"), leaf("b")]}
    assert await post(session, a, config) == 500
    assert len(events("circuit.opened", a)) == 2
    assert await post(session, b, config) == 500
    assert switch.keys() == ["a", "b", "a", "b"]


async def test_with_redis_down_each_instance_keeps_its_own_circuits(pair, fake_upstream, redis):  # noqa: ANN001, F811
    a, b, session = pair
    switch = Switch(fake_upstream)
    redis.stop()
    switch.failing = {"a"}
    for _ in range(2):
        assert await post(session, a, FALLBACK) == 200
    assert switch.keys() == ["a", "b", "a", "b"]
    assert await post(session, a, FALLBACK) == 200 and switch.keys() == ["b"]  # open in A's memory
    assert await post(session, b, FALLBACK) == 200 and switch.keys() == ["a", "b"]  # B has not seen it
    assert len(events("circuit.unavailable", a)) == 1
    # Sticky routing draws by weight meanwhile.
    assert await post(session, b, STICKY, "alice") == 200


# -- the Lua scripts' rules, in one process with the breakers' clock moved by hand ------------------------

class TestScriptsInProcess:
    """The rules gateway/circuit.py states (and its MemoryCircuits follows), run on Redis."""

    @pytest.fixture
    def gateway_plugins(self) -> list[Any]:
        return [fake_provider.plugin, gateway_route_fallback, gateway_route_loadbalance, gateway_cache_redis]

    @pytest.fixture
    def gateway_settings(self, fake_upstream, redis) -> dict[str, Any]:  # noqa: ANN001, F811
        return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                "cache": {"backend": "redis", "op_timeout": 0.5}, "redis": {"url": redis.url}}

    @pytest.fixture
    def clock(self, gateway_services) -> list[float]:  # noqa: ANN001
        now = [1_700_000_000.0]
        gateway_services.router.circuits.clock = lambda: now[0]
        return now

    @staticmethod
    async def send(client: Any, config: dict[str, Any]) -> int:
        resp = await client.post(GEN, json={"prompt": "x"},
                                 headers={"x-portkey-config": msgspec.json.encode(config).decode()})
        await resp.read()
        return resp.status

    @staticmethod
    def fake(name: str) -> dict[str, Any]:
        return {"provider": "fake", "api_key": f"sk-{name}"}

    async def test_percentage_window_and_trials(self, gateway_client, gateway_services,  # noqa: ANN001
                                                fake_upstream, clock, log_capture):  # noqa: ANN001
        switch = Switch(fake_upstream)
        pct = {"strategy": {"mode": "fallback", "cb_config": {"failure_threshold_percentage": 50,
                                                              "minimum_requests": 4, "cooldown_interval": 30000}},
               "targets": [self.fake("a"), self.fake("b")]}
        for _ in range(2):
            await self.send(gateway_client, pct)
        switch.failing = {"a"}
        await self.send(gateway_client, pct)  # 1 failure in 3
        clock[0] += 31  # a new window: the counts start over
        switch.failing = set()
        await self.send(gateway_client, pct)  # 0 in 1
        switch.failing = {"a"}
        await self.send(gateway_client, pct)
        await self.send(gateway_client, pct)  # 2 in 3: under minimum_requests
        assert switch.keys() == ["a", "a", "a", "b", "a", "a", "b", "a", "b"]
        switch.failing = set()
        await self.send(gateway_client, pct)  # 2 in 4: 50 % opens the circuit
        await self.send(gateway_client, pct)
        assert switch.keys() == ["a", "b"]
        assert backend_is_redis(gateway_services) and len(log_capture.events("circuit.opened")) == 1

        # Half-open, and the draw picks the other target: the trial is given back.
        lb = {"strategy": {"mode": "loadbalance", "cb_config": {"failure_threshold": 1, "cooldown_interval": 30000}},
              "targets": [self.fake("c"), self.fake("d")]}
        gateway_services.registry.strategies["loadbalance"].rng = Draws(0.1, 0.9, 0.1, 0.1)
        switch.failing = {"c"}
        await self.send(gateway_client, lb)
        clock[0] += 31
        switch.failing = set()
        await self.send(gateway_client, lb)
        await self.send(gateway_client, lb)
        assert switch.keys() == ["c", "d", "c"]
        # A trial answered with neither a success nor a failure (a 400) ends without closing.
        switch.failing, switch.status = {"a"}, 400
        clock[0] += 31
        await self.send(gateway_client, pct)
        await self.send(gateway_client, pct)
        assert switch.keys() == ["a", "b", "a", "b"]
        assert len(log_capture.events("circuit.closed")) == 1  # `c`'s
        switch.failing = set()
        await self.send(gateway_client, pct)
        assert switch.keys() == ["a"] and len(log_capture.events("circuit.closed")) == 2


def backend_is_redis(services: Any) -> bool:
    return isinstance(services.cache.backend, gateway_cache_redis.CountingRedisCache)


class Draws(random.Random):
    """An rng whose ``random()`` answers the values it was given, in order."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)
