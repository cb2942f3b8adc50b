"""The Redis cache backend against a real redis-server, with two real gateway processes sharing it."""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
import redis.asyncio as aioredis

from gateway.testing import Reply

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (.ci/run installs it)")
GATEWAY_BIN = str(Path(sys.executable).with_name("gateway"))
GEN = "/v1/images/generations"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def redis() -> Iterator[RedisProcess]:
    r = RedisProcess()
    r.start()
    try:
        yield r
    finally:
        r.stop()


class GatewayProcess:
    def __init__(self, config: Path) -> None:
        self.port = free_port()
        self.log = config.with_suffix(f".{self.port}.log")
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [GATEWAY_BIN, "serve", "--port", str(self.port), "--config", str(config)],
            stdout=self._out, stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                async with session.get(self.url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("gateway did not start: " + self.log.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._out.close()

    def lines(self) -> list[dict]:
        out = []
        for line in self.log.read_bytes().splitlines():
            try:
                out.append(msgspec.json.decode(line))
            except msgspec.DecodeError:
                pass
        return out


@contextlib.asynccontextmanager
async def two_gateways(config: Path) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess, aiohttp.ClientSession]]:
    """Two ``gateway serve`` processes on one settings file, ready, and a client session."""
    a, b = GatewayProcess(config), GatewayProcess(config)
    session = aiohttp.ClientSession()
    try:
        await a.ready(session)
        await b.ready(session)
        yield a, b, session
    finally:
        await session.close()
        a.stop()
        b.stop()


@pytest.fixture
async def pair(tmp_path, redis, fake_upstream) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess, aiohttp.ClientSession]]:  # noqa: ANN001
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[providers.openai]
base_url = "{fake_upstream.url}/v1"

[cache]
backend = "redis"
# Generous: a 1.6 MB entry on a loaded CI machine must not time out into a second upstream call.
op_timeout = 3.0

[redis]
url = "{redis.url}"
""")
    async with two_gateways(config) as pair:
        yield pair


CFG = {"x-portkey-config": msgspec.json.encode(
    {"provider": "openai", "api_key": "sk-shared", "cache": {"mode": "simple", "max_age": 120}}).decode()}


async def post(session: aiohttp.ClientSession, gw: GatewayProcess, prompt: str, **headers: str) -> tuple[str, dict]:
    async with session.post(gw.url + GEN, json={"prompt": prompt}, headers={**CFG, **headers}) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["x-portkey-cache-status"], await resp.json()


async def until_hit(session, gw, prompt) -> dict:  # noqa: ANN001
    """The store runs just after the answer is sent: wait for it to land."""
    for _ in range(50):
        status, body = await post(session, gw, prompt)
        if status == "HIT":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("never a HIT")


async def test_a_miss_on_one_instance_is_a_hit_on_the_other(pair, fake_upstream):  # noqa: ANN001
    a, b, session = pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "QUJD" * 400_000}]}))
    status, first = await post(session, a, "shared fox")
    assert status == "MISS"
    assert await until_hit(session, b, "shared fox") == first
    assert len(fake_upstream.requests) == 1, [l for l in a.lines() + b.lines() if l.get("event") != "request.finished"]


async def test_force_refresh_on_one_is_what_the_other_serves_next(pair, fake_upstream):  # noqa: ANN001
    a, b, session = pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}), Reply(json={"created": 2, "data": [{"b64_json": "aGk="}]}))
    await post(session, a, "refresh me")
    await until_hit(session, a, "refresh me")
    status, body = await post(session, b, "refresh me", **{"x-portkey-cache-force-refresh": "true"})
    assert status == "REFRESH" and body["created"] == 2
    for _ in range(50):
        status, body = await post(session, a, "refresh me")
        if body["created"] == 2:
            break
        await asyncio.sleep(0.05)
    assert status == "HIT" and body["created"] == 2
    assert len(fake_upstream.requests) == 2


async def test_concurrent_identical_requests_across_instances_make_one_call(pair, fake_upstream):  # noqa: ANN001
    a, b, session = pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 7, "data": [{"b64_json": "aW1n"}]}, delay=0.6))
    results = await asyncio.gather(*[post(session, gw, "stampede") for gw in (a, b) * 5])
    assert len(fake_upstream.requests) == 1, ([s for s, _ in results], [l for l in a.lines() + b.lines() if l.get("event") != "request.finished"])
    assert all(body["created"] == 7 for _, body in results)
    assert sorted(s for s, _ in results).count("MISS") == 1


async def test_redis_outage_serves_without_cache_and_recovers(pair, redis, fake_upstream):  # noqa: ANN001
    a, b, session = pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    redis.stop()
    statuses = [(await post(session, a, f"outage {i}"))[0] for i in range(5)]
    assert set(statuses) == {"DISABLED"}
    unavailable = [line for line in a.lines() if line.get("event") == "cache.unavailable"]
    assert len(unavailable) == 1  # once per outage, not per request
    redis.start()
    await asyncio.sleep(5.5)  # the gateway tries Redis again after a few seconds
    status, _ = await post(session, a, "after the outage")
    assert status == "MISS"
    await until_hit(session, b, "after the outage")
    assert any(line.get("event") == "cache.recovered" for line in a.lines())
    assert all(line.get("status") != 500 for line in a.lines() + b.lines())


# -- gateway keys: one limit across instances ---------------------------------------------------------

KEYED = """
[providers.openai]
base_url = "{upstream}/v1"

