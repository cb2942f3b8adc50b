"""The official openai SDK and the portkey_ai SDK work against the gateway unchanged."""
from __future__ import annotations

import base64

import httpx
import openai
import pytest
from portkey_ai import AsyncPortkey, createHeaders

from gateway_openai import testing as openai_fake
# This module runs through the first-party providers (their declared models, their fakes).
from first_party import gateway_plugins, gateway_settings  # noqa: F401  (fixtures)


@pytest.fixture
def openai_upstream(fake_upstream):  # noqa: ANN001, ANN201
    return openai_fake.install(fake_upstream)


async def test_openai_sdk_dall_e_3(gateway_server, openai_upstream):  # noqa: ANN001
    client = openai.AsyncOpenAI(
        api_key="sk-test-123", base_url=str(gateway_server.make_url("/v1")),
        default_headers=createHeaders(provider="openai"), max_retries=0,
    )
    async with client:
        resp = await client.images.generate(model="dall-e-3", prompt="a red fox", size="1792x1024", quality="hd")
    assert resp.data[0].url.startswith("https://")
    assert resp.data[0].revised_prompt == "A revised a red fox"
    sent = openai_upstream.last
    assert sent.path == "/v1/images/generations"
    assert sent.headers["Authorization"] == "Bearer sk-test-123"
    assert sent.json() == {"model": "dall-e-3", "prompt": "a red fox", "size": "1792x1024", "quality": "hd"}
    assert not [k for k in sent.headers if k.lower().startswith("x-portkey-")]


async def test_openai_sdk_gpt_image_params_pass_through_byte_for_byte(gateway_server, openai_upstream):  # noqa: ANN001
    client = openai.AsyncOpenAI(
        api_key="sk-test-123", base_url=str(gateway_server.make_url("/v1")),
        default_headers=createHeaders(provider="openai"), max_retries=0,
    )
    async with client:
        resp = await client.images.with_raw_response.generate(
            model="gpt-image-1", prompt="a logo", background="transparent", output_format="webp",
            moderation="low", quality="low", size="1024x1536",
        )
    parsed = resp.parse()
    assert base64.b64decode(parsed.data[0].b64_json) == openai_fake.PNG_1X1
    assert parsed.background == "transparent"
    sent = openai_upstream.last.json()
    assert sent["background"] == "transparent" and sent["moderation"] == "low" and sent["output_format"] == "webp"
    assert resp.headers["x-portkey-provider"] == "openai"
    assert resp.headers["x-portkey-last-used-option-index"] == "config"
    assert resp.headers["x-portkey-retry-attempt-count"] == "0"
    assert resp.headers["x-portkey-cache-status"] == "DISABLED"
    assert len(resp.headers["x-portkey-trace-id"]) == 32
    assert resp.headers["x-request-id"] == "req_fake"


async def test_portkey_sdk(gateway_server, openai_upstream):  # noqa: ANN001
    # Our own httpx client, closed here: the SDK leaves its default one open.
    async with httpx.AsyncClient() as http:
        client = AsyncPortkey(
            base_url=str(gateway_server.make_url("/v1")), provider="openai", Authorization="Bearer sk-pk-1",
            trace_id="trace-abc", metadata={"team": "growth"}, http_client=http,
        )
        async with client:
            resp = await client.images.generate(model="dall-e-2", prompt="a cat", n=2, size="256x256")
    assert len(resp.data) == 2
    sent = openai_upstream.last
    assert sent.headers["Authorization"] == "Bearer sk-pk-1"
    assert sent.json()["n"] == 2
    assert not [k for k in sent.headers if k.lower().startswith("x-portkey-")]


async def test_openai_sdk_sees_provider_error(gateway_server, openai_upstream):  # noqa: ANN001
    client = openai.AsyncOpenAI(
        api_key="sk-test-123", base_url=str(gateway_server.make_url("/v1")),
        default_headers=createHeaders(provider="openai"), max_retries=0,
    )
    async with client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.images.generate(model="dall-e-3", prompt="content_policy test")
    assert info.value.status_code == 400
    assert info.value.code == "content_policy_violation"
    assert "openai error: Your request was rejected" in info.value.message
