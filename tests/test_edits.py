"""images.edits through the core on the neutral fake provider: routing and retries re-send the
same form, n split, lenient and strict negotiation of inputs, the cache keyed on the files' bytes,
and the Portkey SDK's call."""
from __future__ import annotations

import io

import aiohttp
import httpx
import msgspec
import pytest
from portkey_ai import AsyncPortkey

from gateway.keys import GATEWAY
from gateway.testing import PNG_1X1, Reply
from gateway.testing import fake_provider

EDITS = "/v1/images/edits"
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-fake"}
A, B = PNG_1X1 + b"A" * 32, PNG_1X1 + b"B" * 32
OK = {"created": 1, "data": [{"b64_json": "aW1hZ2U="}]}


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}}


def form(*images: bytes, mask: bytes | None = None, filename: str = "in.png", **fields: str) -> aiohttp.FormData:
    out = aiohttp.FormData(default_to_multipart=True)
    for data in images:
        out.add_field("image[]" if len(images) > 1 else "image", data, filename=filename, content_type="image/png")
    if mask is not None:
        out.add_field("mask", mask, filename="mask.png", content_type="image/png")
    for name, value in {"prompt": "a hat", **fields}.items():
        out.add_field(name, value)
    return out


def config(node: dict) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


async def sent_files(rec) -> list[tuple[str, bytes]]:  # noqa: ANN001
    return [(name, data) for name, filename, data in await fake_provider.multipart_parts(rec) if filename]


async def test_fallback_and_retry_resend_the_same_form(gateway_client, fake_upstream, no_sleep):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/edits", Reply(503, json={"error": {"message": "busy"}}),
                     Reply(500, json={"error": {"message": "down"}}), Reply(json=OK))
    node = {"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "fake", "api_key": "sk-a", "retry": {"attempts": 1}},
        {"provider": "fake", "api_key": "sk-b"}]}
    resp = await gateway_client.post(EDITS, data=form(A, B, mask=B), headers=config(node))
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert len(fake_upstream.requests) == 3
    bodies = {r.body for r in fake_upstream.requests}
    assert len(bodies) == 1  # every try sent the client's own bytes
    assert await sent_files(fake_upstream.last) == [("image[]", A), ("image[]", B), ("mask", B)]


async def test_n_is_split_over_parallel_edits_each_with_every_file(gateway_client, fake_upstream):  # noqa: ANN001
    # The fake's edit model makes 4 images a call: 6 is two calls, 4 and 2.
    resp = await gateway_client.post(EDITS, data=form(A, n="6", seed="7"), headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 6
    calls = []
    for rec in fake_upstream.requests:
        parts = await fake_provider.multipart_parts(rec)
        assert [(n, d) for n, f, d in parts if f] == [("image", A)]
        fields = {n: d for n, f, d in parts if not f}
        calls.append((fields["n"], fields["seed"]))
    # A fixed seed goes up per call, as for generations: the two calls make different images.
    assert sorted(calls) == [(b"2", b"11"), (b"4", b"7")]


async def test_inputs_a_model_cannot_take_are_400s_and_a_fallback_moves_on(gateway_client, fake_upstream):  # noqa: ANN001
    five = [PNG_1X1 + bytes([i]) for i in range(5)]
    resp = await gateway_client.post(EDITS, data=form(*five), headers=H)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "image" and "4 images at most; 5 were sent" in err["message"]
    resp = await gateway_client.post(EDITS, data=form(A, mask=B, model="fake-hd"), headers=H)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "mask"
    assert fake_upstream.requests == []
    # A fallback moves past the target that cannot take the inputs, and past a plugin not installed.
    node = {"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "fake", "api_key": "sk-a"}, {"provider": "not-installed", "api_key": "sk-b"},
        {"provider": "fake", "api_key": "sk-c", "override_params": {"model": "fake-hd"}}]}
    resp = await gateway_client.post(EDITS, data=form(*five), headers=config(node))
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[2]"
    assert len(fake_upstream.requests) == 1
    assert [d for _, d in await sent_files(fake_upstream.last)] == five


