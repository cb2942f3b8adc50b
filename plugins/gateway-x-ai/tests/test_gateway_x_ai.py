"""The xAI plugin end to end: the real gateway (and the openai SDK) against the fake of xAI's
images API, asserting exactly what was sent; and the provider conformance suite."""
from __future__ import annotations

import base64
from pathlib import Path

import openai
import pytest

import gateway_x_ai
from gateway.testing import FakeUpstream, Recorded, Reply, image_url_allowed
from gateway.testing.provider_contract import ProviderContract
from gateway_x_ai import XAIProvider
from gateway_x_ai.testing import GENERATIONS, KEY, REFUSED, WITHHELD

H = {"x-portkey-provider": "x-ai", "Authorization": f"Bearer {KEY}"}


@pytest.fixture
def gateway_settings(fake_upstream, xai):  # noqa: ANN001, ANN201
    return {"providers": {"x-ai": {"base_url": fake_upstream.url + "/v1"}},
            "virtual_keys": {"xai-prod": {"provider": "x-ai", "api_key": KEY}}}


async def test_openai_sdk_request_becomes_xai_body(gateway_server, fake_upstream, xai):  # noqa: ANN001
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key=KEY, max_retries=0,
                                  default_headers={"x-portkey-provider": "x-ai"}) as sdk:
        result = await sdk.images.generate(model="grok-imagine-image", prompt="a fox", n=3, size="1792x1024",
                                           response_format="b64_json", user="u-1")
    assert [base64.b64decode(d.b64_json) for d in result.data] == xai.served
    assert fake_upstream.last.path == GENERATIONS
    assert fake_upstream.last.json() == {"prompt": "a fox", "model": "grok-imagine-image", "n": 3,
                                         "response_format": "b64_json", "user": "u-1", "aspect_ratio": "16:9",
                                         "resolution": "1k"}
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {KEY}"


async def test_default_model_and_url_answers_handed_on(gateway_client, fake_upstream, xai):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox", "response_format": "url"}, headers=H)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["provider"] == "x-ai" and isinstance(doc["created"], int)
    assert doc["data"][0]["url"].startswith(fake_upstream.url + "/xai-imgen/")
    assert fake_upstream.last.json() == {"prompt": "a fox", "model": "grok-imagine-image", "response_format": "url"}


async def test_quality_on_the_2_family_goes_as_sent(gateway_client, fake_upstream, xai):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox", "model": "grok-imagine-image-2.0",
                                                        "response_format": "b64_json", "quality": "low"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) == xai.served[0]
    assert fake_upstream.requests[0].json()["quality"] == "low"


async def test_ten_images_are_one_call_and_more_are_capped(gateway_client, fake_upstream, xai):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox", "n": 12, "response_format": "b64_json"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 10
    assert resp.headers["x-portkey-adjusted-params"] == "n=12->10"
    assert [r.json()["n"] for r in fake_upstream.requests] == [10]
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox", "n": 12},
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "n"
    assert len(fake_upstream.requests) == 1


async def test_quality_on_another_model_is_dropped_not_sent(gateway_client, fake_upstream, xai):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox", "quality": "hd", "style": "vivid"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "quality=hd->(dropped); style=vivid->(dropped)"
    assert set(fake_upstream.last.json()) == {"prompt", "model"}


@pytest.mark.parametrize("word", [REFUSED, WITHHELD])
async def test_moderation_refusals_carry_the_policy_code(gateway_client, xai, word):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": f"a {word}"}, headers=H)
    assert resp.status == 400, await resp.text()
    doc = await resp.json()
    assert doc["error"]["code"] == "content_policy_violation" and doc["provider"] == "x-ai"
    assert "content moderation" in doc["error"]["message"]


async def test_xai_errors_keep_their_status_and_message(gateway_client, xai):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox", "model": "grok-9-video"}, headers=H)
    assert resp.status == 404
    assert "grok-9-video does not exist" in (await resp.json())["error"]["message"]
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox"},
                                     headers={**H, "Authorization": "Bearer xai-wrong-key"})
    assert resp.status == 400
    message = (await resp.json())["error"]["message"]
    assert "Incorrect API key provided" in message and "xai-wrong-key" not in message


async def test_virtual_key_sends_its_stored_key(gateway_client, fake_upstream, xai):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox"},
                                     headers={"x-portkey-virtual-key": "xai-prod"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {KEY}"


async def test_passthrough_reaches_xai_with_auth(gateway_client, fake_upstream, xai):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/image-generation-models", Reply(json={"models": [{"id": "grok-imagine-image"}]}))
    resp = await gateway_client.get("/v1/image-generation-models", headers=H)
    assert resp.status == 200
    assert (await resp.json())["models"][0]["id"] == "grok-imagine-image"
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {KEY}"
    assert not [k for k in fake_upstream.last.headers if k.lower().startswith("x-portkey-")]


def test_image_urls_are_fetched_from_xai_hosts_only() -> None:
    assert image_url_allowed(XAIProvider, "https://imgen.x.ai/xai-imgen/xai-tmp-imgen-1.jpeg")
    assert image_url_allowed(XAIProvider, "https://files-cdn.x.ai/a/file_1.png")
    assert not image_url_allowed(XAIProvider, "https://x.ai.example.com/a.png")
    assert not image_url_allowed(XAIProvider, "http://imgen.x.ai/a.png")


def test_readme_names_every_declared_family() -> None:
    readme = (Path(gateway_x_ai.__file__).parents[1] / "README.md").read_text()
    caps = XAIProvider.capabilities
    for pattern, _ in (*caps.families, *caps.edit_families):
        assert f"`{pattern}`" in readme, pattern


class TestContract(ProviderContract):
    provider = "x-ai"
    plugins = [gateway_x_ai]
    entrypoint = "x-ai"
    model = "grok-imagine-image"
    route = ("POST", GENERATIONS)
    base_path = "/v1"
    odd_size = "1000x700"
    mapped_size = "3:2"

    def images_asked(self, rec: Recorded) -> int:
        return rec.json().get("n", 1)

    def answer(self, images: list[bytes], fake: FakeUpstream, rec: Recorded) -> Reply:
        if rec.json().get("response_format", "url") == "url":
            data = [{"url": self.serve(fake, img), "mime_type": "image/png"} for img in images]
        else:
            data = [{"b64_json": base64.b64encode(img).decode(), "mime_type": "image/png"} for img in images]
        return Reply(json={"data": data, "usage": {"cost_in_usd_ticks": 200000000 * len(images)}})

    def error_answer(self, status: int, message: str) -> Reply:
        return Reply(status, json={"code": "Client specified an invalid argument", "error": message})

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(400, json={"code": "Client specified an invalid argument",
                                "error": "Generated image rejected by content moderation.",
                                "usage": {"cost_in_usd_ticks": 500000000}})

    def sent_size(self, rec: Recorded) -> str:
        return rec.json()["aspect_ratio"]
