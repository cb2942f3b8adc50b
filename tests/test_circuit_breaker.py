"""Circuit breakers of config targets (``strategy.cb_config``), in one process (state in memory).

The fake provider fails on command: a key in ``Switch.failing`` answers 500.  Time moves by the
breakers' clock (``router.circuits.clock``), never by sleeping.  The same breakers across two
instances sharing Redis: plugins/gateway-cache-redis/tests/test_routing_redis.py.
"""
from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from typing import Any

import msgspec
import pytest
from aiohttp import web
from first_party import FIRST_PARTY

from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.schema import settings_schema
from gateway.testing import Recorded

GEN = "/v1/images/generations"
OK = {"created": 1, "data": [{"b64_json": "aW1hZ2U="}]}
CB = {"failure_threshold": 2, "cooldown_interval": 60000}


class Switch:
    """The fake provider's generations endpoint: 200, or ``status`` for the keys in ``failing``."""

    def __init__(self, upstream: Any) -> None:
        self.failing: set[str] = set()
        self.status = 500
        #: Seconds the answer to each key waits.
        self.delay: dict[str, float] = {}
        self.upstream = upstream
        upstream.on("POST", GEN, self.handle)

    async def handle(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        key = rec.headers["Authorization"].removeprefix("Bearer ")
        await asyncio.sleep(self.delay.get(key, 0))
        if key in self.failing:
            return web.json_response({"error": {"message": f"{key} is down"}}, status=self.status)
        return web.json_response(OK)

    def keys(self) -> list[str]:
        out = [r.headers["Authorization"].removeprefix("Bearer ") for r in self.upstream.requests]
        self.upstream.requests.clear()
        return out


def leaf(key: str, **kw: Any) -> dict[str, Any]:
    return {"provider": "fake", "api_key": key, **kw}


def node(mode: str, targets: list[dict[str, Any]], cb: dict[str, Any] | None = CB, **kw: Any) -> dict[str, Any]:
    strategy: dict[str, Any] = {"mode": mode, **kw}
    if cb is not None:
        strategy["cb_config"] = cb
    return {"strategy": strategy, "targets": targets}


def header(config: dict[str, Any]) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode(config).decode()}


@pytest.fixture
def switch(fake_upstream: Any) -> Switch:
    return Switch(fake_upstream)


@pytest.fixture
def clock(gateway_services: Any) -> list[float]:
    """The breakers' wall clock, moved by hand: ``clock[0] += 61``."""
    now = [1_700_000_000.0]
    gateway_services.router.circuits.clock = lambda: now[0]
    return now


async def send(client: Any, config: dict[str, Any], **headers: str) -> int:
    resp = await client.post(GEN, json={"prompt": "x"}, headers={**header(config), **headers})
    await resp.read()
    return resp.status


