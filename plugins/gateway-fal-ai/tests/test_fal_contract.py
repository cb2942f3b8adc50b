"""The gateway's provider conformance suite, run against the fal queue fake.

A generation is submit, poll, read here: success, a scripted answer, a hang and the cancel
check install the whole fake API (submit, status, result, cancel, media files) instead of
one route.  The contract's model, FLUX1.1 [pro] ultra (``fal-ai/flux-pro/v1.1-ultra``), is a
sub-path model: every poll goes to its app id (``fal-ai/flux-pro``), or the fake answers 404.
Scripted answers (errors, refusals, a malformed body) are the request's *result*, where fal
answers a model's outcome.  A hung request counts as cancelled when the fake receives
``PUT .../requests/{id}/cancel``.
"""
from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import gateway_fal_ai
from gateway.sdk import Services, hookimpl
from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import ProviderContract
from gateway_fal_ai.testing import install


class QuickPolls:
    """A plugin making the app's polls wait at most 10 ms."""

    @hookimpl
    def gateway_configure(self, services: Services) -> None:
        async def quick(seconds: float) -> None:
            await asyncio.sleep(min(seconds, 0.01))

        services.sleep = quick


class TestFalContract(ProviderContract):
    provider = "fal-ai"
    plugins: ClassVar[list[Any]] = [gateway_fal_ai, QuickPolls()]
    entrypoint = "fal-ai"
    model = "fal-ai/flux-pro/v1.1-ultra"
    route = ("POST", "/fal-ai/flux-pro/v1.1-ultra")
    odd_size = "1792x1024"
    mapped_size = "16:9"

    def images_asked(self, rec: Recorded) -> int:
        return rec.json().get("num_images", 1)

    def sent_size(self, rec: Recorded) -> str:
        return rec.json()["aspect_ratio"]

    def assert_auth(self, rec: Recorded) -> None:
        assert rec.headers.get("Authorization") == f"Key {self.api_key}"

    def error_answer(self, status: int, message: str) -> Reply:
        return Reply(status, json={"detail": message})

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(422, json={"detail": [{
            "loc": ["body", "prompt"], "msg": "The content was flagged by a content checker.",
            "type": "content_policy_violation", "url": "https://docs.fal.ai/errors#content_policy_violation",
            "input": "a lighthouse at dusk", "categories": ["violence"]}]})

    def install_success(self, fake: FakeUpstream, served: list[list[bytes]]) -> None:
        fal = install(fake, steps=2)
        fal.served = served

    def install_reply(self, fake: FakeUpstream, reply: Reply) -> None:
        install(fake, steps=1, result=reply)

    def install_hang(self, fake: FakeUpstream) -> None:
        install(fake, never=True)

    async def assert_upstream_cancelled(self, fake: FakeUpstream) -> None:
        for _ in range(250):
            cancels = [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/cancel")]
            if cancels:
                assert cancels[0].path.startswith("/fal-ai/flux-pro/requests/"), cancels[0].path
                assert cancels[0].headers["Authorization"] == f"Key {self.api_key}"
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the queued request was not cancelled")
