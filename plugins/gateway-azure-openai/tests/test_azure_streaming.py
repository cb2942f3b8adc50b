"""``stream: true`` to Azure OpenAI's GPT image deployments: the deployment's Server-Sent Events
relayed one by one as they arrive (generations and edits, dated and v1 API); what cannot stream
refused before any upstream call; a failure before the first event an ordinary error."""
from __future__ import annotations

import base64
import io
import time

import openai
import pytest

from gateway.testing import PNG_1X1
from gateway_azure_openai import testing as fake_api

GEN = "/v1/images/generations"
KEY = "azure-key-1"
AZURE = {
    "x-portkey-provider": "azure-openai", "x-portkey-azure-resource-name": "contoso",
    "x-portkey-azure-deployment-id": "img", "x-portkey-azure-api-version": "2025-04-01-preview",
}


def sdk(server, **headers: str) -> openai.AsyncOpenAI:  # noqa: ANN001
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=KEY, max_retries=0,
                              default_headers={**AZURE, **headers})


def spaced(seen: list[tuple[str, float]]) -> bool:
    """Whether each event arrived well after the one before (a buffered relay delivers them at once)."""
    return all(b - a > fake_api.STREAM_GAP / 2 for (_, a), (_, b) in zip(seen, seen[1:]))


async def test_a_streamed_generation_relays_each_event_as_it_comes(gateway_server, fake_upstream, azure,  # noqa: ANN001
                                                                   log_capture):
    async with sdk(gateway_server) as client:
        stream = await client.images.generate(model="gpt-image-1", prompt="a fox", size="1024x1536", stream=True,
                                              partial_images=2)
        seen = []
        async for event in stream:
            seen.append((event.type, time.monotonic()))
            last = event
    assert [t for t, _ in seen] == ["image_generation.partial_image", "image_generation.partial_image",
                                    "image_generation.completed"]
    assert spaced(seen), seen
    assert base64.b64decode(last.b64_json) == azure.served[0]
    sent = fake_upstream.last
    assert sent.path == azure.dated_path("img") and sent.query == {"api-version": "2025-04-01-preview"}
    assert sent.json() == {"model": "gpt-image-1", "prompt": "a fox", "size": "1024x1536", "stream": True,
                           "partial_images": 2}
    line = log_capture.events("request.finished")[-1]
    assert line["stream"]["mode"] == "native" and line["stream"]["events"] == 3
    assert line["stream"]["end"] == "completed" and line["usage"]["total_tokens"] == 4172


async def test_a_streamed_edit_on_the_v1_api_relays_each_event_as_it_comes(gateway_server, fake_upstream, azure):  # noqa: ANN001
    image = PNG_1X1 + b"marker" * 8
    async with sdk(gateway_server, **{"x-portkey-azure-api-version": "v1"}) as client:
        stream = await client.images.edit(model="gpt-image-1", image=[("a.png", io.BytesIO(image), "image/png")],
                                          prompt="a hat", stream=True, partial_images=1)
        seen = [(event.type, time.monotonic()) async for event in stream]
    assert [t for t, _ in seen] == ["image_edit.partial_image", "image_edit.completed"]
    assert spaced(seen), seen
    sent = fake_upstream.last
    assert sent.path == "/contoso/openai/v1/images/edits" and sent.query == {}
    parts = await fake_api.form_parts(sent)
    assert [(p.name, p.data) for p in parts if p.filename] == [("image[]", image)]
    fields = {p.name: p.data.decode() for p in parts if not p.filename}
    assert fields == {"model": "img", "prompt": "a hat", "stream": "true", "partial_images": "1"}


@pytest.mark.parametrize(("headers", "model"), [
    ({"x-portkey-azure-deployment-id": "dalle"}, "dall-e-3"),
    ({"x-portkey-azure-deployment-id": "dalle", "x-portkey-azure-model-name": "dall-e-3"}, None),
    ({"x-portkey-azure-api-version": "2024-10-21"}, "gpt-image-1"),
])
async def test_what_cannot_stream_is_a_400_naming_stream(gateway_client, fake_upstream, headers, model):  # noqa: ANN001
    body = {"prompt": "a fox", "stream": True, **({"model": model} if model else {})}
    resp = await gateway_client.post(GEN, json=body, headers={**AZURE, "Authorization": f"Bearer {KEY}", **headers})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["param"] == "stream"
    assert fake_upstream.requests == []


async def test_an_azure_error_before_the_first_event_is_an_ordinary_error(gateway_server, fake_upstream, azure):  # noqa: ANN001
    async with sdk(gateway_server, **{"x-portkey-azure-deployment-id": "gone"}) as client:
        with pytest.raises(openai.NotFoundError) as info:
            await client.images.generate(model="gpt-image-1", prompt="a fox", stream=True)
    assert info.value.body["code"] == "DeploymentNotFound"
    assert len(fake_upstream.requests) == 1