async def test_lenient_and_strict_sizes_for_edits(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=form(A, size="1000x1000"), headers=H)
    assert resp.status == 200
    assert resp.headers["x-portkey-adjusted-params"] == "size=1000x1000->1024x1024"
    parts = await fake_provider.multipart_parts(fake_upstream.last)
    assert {n: d for n, f, d in parts if not f}["size"] == b"1024x1024"
    assert [(n, d) for n, f, d in parts if f] == [("image", A)]
    resp = await gateway_client.post(EDITS, data=form(A, size="1000x1000"),
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "size"


async def test_the_cache_keys_on_the_files_bytes_not_their_names(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    node = config({"provider": "fake", "api_key": "sk-a", "cache": {"mode": "simple", "max_age": 60}})

    async def status(data: aiohttp.FormData) -> str:
        resp = await gateway_client.post(EDITS, data=data, headers=node)
        await resp.read()
        await gateway_app[GATEWAY].drain()
        return resp.headers["x-portkey-cache-status"]

    assert await status(form(A, B, mask=A)) == "MISS"
    assert await status(form(A, B, mask=A, filename="other-name.png")) == "HIT"
    assert await status(form(B, A, mask=A)) == "MISS"      # order of the images matters
    assert await status(form(A, B, mask=B)) == "MISS"      # so does the mask
    assert await status(form(A, B)) == "MISS"
    assert await status(form(A, B, mask=A, size="512x512")) == "MISS"
    assert len(fake_upstream.requests) == 5


async def test_response_format_url_for_an_edit(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=form(A, response_format="url"), headers=H)
    url = (await resp.json())["data"][0]["url"]
    assert url == fake_upstream.url + "/v1/files/image.png"
    resp = await gateway_client.post(EDITS, data=form(A, response_format="b64_json"), headers=H)
    assert (await resp.json())["data"][0]["b64_json"]


async def test_the_portkey_sdk_edits_and_streams(gateway_server, fake_upstream):  # noqa: ANN001
    # Our own httpx client, closed here: the SDK leaves its default one open.
    async with httpx.AsyncClient() as http:
        client = AsyncPortkey(base_url=str(gateway_server.make_url("/v1")), provider="fake",
                              Authorization="Bearer sk-fake", http_client=http)
        async with client:
            result = await client.images.edit(image=io.BytesIO(A), prompt="a hat", n=2)
            stream = await client.images.generate(prompt="a fox", stream=True)
            events = [event async for event in stream]
    assert len(result.data) == 2
    assert [e.type for e in events] == ["image_generation.completed"]
    assert await sent_files(fake_upstream.requests[0]) == [("image", A)]


async def test_an_openai_mask_is_turned_into_the_models_own(gateway_client, fake_upstream):  # noqa: ANN001
    from PIL import Image

    def png(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    openai_mask = Image.new("RGBA", (2, 1), (0, 0, 0, 255))
    openai_mask.putpixel((0, 0), (0, 0, 0, 0))  # the left pixel is to change
    resp = await gateway_client.post(EDITS, data=form(A, mask=png(openai_mask), model="fake-fill"), headers=H)
    assert resp.status == 200, await resp.text()
    sent = dict(await sent_files(fake_upstream.last))
    with Image.open(io.BytesIO(sent["mask"])) as mask:
        assert mask.mode == "L" and [mask.getpixel((x, 0)) for x in range(2)] == [255, 0]
    assert sent["image"] == A
    # A mask already in the model's convention goes as it was sent.
    native = png(Image.new("L", (2, 1), 255))
    resp = await gateway_client.post(EDITS, data=form(A, mask=native, model="fake-fill"), headers=H)
    assert resp.status == 200 and dict(await sent_files(fake_upstream.last))["mask"] == native
