"""Streamed answers the gateway makes itself (``stream: true`` to a provider that does not stream),
through the real openai SDK: one completed event per image, keep-alive comments while the provider
works, routing before the first byte, ``event: error`` after it, the cache both ways, the log line."""
from __future__ import annotations

import asyncio
import base64
import io

import msgspec
import openai
import pytest
from aiohttp import web

from gateway.keys import GATEWAY
from gateway.testing import PNG_1X1, Recorded, Reply
from gateway.testing import fake_provider

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-fake"}
KEEPALIVE = 0.2


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}, "images": {"stream_keepalive": KEEPALIVE}}


def sdk(server, **headers: str) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="sk-fake", max_retries=0,
                              default_headers={"x-portkey-provider": "fake", **headers})


def config(node: dict) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


async def events_of(resp) -> list[tuple[str, bytes]]:  # noqa: ANN001
    """``(event or ":comment", data)`` per block of an SSE answer's body."""
    return sse_blocks(await resp.read())


def sse_blocks(raw: bytes) -> list[tuple[str, bytes]]:
    """``(event or ":comment", data)`` per block of a raw SSE body."""
    out = []
    for block in raw.split(b"\n\n"):
        if block.startswith(b":"):
            out.append((":comment", block))
        elif block:
            head, _, data = block.partition(b"\ndata: ")
            out.append((head.removeprefix(b"event: ").decode(), data))
    return out


async def test_a_provider_that_does_not_stream_answers_one_completed_event_per_image(gateway_server, fake_upstream,  # noqa: ANN001
                                                                                     log_capture):
    async with sdk(gateway_server) as client:
        stream = await client.images.generate(prompt="a fox", n=2, stream=True, partial_images=2)
        events = [event async for event in stream]
    assert [e.type for e in events] == ["image_generation.completed"] * 2
    assert [base64.b64decode(e.b64_json) for e in events] == [PNG_1X1, PNG_1X1]
    # The provider was asked for whole images: stream and partial_images are the gateway's business.
    assert fake_upstream.last.json() == {"prompt": "a fox", "n": 2, "model": "fake-image"}
    line = log_capture.events("request.finished")[-1]
    assert line["stream"]["mode"] == "synthesized" and line["stream"]["events"] == 2
    assert line["stream"]["end"] == "completed" and line["stream"]["first_event_ms"] > 0
    assert "x-portkey-adjusted-params" not in (await sdk_headers(gateway_server))


async def sdk_headers(server) -> dict[str, str]:  # noqa: ANN001
    async with sdk(server) as client:
        raw = await client.images.with_raw_response.generate(prompt="a fox", stream=True)
        return dict(raw.headers)


async def test_url_is_honoured_in_a_synthesized_stream(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        stream = await client.images.generate(prompt="a fox", stream=True, response_format="url")
        events = [event async for event in stream]
    # The model answers URLs itself (it takes response_format): the event carries the provider's.
    assert len(events) == 1 and events[0].url == fake_upstream.url + "/v1/files/image.png"
    assert fake_upstream.last.json()["response_format"] == "url"


async def test_keepalive_comments_flow_while_the_provider_works(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    ok = {"created": 1, "data": [{"b64_json": base64.b64encode(PNG_1X1).decode()}]}
    released = asyncio.Event()

    async def slow(request, recorded):  # noqa: ANN001, ANN202
        # The provider answers only once the client has seen two keep-alives, so the test
        # does not depend on how fast a loaded machine runs the timer.
        await asyncio.wait_for(released.wait(), 30)
        return web.json_response(ok)

    fake_upstream.on("POST", GEN, slow)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "stream": True}, headers=H)
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    seen = b""
    while seen.count(b": keep-alive") < 2:
        seen += await asyncio.wait_for(resp.content.readany(), 30)
    released.set()
    blocks = sse_blocks(seen + await resp.read())
    assert blocks[0][0] == ":comment" and blocks[-1][0] == "image_generation.completed"
    # Headers went before the provider answered: the provider is not known to them.
    assert "x-portkey-provider" not in resp.headers and "x-portkey-last-used-option-index" not in resp.headers
    line = log_capture.events("request.finished")[-1]
    assert line["stream"]["keepalives"] >= 2
    # The log line still names who answered.
    assert (line["provider"], line["target"], line["status"]) == ("fake", "config", 200)