[virtual_keys.openai-prod]
provider = "openai"
api_key = "sk-stored"

[cache]
backend = "redis"
op_timeout = 0.3

[redis]
url = "{redis}"

[gateway_keys.ci]
key_env = "GK_CI"
requests_per_minute = 4

[gateway_keys.batch]
key_env = "GK_BATCH"
images_per_day = 5

[gateway_keys.spend]
key_env = "GK_SPEND"
cost_per_day = 0.12
# What a budget counts before the answer says (the priced cost replaces it after).
image_cost = 0.01

[gateway_keys.monthly]
key_env = "GK_MONTHLY"
cost_per_month = 0.12
image_cost = 0.01

[gateway_keys.burst]
key_env = "GK_BURST"
images_per_minute = 3

[prices.openai.gpt-image-1]
per_image = 0.04
"""
#: Priced by ``[prices.openai.gpt-image-1]`` above.
MODEL = "gpt-image-1"
CI_KEY, BATCH_KEY, SPEND_KEY = "gk-ci-0123456789abcdef", "gk-batch-0123456789abcdef", "gk-spend-0123456789abcdef"
MONTHLY_KEY, BURST_KEY = "gk-monthly-0123456789abcdef", "gk-burst-0123456789abcdef"


@pytest.fixture
async def keyed_pair(tmp_path, redis, fake_upstream, monkeypatch) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess, aiohttp.ClientSession]]:  # noqa: ANN001
    monkeypatch.setenv("GK_CI", CI_KEY)
    monkeypatch.setenv("GK_BATCH", BATCH_KEY)
    monkeypatch.setenv("GK_SPEND", SPEND_KEY)
    monkeypatch.setenv("GK_MONTHLY", MONTHLY_KEY)
    monkeypatch.setenv("GK_BURST", BURST_KEY)
    config = tmp_path / "gateway.toml"
    config.write_text(KEYED.format(upstream=fake_upstream.url, redis=redis.url))
    async with two_gateways(config) as pair:
        yield pair


async def generate(session: aiohttp.ClientSession, gw: GatewayProcess, key: str, n: int = 1,
                   **body: object) -> tuple[int, dict, dict]:
    headers = {"x-portkey-api-key": key, "x-portkey-virtual-key": "openai-prod"}
    async with session.post(gw.url + GEN, json={"prompt": "a fox", "n": n, **body}, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def test_a_rate_limit_holds_across_two_instances(keyed_pair, fake_upstream):  # noqa: ANN001
    a, b, session = keyed_pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    left = 60 - time.time() % 60
    if left < 8:  # all the requests in one minute's window
        await asyncio.sleep(left + 0.2)
    results = await asyncio.gather(*[generate(session, gw, CI_KEY) for gw in (a, b) * 4])
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 4 + [429] * 4
    for status, headers, body in results:
        if status == 429:
            assert body["error"]["code"] == "rate_limit_exceeded"
            assert 1 <= int(headers["Retry-After"]) <= 60
    assert len(fake_upstream.requests) == 4
    lines = [line for line in a.lines() + b.lines() if line.get("event") == "request.finished"]
    assert {line["key"] for line in lines} == {"ci"}
    assert CI_KEY not in a.log.read_text() + b.log.read_text()


async def test_images_per_day_counts_n_across_two_instances(keyed_pair, fake_upstream):  # noqa: ANN001
    a, b, session = keyed_pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}] * 2}))
    assert (await generate(session, a, BATCH_KEY, n=2))[0] == 200
    assert (await generate(session, b, BATCH_KEY, n=2))[0] == 200
    status, _, body = await generate(session, a, BATCH_KEY, n=2)
    assert status == 429 and "asks for 2" in body["error"]["message"]
    assert (await generate(session, b, BATCH_KEY, n=1))[0] == 200
    assert (await generate(session, a, BATCH_KEY, n=1))[0] == 429


async def spent(redis: RedisProcess, expected: float, counter: str = "gk:{spend}:cost_per_day") -> None:  # noqa: F811
    """Wait until the key's shared ``counter`` (the day's, unless told) holds ``expected`` (a
    request's cost settles just after its answer is sent), then return."""
    client = aioredis.from_url(redis.url)
    try:
        for _ in range(100):
            keys = [k async for k in client.scan_iter(match=f"*{counter}:*")]
            values = [int(v) for v in await client.mget(keys)] if keys else [0]
            if values == [round(expected * 1_000_000)]:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the shared counter {counter} holds {values}, not {expected}")
    finally:
        await client.aclose()


async def test_cost_per_day_holds_across_two_instances(keyed_pair, redis, fake_upstream):  # noqa: ANN001, F811
    a, b, session = keyed_pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}] * 2}))
    # Admitted on the estimate (2 x image_cost 0.01), settled to its price (2 x 0.04).
    assert (await generate(session, a, SPEND_KEY, n=2, model=MODEL))[0] == 200
    await spent(redis, 0.08)
    status, headers, body = await generate(session, b, SPEND_KEY, n=5, model=MODEL)
    assert status == 429 and body["error"]["code"] == "budget_exceeded", body
    assert "0.12 per day" in body["error"]["message"] and "would cost 0.05" in body["error"]["message"]
    assert 1 <= int(headers["Retry-After"]) <= 86400
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    assert (await generate(session, b, SPEND_KEY, n=1, model=MODEL))[0] == 200
    await spent(redis, 0.12)  # A's spending and B's, in one counter: the day's budget is used up
    status, _, body = await generate(session, a, SPEND_KEY, n=1, model=MODEL)
    assert status == 429 and body["error"]["code"] == "budget_exceeded"
    assert len(fake_upstream.requests) == 2


