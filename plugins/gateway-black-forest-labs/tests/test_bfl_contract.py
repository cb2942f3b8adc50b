"""The gateway's provider conformance suite, run against the Black Forest Labs fake.

A generation is create-then-poll here: success and hang install the whole fake API (create,
get_result, result images) instead of one route.  BFL has no cancel endpoint, so a task the
gateway gives up on counts as abandoned when the polls stop.  The app polls without the real
pauses (:class:`QuickPolls` swaps the sleeper the core hands providers).
"""
from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import gateway_black_forest_labs
from gateway.sdk import Services, hookimpl
from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import ProviderContract, make_png
from gateway_black_forest_labs.testing import install


class QuickPolls:
    """A plugin making the app's polls wait at most 10 ms."""

    @hookimpl
    def gateway_configure(self, services: Services) -> None:
        async def quick(seconds: float) -> None:
            await asyncio.sleep(min(seconds, 0.01))

        services.sleep = quick


class TestBlackForestLabsContract(ProviderContract):
    provider = "black-forest-labs"
    plugins: ClassVar[list[Any]] = [gateway_black_forest_labs, QuickPolls()]
    entrypoint = "black-forest-labs"
    model = "flux-2-pro"
    route = ("POST", "/v1/flux-2-pro")
    base_path = ""
    # FLUX.2: sides in multiples of 16 (1000 / 16 = 62.5, rounded to even: 62 * 16).
    odd_size = "1000x1000"
    mapped_size = "992x992"

    def images_asked(self, rec: Recorded) -> int:
        return 1

    def sent_size(self, rec: Recorded) -> str:
        body = rec.json()
        return f"{body['width']}x{body['height']}"

    def assert_auth(self, rec: Recorded) -> None:
        assert rec.headers.get("x-key") == self.api_key
        assert "Authorization" not in rec.headers

    def error_answer(self, status: int, message: str) -> Reply:
        return Reply(status, json={"detail": message})

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        task = "2f4e9c1a-moderated"
        fake.on("GET", "/v1/get_result", Reply(json={
            "id": task, "status": "Request Moderated", "result": None, "progress": None,
            "details": {"Moderation Reasons": ["Derivative Works"]}, "preview": None}))
        return Reply(json={"id": task, "polling_url": f"{fake.url}/v1/get_result?id={task}"})

    def install_success(self, fake: FakeUpstream, served: list[list[bytes]]) -> None:
        # PNG results (the checks read the stored image's type); one Pending poll first.
        bfl = install(fake, steps=1, images=lambda fmt, k: make_png(k))
        bfl.served = served

    def install_hang(self, fake: FakeUpstream) -> None:
        install(fake, never=True)

    async def assert_upstream_cancelled(self, fake: FakeUpstream) -> None:
        def polls() -> int:
            return sum(1 for r in fake.requests if r.path == "/v1/get_result")

        for _ in range(100):
            before = polls()
            await asyncio.sleep(0.1)
            if before and polls() == before:
                await asyncio.sleep(0.2)
                assert polls() == before, "the task is still being polled"
                return
        raise AssertionError("the task was never polled, or its polls never stopped")
