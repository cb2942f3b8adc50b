"""The gateway's provider conformance suite, run against the Replicate fake.

A generation is create-then-poll here: success, hang and the cancel check
install the whole fake API (create, get, cancel, output files) instead of one
route; a hung prediction counts as cancelled when the fake receives
``POST /v1/predictions/{id}/cancel``.  The app polls without the real pauses
(:class:`QuickPolls` swaps the sleeper the core hands providers).
"""
from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import msgspec

import gateway_replicate
from gateway.sdk import Services, hookimpl
from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import ProviderContract
from gateway_replicate.testing import NSFW, PROBLEM, install


class QuickPolls:
    """A plugin making the app's polls wait at most 10 ms."""

    @hookimpl
    def gateway_configure(self, services: Services) -> None:
        async def quick(seconds: float) -> None:
            await asyncio.sleep(min(seconds, 0.01))

        services.sleep = quick


class TestReplicateContract(ProviderContract):
    provider = "replicate"
    plugins: ClassVar[list[Any]] = [gateway_replicate, QuickPolls()]
    entrypoint = "replicate"
    model = "black-forest-labs/flux-schnell"
    route = ("POST", "/v1/models/black-forest-labs/flux-schnell/predictions")
    base_path = "/v1"
    odd_size = "1792x1024"
    mapped_size = "16:9"

    def images_asked(self, rec: Recorded) -> int:
        return rec.json()["input"].get("num_outputs", 1)

    def sent_size(self, rec: Recorded) -> str:
        return rec.json()["input"]["aspect_ratio"]

    def error_answer(self, status: int, message: str) -> Reply:
        body = {"title": "Input validation failed", "detail": f"- input.prompt: {message}\n", "status": status,
                "invalid_fields": [{"type": "string_lte", "field": "input.prompt", "description": message}]}
        return Reply(status, body=msgspec.json.encode(body), content_type=PROBLEM)

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(201, json={"id": "q5dc4zt3ehrme0cmq3qv8pbnnm", "status": "failed", "output": None,
                                "error": NSFW})

    def install_success(self, fake: FakeUpstream, served: list[list[bytes]]) -> None:
        # One poll before each prediction succeeds, so the checks go through create and get.
        replicate = install(fake, steps=1)
        replicate.served = served

    def install_hang(self, fake: FakeUpstream) -> None:
        install(fake, never=True)

    async def assert_upstream_cancelled(self, fake: FakeUpstream) -> None:
        for _ in range(250):
            if any(r.method == "POST" and r.path.endswith("/cancel") for r in fake.requests):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the prediction was not cancelled")