class Draws(random.Random):
    """An rng whose ``random()`` answers the values it was given, in order."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


FALLBACK = node("fallback", [leaf("a"), leaf("b")])


async def test_failures_open_the_circuit_and_fallback_skips_the_target(gateway_client, switch, clock,  # noqa: ANN001
                                                                       log_capture):  # noqa: ANN001
    switch.failing = {"a"}
    for _ in range(2):
        assert await send(gateway_client, FALLBACK) == 200
        assert switch.keys() == ["a", "b"]
    for _ in range(3):
        assert await send(gateway_client, FALLBACK) == 200
        assert switch.keys() == ["b"]
    [opened] = log_capture.events("circuit.opened")
    assert opened["target"] == "config.targets[0]" and opened["provider"] == "fake"
    assert opened["failures"] == 2 and opened["requests"] == 2 and opened["cooldown_ms"] == 60000
    assert "sk-" not in log_capture.text and '"a"' not in log_capture.text
    metrics = await (await gateway_client.get("/metrics")).text()
    assert 'gateway_circuit_transitions_total{provider="fake",state="open"} 1.0' in metrics


async def test_after_the_cooldown_one_trial_success_closes(gateway_client, switch, clock, log_capture):  # noqa: ANN001
    switch.failing = {"a"}
    for _ in range(2):
        await send(gateway_client, FALLBACK)
    switch.keys()
    clock[0] += 59
    assert await send(gateway_client, FALLBACK) == 200 and switch.keys() == ["b"]  # still cooling down
    clock[0] += 2
    switch.failing = set()
    switch.delay["a"] = 0.5
    # Half-open: the first request is the trial; one arriving meanwhile skips the target.
    first = asyncio.ensure_future(send(gateway_client, FALLBACK))
    await asyncio.sleep(0.2)
    assert await send(gateway_client, FALLBACK) == 200
    assert await first == 200
    assert sorted(switch.keys()) == ["a", "b"]
    assert len(log_capture.events("circuit.half_open")) == 1
    [closed] = log_capture.events("circuit.closed")
    assert closed["target"] == "config.targets[0]" and closed["trial"] is True
    switch.delay.clear()
    assert await send(gateway_client, FALLBACK) == 200 and switch.keys() == ["a"]
    metrics = await (await gateway_client.get("/metrics")).text()
    assert 'gateway_circuit_transitions_total{provider="fake",state="closed"} 1.0' in metrics


async def test_a_failed_trial_opens_the_circuit_again(gateway_client, switch, clock, log_capture):  # noqa: ANN001
    switch.failing = {"a"}
    for _ in range(2):
        await send(gateway_client, FALLBACK)
    clock[0] += 61
    switch.keys()
    assert await send(gateway_client, FALLBACK) == 200 and switch.keys() == ["a", "b"]  # the trial fails
    reopened = log_capture.events("circuit.opened")[-1]
    assert reopened["trial"] is True and len(log_capture.events("circuit.opened")) == 2
    assert await send(gateway_client, FALLBACK) == 200 and switch.keys() == ["b"]
    clock[0] += 61
    switch.failing = set()
    assert await send(gateway_client, FALLBACK) == 200 and switch.keys() == ["a"]
    assert await send(gateway_client, FALLBACK) == 200 and switch.keys() == ["a"]
    assert len(log_capture.events("circuit.closed")) == 1


async def test_a_trial_the_strategy_did_not_use_is_given_back(gateway_client, gateway_services, switch,  # noqa: ANN001
                                                               clock):  # noqa: ANN001
    config = node("loadbalance", [leaf("a"), leaf("b")])
    gateway_services.registry.strategies["loadbalance"].rng = Draws(0.1, 0.1, 0.9, 0.1)
    switch.failing = {"a"}
    for _ in range(2):
        await send(gateway_client, config)
    assert switch.keys() == ["a", "a"]
    clock[0] += 61
    switch.failing = set()
    # Half-open: this request claims the trial of `a`, but the draw picks `b`...
    assert await send(gateway_client, config) == 200 and switch.keys() == ["b"]
    # ... so the trial is still there for the next one.
    assert await send(gateway_client, config) == 200 and switch.keys() == ["a"]


async def test_the_percentage_counts_once_there_are_minimum_requests(gateway_client, switch, clock):  # noqa: ANN001
    config = node("fallback", [leaf("a"), leaf("b")],
                  cb={"failure_threshold_percentage": 50, "minimum_requests": 4, "cooldown_interval": 30000})
    for _ in range(2):
        await send(gateway_client, config)
    switch.failing = {"a"}
    await send(gateway_client, config)  # 1 failure in 3: 33 %
    assert switch.keys() == ["a", "a", "a", "b"]
    await send(gateway_client, config)  # 2 in 4: 50 %
    assert switch.keys() == ["a", "b"]
    await send(gateway_client, config)
    assert switch.keys() == ["b"]

    # Under minimum_requests, even every request failing does not open it.
    other = node("fallback", [leaf("c"), leaf("b")],
                 cb={"failure_threshold_percentage": 10, "minimum_requests": 4, "cooldown_interval": 30000})
    switch.failing = {"c"}
    for _ in range(3):
        await send(gateway_client, other)
        assert switch.keys() == ["c", "b"]


async def test_failures_are_counted_in_a_window_of_the_cooldown(gateway_client, switch, clock):  # noqa: ANN001
    switch.failing = {"a"}
    await send(gateway_client, FALLBACK)
    clock[0] += 61  # the first failure's window is over
    await send(gateway_client, FALLBACK)
    assert switch.keys() == ["a", "b", "a", "b"]
    clock[0] += 30
    await send(gateway_client, FALLBACK)
    await send(gateway_client, FALLBACK)
    assert switch.keys() == ["a", "b", "b"]


async def test_failure_status_codes_decide_what_counts(gateway_client, switch, clock):  # noqa: ANN001
    config = node("fallback", [leaf("a"), leaf("b")], cb={**CB, "failure_status_codes": [503]})
    switch.failing = {"a"}
    for _ in range(3):
        await send(gateway_client, config)  # 500s: not failures for this breaker
    assert switch.keys() == ["a", "b"] * 3
    switch.status = 503
    for _ in range(3):
        await send(gateway_client, config)
    assert switch.keys() == ["a", "b", "a", "b", "b"]
    # By default 429 counts, a 400 does not.
    switch.status = 400
    switch.failing = {"c"}
    other = node("fallback", [leaf("c"), leaf("b")])
    for _ in range(3):
        await send(gateway_client, other)
    assert switch.keys() == ["c", "b"] * 3
    switch.status = 429
    for _ in range(3):
        await send(gateway_client, other)
    assert switch.keys() == ["c", "b", "c", "b", "b"]


async def test_when_every_target_is_open_all_are_tried(gateway_client, gateway_services, switch, clock):  # noqa: ANN001
    switch.failing = {"a", "b"}
    config = node("fallback", [leaf("a"), leaf("b")], cb={**CB, "failure_threshold": 1})
    assert await send(gateway_client, config) == 500
    assert switch.keys() == ["a", "b"]
    assert await send(gateway_client, config) == 500
    assert switch.keys() == ["a", "b"]  # both open: the breaker steps aside
    switch.failing = {"b"}
    assert await send(gateway_client, config) == 200
    assert switch.keys() == ["a"]
    # A loadbalance node with both open still draws.
    gateway_services.registry.strategies["loadbalance"].rng = random.Random(3)
    switch.failing = {"c", "d"}
    lb = node("loadbalance", [leaf("c"), leaf("d")], cb={**CB, "failure_threshold": 1})
    statuses = [await send(gateway_client, lb) for _ in range(12)]
    assert statuses == [500] * 12 and set(switch.keys()) == {"c", "d"}


async def test_loadbalance_draws_among_closed_targets(gateway_client, gateway_services, switch, clock):  # noqa: ANN001
    gateway_services.registry.strategies["loadbalance"].rng = random.Random(5)
    config = node("loadbalance", [leaf("a", weight=3), leaf("b", weight=1), leaf("idle", weight=0)])
    switch.failing = {"a"}
    for _ in range(40):
        await send(gateway_client, config)
    sent = switch.keys()
    failed = [i for i, key in enumerate(sent) if key == "a"]
    # After the second failure of `a`, only `b` (never the weight-0 target).
    assert len(failed) == 2 and set(sent[failed[1] + 1:]) == {"b"}


async def test_conditional_keeps_its_choice_and_nested_nodes_inherit(gateway_client, switch, clock):  # noqa: ANN001
    config = {
        "strategy": {"mode": "conditional", "cb_config": CB,
                     "conditions": [{"query": {"metadata.tier": "pro"}, "then": "pro"}], "default": "free"},
        "targets": [
            {"name": "pro", **node("fallback", [leaf("a"), leaf("b")], cb=None)},
            {"name": "free", **leaf("c")},
        ],
    }
    pro = {"x-portkey-metadata": '{"tier": "pro"}'}
    switch.failing = {"a", "c"}
    for _ in range(2):
        assert await send(gateway_client, config, **pro) == 200
        assert await send(gateway_client, config) == 500
    assert switch.keys() == ["a", "b", "c"] * 2
    # The fallback below inherited the breaker: `a` is skipped.  The conditional still
    # sends the free tier to `c`, whose circuit is open: its condition named it.
    assert await send(gateway_client, config, **pro) == 200
    assert await send(gateway_client, config) == 500
    assert switch.keys() == ["b", "c"]


async def test_a_target_is_the_same_circuit_in_any_config(gateway_client, switch, clock):  # noqa: ANN001
    switch.failing = {"a"}
    for _ in range(2):
        await send(gateway_client, FALLBACK)
    switch.keys()
    elsewhere = node("fallback", [leaf("z"), leaf("a"), leaf("b")], cb={**CB, "failure_threshold": 5})
    assert await send(gateway_client, elsewhere) == 200
    assert switch.keys() == ["z"]
    switch.failing = {"z"}
    assert await send(gateway_client, elsewhere) == 200
    assert switch.keys() == ["z", "b"]  # `a` is open whichever config names it
    # Another key at the same place is another target.
    assert await send(gateway_client, node("fallback", [leaf("a2"), leaf("b")])) == 200
    assert switch.keys() == ["a2"]


async def test_a_leaf_counts_once_after_its_retries(gateway_client, gateway_services, switch, clock):  # noqa: ANN001
    async def no_sleep(_seconds: float) -> None:
        return None

    gateway_services.sleep = no_sleep
    switch.failing = {"a"}
    config = node("fallback", [leaf("a", retry={"attempts": 2}), leaf("b")])
    await send(gateway_client, config)
    assert switch.keys() == ["a", "a", "a", "b"]
    await send(gateway_client, config)
    await send(gateway_client, config)
    assert switch.keys() == ["a", "a", "a", "b", "b"]


async def test_a_virtual_key_target_is_labelled_with_its_provider(aiohttp_client, fake_upstream):  # noqa: ANN001
    app = create_app({"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                      "virtual_keys": {"fake-prod": {"provider": "fake", "api_key": "vk-secret"}}},
                     plugins=FIRST_PARTY, load_entrypoints=False)
    app[GATEWAY].router.circuits.clock = lambda: 1_700_000_000.0
    client = await aiohttp_client(app)
    switch = Switch(fake_upstream)
    switch.failing = {"vk-secret"}
    config = node("fallback", [{"virtual_key": "fake-prod"}, leaf("b")], cb={**CB, "failure_threshold": 1})
    await send(client, config)
    await send(client, config)
    assert switch.keys() == ["vk-secret", "b", "b"]
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_circuit_transitions_total{provider="fake",state="open"} 1.0' in metrics


# -- configuration ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cb", "where", "needle"), [
    ({"failure_threshold": 2, "cooldown_interval": 10000}, "$.strategy.cb_config.cooldown_interval", ">= 30000"),
    ({"failure_threshold": 2}, "$.strategy.cb_config", "cooldown_interval"),
    ({"cooldown_interval": 60000}, "$.strategy.cb_config", "failure_threshold"),
    ({"failure_threshold": 2, "cooldown_interval": 60000, "cooldown": 1}, "$.strategy.cb_config", "cooldown"),
    ({"failure_threshold_percentage": 120, "cooldown_interval": 60000},
     "$.strategy.cb_config.failure_threshold_percentage", "<= 100"),
    ({"failure_threshold": 0, "cooldown_interval": 60000}, "$.strategy.cb_config.failure_threshold", ">= 1"),
    ({"failure_threshold": 2, "cooldown_interval": 60000, "failure_status_codes": [5000]},
     "$.strategy.cb_config.failure_status_codes[0]", "<= 599"),
    ({"failure_threshold": "two", "cooldown_interval": 60000}, "$.strategy.cb_config.failure_threshold", "int"),
])
async def test_cb_config_is_checked_with_its_path(gateway_client, fake_upstream, cb, where, needle):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=header(node("fallback", [leaf("a")], cb=cb)))
    assert resp.status == 400
    message = (await resp.json())["error"]["message"]
    assert f"at `{where}`" in message and needle in message
    assert fake_upstream.requests == []


async def test_a_nested_cb_config_is_named_by_its_path(gateway_client, fake_upstream):  # noqa: ANN001
    config = node("fallback", [node("loadbalance", [leaf("a")], cb={"failure_threshold": 1, "cooldown_interval": 5})])
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=header(config))
    assert resp.status == 400
    assert "at `$.targets[0].strategy.cb_config.cooldown_interval`" in (await resp.json())["error"]["message"]


def test_the_settings_schema_describes_cb_config(gateway_app):  # noqa: ANN001
    schema = settings_schema(gateway_app[GATEWAY].pm)
    defs = schema["$defs"]
    cb = defs["CircuitBreakerConfig"]
    assert set(cb["properties"]) == {"failure_threshold", "failure_threshold_percentage", "cooldown_interval",
                                     "failure_status_codes", "minimum_requests"}
    assert cb["required"] == ["cooldown_interval"] and cb["additionalProperties"] is False
    assert cb["properties"]["cooldown_interval"] == {"type": "integer", "minimum": 30000, "maximum": 86400000}
    for name in ("FallbackStrategy", "LoadbalanceStrategy", "SingleStrategy", "ConditionalStrategy"):
        assert defs[name]["properties"]["cb_config"]["anyOf"][0] == {"$ref": "#/$defs/CircuitBreakerConfig"}
    sticky = defs["LoadbalanceStrategy"]["properties"]
    assert sticky["sticky"]["anyOf"][0] == sticky["sticky_session"]["anyOf"][0] == {"$ref": "#/$defs/StickyConfig"}
    assert set(defs["StickyConfig"]["properties"]) == {"enabled", "hash_fields", "ttl"}


def test_gateway_config_check_names_the_path_in_a_saved_config(tmp_path) -> None:  # noqa: ANN001
    settings = tmp_path / "gateway.toml"
    settings.write_text("""
[configs.pc-cb]
strategy = { mode = "fallback", cb_config = { failure_threshold = 2, cooldown_interval = 1000 } }
targets = [ { provider = "openai", api_key = "k" } ]

[configs.pc-sticky]
strategy = { mode = "loadbalance", sticky = { hash_fields = ["cookie.session"] } }
targets = [ { provider = "openai", api_key = "k" } ]
""")
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "check", str(settings)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")})
    assert proc.returncode == 2, proc.stderr
    assert "[configs.pc-cb]" in proc.stderr and "$.strategy.cb_config.cooldown_interval" in proc.stderr
    assert "[configs.pc-sticky]" in proc.stderr and "$.strategy.sticky.hash_fields[0]" in proc.stderr
