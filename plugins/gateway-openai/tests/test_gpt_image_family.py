"""The GPT image family (gpt-image-*, chatgpt-image-*): matched by name, never sent
``response_format``, gpt-image-2's size rule, and no model injected."""
from __future__ import annotations

import msgspec
import pytest

from gateway.sdk import BadParam
from gateway.testing import PNG_1X1, make_attempt
from gateway_openai import OpenAIProvider
from gateway_openai import testing as openai_fake

H = {"x-portkey-provider": "openai", "Authorization": "Bearer sk-openai-1"}
GEN = "/v1/images/generations"


@pytest.mark.parametrize("model", ["gpt-image-1.5", "gpt-image-2", "gpt-image-2-2026-04-21", "chatgpt-image-latest",
                                   "gpt-image-2.6-sunburst"])
async def test_the_family_never_gets_response_format_and_url_is_honoured(gateway_client, fake_upstream, model):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": model, "response_format": "url"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last.json()
    assert "response_format" not in sent and sent["model"] == model
    url = (await resp.json())["data"][0]["url"]
    assert "/v1/images/files/" in url  # the base64 answer kept in the image store
    image = await gateway_client.get(url[url.index("/v1/"):])
    assert await image.read() == PNG_1X1


async def test_a_request_without_model_goes_without_one(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "size": "1536x1024"}, headers=H)
    sent = fake_upstream.last.json()
    assert "model" not in sent and sent["size"] == "1536x1024"  # nothing mapped to a dall-e model
    assert "x-portkey-adjusted-params" not in resp.headers


async def test_usage_reaches_the_client_and_the_log_line(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1.5", "n": 2}, headers=H)
    doc = await resp.json()
    assert doc["usage"] == {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110}
    assert log_capture.events("request.finished")[-1]["usage"] == doc["usage"]


@pytest.mark.parametrize(("asked", "sent"), [
    ("1536x864", "1536x864"),      # valid: divisible by 16, within 1:3..3:1, under 3840x2160
    ("1000x1000", "992x992"),      # sides to multiples of 16
    ("4000x1000", "2976x992"),     # 4:1 cut to 3:1
    ("7680x4320", "3840x2160"),    # scaled into the maximum
    ("auto", "auto"),
])
async def test_gpt_image_2_sizes_are_fitted_to_its_rule(gateway_client, fake_upstream, asked, sent):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-2", "size": asked}, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json()["size"] == sent
    if asked != sent:
        assert resp.headers["x-portkey-adjusted-params"] == f"size={asked}->{sent}"


async def test_gpt_image_2_strict_names_the_rule(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-2", "size": "4000x1000"},
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "size" and "multiples of 16" in err["message"] and "3:1" in err["message"]
    assert fake_upstream.requests == []


def test_the_older_family_keeps_its_three_sizes():
    attempt = make_attempt(OpenAIProvider, body={"prompt": "a fox", "model": "gpt-image-1-mini", "size": "1792x1024"})
    assert attempt.plan.parts[0].size == "1536x1024"
    with pytest.raises(BadParam, match="allowed: 1024x1024, 1536x1024, 1024x1536, auto"):
        make_attempt(OpenAIProvider, body={"prompt": "a fox", "model": "chatgpt-image-latest", "size": "1792x1024"},
                     headers={"x-portkey-strict-params": "true"})


def test_dall_e_is_still_declared_for_what_still_names_it():
    attempt = make_attempt(OpenAIProvider, body={"prompt": "a fox", "model": "dall-e-3", "response_format": "url"})
    req = attempt.provider.build_generation(attempt, attempt.plan.parts[0])
    assert msgspec.json.decode(req.body)["response_format"] == "url"


async def test_a_streamed_generation_relays_each_event_as_it_comes(gateway_server, fake_upstream):  # noqa: ANN001
    import time

    import openai

    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key="sk-openai-1",
                                  default_headers={"x-portkey-provider": "openai"}, max_retries=0) as sdk:
        stream = await sdk.images.generate(model="gpt-image-1.5", prompt="a fox", stream=True, partial_images=2)
        seen = []
        async for event in stream:
            seen.append((event.type, time.monotonic()))
    assert [t for t, _ in seen] == ["image_generation.partial_image", "image_generation.partial_image",
                                    "image_generation.completed"]
    # Each event reached the client when the provider sent it, not all together at the end.
    gaps = [b - a for (_, a), (_, b) in zip(seen, seen[1:])]
    assert all(gap > openai_fake.STREAM_GAP / 2 for gap in gaps), gaps
    sent = fake_upstream.last.json()
    assert sent["stream"] is True and sent["partial_images"] == 2


async def test_a_streamed_generation_that_fails_before_the_stream_is_an_http_error(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1.5", "stream": True,
                                                "partial_images": 9}, headers=H)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "partial_images" and err["message"].startswith("openai error: ")
    # More images than one call makes cannot be one stream.
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "dall-e-3", "n": 2, "stream": True},
                                     headers=H)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "n"
