"""The seed cookbook's fallback config with the providers people call in 2026: Gemini first,
FLUX from Black Forest Labs when Gemini cannot answer, through the official openai SDK."""
from __future__ import annotations

import base64
from typing import Any

import gateway_black_forest_labs
import gateway_google.gemini_api
import msgspec
import openai
import pytest
from first_party import FIRST_PARTY
from gateway_black_forest_labs import testing as bfl_fake
from gateway_google import testing as gemini_fake

from gateway.keys import GATEWAY
from gateway.testing import Reply

GEMINI = "gemini-3.1-flash-image"
FALLBACK = msgspec.json.encode({
    "strategy": {"mode": "fallback"},
    "targets": [
        {"provider": "google", "api_key": gemini_fake.KEY, "override_params": {"model": GEMINI}},
        {"provider": "black-forest-labs", "api_key": "bfl-test-key", "override_params": {"model": "flux-2-pro"}},
    ],
}).decode()


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return [*FIRST_PARTY, gateway_google.gemini_api, gateway_black_forest_labs]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"google": {"base_url": fake_upstream.url + "/v1beta"},
                          "black-forest-labs": {"base_url": fake_upstream.url}}}


@pytest.fixture
async def client(gateway_server):  # noqa: ANN001, ANN201
    async def no_sleep(_seconds: float) -> None:
        return None

    gateway_server.app[GATEWAY].sleep = no_sleep  # BFL's polls, without the waits
    async with openai.AsyncOpenAI(api_key="unused", base_url=str(gateway_server.make_url("/v1")), max_retries=0,
                                  default_headers={"x-portkey-config": FALLBACK}) as sdk:
        yield sdk


async def test_gemini_answers_first(client, fake_upstream):  # noqa: ANN001
    gemini = gemini_fake.install(fake_upstream)
    bfl = bfl_fake.install(fake_upstream)
    result = await client.images.generate(prompt="a red fox in snow", size="1536x1024", response_format="b64_json")
    assert base64.b64decode(result.data[0].b64_json) == gemini.served[0][0]
    [sent] = gemini.generations()
    assert sent.json()["generationConfig"]["imageConfig"]["aspectRatio"] == "3:2"
    assert bfl.creates() == []


async def test_flux_answers_when_gemini_is_out_of_quota(client, fake_upstream):  # noqa: ANN001
    gemini_fake.install(fake_upstream)
    fake_upstream.on("POST", f"/v1beta/models/{GEMINI}:generateContent", Reply(429, json=gemini_fake.error_doc(
        429, "Resource has been exhausted (e.g. check quota).")))
    bfl = bfl_fake.install(fake_upstream, steps=2)
    raw = await client.images.with_raw_response.generate(prompt="a red fox in snow", size="1024x1024",
                                                         response_format="b64_json")
    result = raw.parse()
    assert base64.b64decode(result.data[0].b64_json) == bfl.served[0][0]
    assert raw.headers["x-portkey-provider"] == "black-forest-labs"
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    [create] = bfl.creates()
    assert create.path == "/v1/flux-2-pro" and create.json()["width"] == 1024
    assert create.headers["x-key"] == "bfl-test-key"