async def test_cost_per_month_holds_across_two_instances(keyed_pair, redis, fake_upstream):  # noqa: ANN001, F811
    a, b, session = keyed_pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}] * 2}))
    assert (await generate(session, a, MONTHLY_KEY, n=2, model=MODEL))[0] == 200  # settles to 0.08
    await spent(redis, 0.08, "gk:{monthly}:cost_per_month")
    status, headers, body = await generate(session, b, MONTHLY_KEY, n=5, model=MODEL)
    assert status == 429 and "0.12 per month" in body["error"]["message"], body
    assert 1 <= int(headers["Retry-After"]) <= 31 * 86400
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    assert (await generate(session, b, MONTHLY_KEY, n=1, model=MODEL))[0] == 200
    await spent(redis, 0.12, "gk:{monthly}:cost_per_month")
    assert (await generate(session, a, MONTHLY_KEY, n=1, model=MODEL))[0] == 429
    assert len(fake_upstream.requests) == 2


async def test_images_per_minute_counts_n_across_two_instances(keyed_pair, fake_upstream):  # noqa: ANN001
    a, b, session = keyed_pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}] * 2}))
    left = 60 - time.time() % 60
    if left < 8:  # all the requests in one minute's window
        await asyncio.sleep(left + 0.2)
    assert (await generate(session, a, BURST_KEY, n=2))[0] == 200
    status, _, body = await generate(session, b, BURST_KEY, n=2)
    assert status == 429 and "3 images per minute" in body["error"]["message"], body
    assert (await generate(session, b, BURST_KEY, n=1))[0] == 200
    assert (await generate(session, a, BURST_KEY, n=1))[0] == 429


async def test_with_redis_down_limits_count_per_instance_and_the_outage_is_logged_once(keyed_pair, redis, fake_upstream):  # noqa: ANN001
    a, b, session = keyed_pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}] * 2}))
    assert (await generate(session, a, BATCH_KEY, n=4))[0] == 200
    redis.stop()
    # `local` (the default): each instance now counts on its own, from zero.
    assert [(await generate(session, b, BATCH_KEY, n=2))[0] for _ in range(3)] == [200, 200, 429]
    assert (await generate(session, a, BATCH_KEY, n=5))[0] == 200
    assert (await generate(session, a, BATCH_KEY, n=1))[0] == 429
    outages = [line for line in b.lines() if line.get("event") == "limits.unavailable"]
    assert len(outages) == 1 and outages[0]["policy"] == "local"
    assert all(line.get("status") != 500 for line in a.lines() + b.lines())
