"""The provider conformance suite, once per Stability API (v1 engines, v2beta Stable Image)."""
from __future__ import annotations

from typing import Any

import gateway_stability_ai
from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import ProviderContract
from gateway_stability_ai import testing as fake_api

SDXL = "stable-diffusion-xl-1024-v1-0"


class TestV1Engine(ProviderContract):
    provider = "stability-ai"
    plugins = [gateway_stability_ai]
    entrypoint = "stability-ai"
    model = SDXL
    route = ("POST", f"/v1/generation/{SDXL}/text-to-image")
    odd_size = "1000x1000"
    mapped_size = "1024x1024"

    def images_asked(self, rec: Recorded) -> int:
        return rec.json().get("samples", 1)

    def answer(self, images: list[bytes], fake: FakeUpstream, rec: Recorded) -> Reply:
        problem, body = fake_api.check_v1(SDXL, rec)
        return problem or fake_api.v1_answer(rec, body, images)

    def error_answer(self, status: int, message: str) -> Reply:
        return fake_api.v1_error(status, "bad_request", message)

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return fake_api.v1_error(400, "invalid_prompts", "One or more prompts contains filtered words.")

    def sent_size(self, rec: Recorded) -> str:
        body: dict[str, Any] = rec.json()
        return f"{body['width']}x{body['height']}"


class TestV2StableImage(ProviderContract):
    provider = "stability-ai"
    plugins = [gateway_stability_ai]
    entrypoint = "stability-ai"
    model = "core"
    route = ("POST", "/v2beta/stable-image/generate/core")
    odd_size = "1024x1000"
    mapped_size = "1:1"

    def images_asked(self, rec: Recorded) -> int:
        return 1

    def answer(self, images: list[bytes], fake: FakeUpstream, rec: Recorded) -> Reply:
        problem, fields = fake_api.check_v2("core", rec)
        return problem or fake_api.v2_answer(rec, fields, images[0])

    def error_answer(self, status: int, message: str) -> Reply:
        return fake_api.v2_error(status, "bad_request", message)

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return fake_api.v2_error(403, "content_moderation", "Your request was flagged by our content moderation system.")

    def sent_size(self, rec: Recorded) -> str:
        form = fake_api.parse_form(rec.headers["Content-Type"], rec.body)
        assert form is not None
        return form["aspect_ratio"][1].decode()