async def test_a_failure_before_the_first_byte_is_an_http_error_and_fallback_applies(gateway_client,  # noqa: ANN001
                                                                                     fake_upstream):
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "stream": True, "model": "nope"}, headers=H)
    assert resp.status == 404 and resp.content_type == "application/json"
    assert (await resp.json())["error"]["code"] == "model_not_found"
    node = {"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "fake", "api_key": "sk-a", "override_params": {"model": "nope"}},
        {"provider": "fake", "api_key": "sk-b"}]}
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "stream": True}, headers=config(node))
    assert resp.status == 200 and resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert [name for name, _ in await events_of(resp)] == ["image_generation.completed"]


async def test_a_failure_after_the_first_byte_is_an_error_event(gateway_server, fake_upstream, log_capture):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(429, json={"error": {"message": "Rate limit reached", "type": "requests",
                                                             "code": "rate_limit_exceeded"}}, delay=KEEPALIVE * 2.5))
    async with sdk(gateway_server) as client:
        stream = await client.images.generate(prompt="a fox", stream=True)
        with pytest.raises(openai.APIError, match="Rate limit reached"):
            [event async for event in stream]
    line = log_capture.events("request.finished")[-1]
    assert line["stream"]["end"] == "error" and "Rate limit reached" in line["error"]


async def test_a_streamed_answer_is_cached_and_served_both_ways(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    node = config({"provider": "fake", "api_key": "sk-a", "cache": {"mode": "simple", "max_age": 60}})
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "stream": True, "partial_images": 1},
                                     headers=node)
    first = await events_of(resp)
    assert resp.headers["x-portkey-cache-status"] == "MISS"
    await gateway_app[GATEWAY].drain()
    # The same request without stream is a hit on the streamed answer ...
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=node)
    assert resp.headers["x-portkey-cache-status"] == "HIT" and resp.content_type == "application/json"
    assert (await resp.json())["data"][0]["b64_json"] == msgspec.json.decode(first[0][1])["b64_json"]
    # ... and a streamed one is a hit sent as its completed event.
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "stream": True}, headers=node)
    assert resp.headers["x-portkey-cache-status"] == "HIT"
    assert await events_of(resp) == first
    assert len(fake_upstream.requests) == 1


async def test_a_streamed_edit_through_the_sdk(gateway_server, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        stream = await client.images.edit(image=[("a.png", io.BytesIO(PNG_1X1), "image/png")], prompt="a hat",
                                          stream=True, partial_images=1)
        events = [event async for event in stream]
    assert [e.type for e in events] == ["image_edit.completed"]
    parts = await fake_provider.multipart_parts(fake_upstream.last)
    assert [(n, d) for n, f, d in parts if f] == [("image[]", PNG_1X1)]
    assert {n: d for n, f, d in parts if not f} == {"prompt": b"a hat", "model": b"fake-image"}


async def test_a_client_that_leaves_cancels_the_provider_call(gateway_server, fake_upstream):  # noqa: ANN001
    import aiohttp

    started = asyncio.Event()

    async def hang(request: web.Request, rec: Recorded) -> web.StreamResponse:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    fake_upstream.on("POST", GEN, hang)
    async with aiohttp.ClientSession() as session:
        resp = await session.post(gateway_server.make_url(GEN), json={"prompt": "a fox", "stream": True}, headers=H)
        assert (await resp.content.readuntil(b"\n\n")).startswith(b":")
        await started.wait()
        resp.close()
    for _ in range(50):
        if fake_upstream.cancelled:
            break
        await asyncio.sleep(0.05)
    assert fake_upstream.cancelled == 1
