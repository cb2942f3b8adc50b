"""OpenAI's own streams (generations and edits) relayed event by event: a completed image kept as a
gateway URL when ``url`` was asked, a reset mid-stream sent as an error event, the completed stream
stored in the cache."""
from __future__ import annotations

import asyncio
import base64
import io
import time

import msgspec
import openai
import pytest
from aiohttp import web

from gateway.testing import PNG_1X1, Recorded, services_of
from gateway_openai import testing as openai_fake

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "openai", "Authorization": "Bearer sk-openai-1"}


def sdk(server) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="sk-openai-1", max_retries=0,
                              default_headers={"x-portkey-provider": "openai"})


async def test_a_streamed_edit_relays_each_event_as_it_comes(gateway_server, fake_upstream, log_capture):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        stream = await client.images.edit(model="gpt-image-1.5", image=[("a.png", io.BytesIO(PNG_1X1), "image/png")],
                                          prompt="a hat", stream=True, partial_images=2)
        seen = [(event.type, time.monotonic()) async for event in stream]
    assert [t for t, _ in seen] == ["image_edit.partial_image", "image_edit.partial_image", "image_edit.completed"]
    gaps = [b - a for (_, a), (_, b) in zip(seen, seen[1:])]
    assert all(gap > openai_fake.STREAM_GAP / 2 for gap in gaps), gaps
    fields = {p.name: p.data for p in await openai_fake.form_parts(fake_upstream.last) if not p.filename}
    assert fields["stream"] == b"true" and fields["partial_images"] == b"2"
    line = log_capture.events("request.finished")[-1]
    assert line["stream"]["mode"] == "native" and line["stream"]["events"] == 3
    assert line["stream"]["end"] == "completed" and line["usage"]["total_tokens"] == 110
    assert line["stream"]["last_event_ms"] - line["stream"]["first_event_ms"] > openai_fake.STREAM_GAP


async def test_url_makes_the_completed_image_a_gateway_url(gateway_server, gateway_client, fake_upstream):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        stream = await client.images.generate(model="gpt-image-1", prompt="a fox", stream=True, partial_images=1,
                                              response_format="url")
        events = [event async for event in stream]
    assert "response_format" not in fake_upstream.last.json()  # the family refuses it
    partial, done = events
    assert base64.b64decode(partial.b64_json) == PNG_1X1  # a preview stays as it came
    assert done.b64_json is None and "/v1/images/files/" in done.url
    image = await gateway_client.get(done.url[done.url.index("/v1/"):], headers=H)
    assert await image.read() == PNG_1X1


async def test_a_stream_cut_mid_way_ends_with_an_error_event(gateway_server, fake_upstream, log_capture):  # noqa: ANN001
    async def cut(request: web.Request, rec: Recorded) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        event = {"type": "image_generation.partial_image", "b64_json": base64.b64encode(PNG_1X1).decode(),
                 "partial_image_index": 0}
        await resp.write(b"event: image_generation.partial_image\ndata: " + msgspec.json.encode(event) + b"\n\n")
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return resp

    fake_upstream.on("POST", GEN, cut)
    async with sdk(gateway_server) as client:
        stream = await client.images.generate(model="gpt-image-1", prompt="a fox", stream=True, partial_images=2)
        seen = []
        with pytest.raises(openai.APIError, match="closed the stream before it completed"):
            async for event in stream:
                seen.append(event.type)
    assert seen == ["image_generation.partial_image"]
    line = log_capture.events("request.finished")[-1]
    assert line["stream"]["end"] == "upstream_reset" and "may have been made and billed" in line["error"]


async def test_a_completed_stream_is_cached(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    node = {"provider": "openai", "api_key": "sk-openai-1", "cache": {"mode": "simple", "max_age": 60}}
    headers = {"x-portkey-config": msgspec.json.encode(node).decode()}
    body = {"model": "gpt-image-1", "prompt": "a fox", "stream": True, "partial_images": 1}
    resp = await gateway_client.post(GEN, json=body, headers=headers)
    assert resp.headers["x-portkey-cache-status"] == "MISS" and b"image_generation.completed" in await resp.read()
    await services_of(gateway_app).drain()
    resp = await gateway_client.post(GEN, json={"model": "gpt-image-1", "prompt": "a fox"}, headers=headers)
    assert resp.headers["x-portkey-cache-status"] == "HIT" and resp.content_type == "application/json"
    doc = await resp.json()
    assert base64.b64decode(doc["data"][0]["b64_json"]) == PNG_1X1 and doc["usage"]["total_tokens"] == 110
    assert doc["provider"] == "openai"
    assert len(fake_upstream.requests) == 1
