"""The shared poller of asynchronous providers (``gateway.sdk.poll``), against a real
``Upstream`` and a fake task API on loopback: growing waits, the deadline, failed checks
tolerated or not, and the cancel sent whenever the gateway gives up on a running task."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
import pytest

from gateway.context import Record
from gateway.errors import GatewayError, MalformedAnswer
from gateway.sdk import Poll, Upstream, UpstreamRequest, poll
from gateway.testing import Reply

RUNNING = Reply(json={"status": "running"})
DONE = Reply(json={"status": "done", "image": "https://cdn/1.png"})


class Harness:
    """A real Upstream over a real session; sleeps recorded (not slept), spawned clean-ups kept."""

    def __init__(self, session: aiohttp.ClientSession, fake: Any) -> None:
        self.fake = fake
        self.sleeps: list[float] = []
        self.spawned: list[asyncio.Task[Any]] = []

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            await asyncio.sleep(0)

        self.upstream = Upstream(session, Record(), "acme", spawn=self.spawn, sleep=sleep, read_timeout=5)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.spawned.append(task)
        return task

    async def check(self) -> dict[str, Any] | None:
        answer = await self.upstream.exchange(UpstreamRequest("GET", f"{self.fake.url}/tasks/t1", {}))
        if not answer.ok:
            raise GatewayError(f"acme error: HTTP {answer.status}", status=answer.status, provider="acme")
        doc = msgspec.json.decode(answer.body)
        if doc.get("status") not in ("running", "done", "failed"):
            raise MalformedAnswer("acme", "unknown status")
        return None if doc["status"] == "running" else doc

    def spec(self, **kw: Any) -> Poll[dict[str, Any]]:
        cancel = UpstreamRequest("PUT", f"{self.fake.url}/tasks/t1/cancel", {})
        return Poll(self.check, what="task t1", cancel=cancel, **kw)

    async def cancels(self) -> int:
        await asyncio.gather(*self.spawned)
        return sum(1 for r in self.fake.requests if r.path == "/tasks/t1/cancel")


@pytest.fixture
async def harness(fake_upstream):  # noqa: ANN001, ANN201
    fake_upstream.on("PUT", "/tasks/t1/cancel", Reply(json={"status": "cancelled"}))
    async with aiohttp.ClientSession() as session:
        yield Harness(session, fake_upstream)


async def test_it_polls_with_growing_waits_until_the_task_ends(harness):  # noqa: ANN001
    harness.fake.on("GET", "/tasks/t1", RUNNING, RUNNING, RUNNING, RUNNING, DONE)
    result = await poll(harness.upstream, "acme", harness.spec(first=1.0, most=3.0, growth=2.0))
    assert result == {"status": "done", "image": "https://cdn/1.png"}
    assert harness.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]
    assert await harness.cancels() == 0


async def test_a_failed_task_is_returned_for_the_provider_to_read_and_not_cancelled(harness):  # noqa: ANN001
    harness.fake.on("GET", "/tasks/t1", RUNNING, Reply(json={"status": "failed"}))
    assert (await poll(harness.upstream, "acme", harness.spec()))["status"] == "failed"
    assert await harness.cancels() == 0


async def test_failed_checks_that_may_pass_are_tolerated_up_to_retries(harness):  # noqa: ANN001
    harness.fake.on("GET", "/tasks/t1", Reply(503, json={}), Reply(429, json={}), Reply(502, json={}), DONE)
    assert (await poll(harness.upstream, "acme", harness.spec(retries=3)))["status"] == "done"
    harness.fake.on("GET", "/tasks/t1", Reply(503, json={}), Reply(503, json={}), DONE)
    with pytest.raises(GatewayError) as e:
        await poll(harness.upstream, "acme", harness.spec(retries=1))
    assert e.value.status == 503
    assert await harness.cancels() == 1


@pytest.mark.parametrize("reply", [Reply(401, json={}), Reply(json={"status": "??"})])
async def test_a_check_that_cannot_pass_ends_the_wait_and_cancels_the_task(harness, reply):  # noqa: ANN001
    harness.fake.on("GET", "/tasks/t1", reply, DONE)
    with pytest.raises(GatewayError):
        await poll(harness.upstream, "acme", harness.spec(retries=5))
    assert await harness.cancels() == 1


async def test_the_deadline_is_a_504_naming_the_task_and_cancels_it(harness):  # noqa: ANN001
    harness.fake.on("GET", "/tasks/t1", RUNNING)
    loop = asyncio.get_running_loop()
    with pytest.raises(GatewayError) as e:
        await poll(harness.upstream, "acme", harness.spec(max_wait=0.2, started=loop.time() - 0.3,
                                                          timeout_code="render_timeout"))
    assert (e.value.status, e.value.code) == (504, "render_timeout")
    assert "acme task t1 did not finish within 0.2 s" in e.value.message
    assert await harness.cancels() == 1


async def test_a_client_gone_mid_wait_cancels_the_task(harness):  # noqa: ANN001
    harness.fake.on("GET", "/tasks/t1", Reply(json={"status": "running"}, delay=5))
    waiting = asyncio.ensure_future(poll(harness.upstream, "acme", harness.spec()))
    while not harness.fake.requests:
        await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await harness.cancels() == 1


async def test_without_a_cancel_request_nothing_is_sent(harness):  # noqa: ANN001
    harness.fake.on("GET", "/tasks/t1", Reply(401, json={}))
    with pytest.raises(GatewayError):
        await poll(harness.upstream, "acme", Poll(harness.check, what="task t1"))
    assert harness.spawned == [] and await harness.cancels() == 0
