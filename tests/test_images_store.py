"""The image store and GET /v1/images/files/{id}; cached URL answers that keep resolving."""
from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.errors import StartupError
from gateway.images.store import LocalImageStore, new_id
from gateway.keys import GATEWAY
from gateway.testing import PNG_1X1, Recorded, Reply

GEN = "/v1/images/generations"


@pytest.fixture
def gateway_settings(fake_upstream, tmp_path):  # noqa: ANN001, ANN201
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "images": {"directory": str(tmp_path / "images")}}


async def test_store_and_serve(gateway_client, gateway_app):  # noqa: ANN001
    store = gateway_app[GATEWAY].images
    png = PNG_1X1 + os.urandom(100)
    image_id = await store.put(png, "image/png", ttl=60)
    assert len(image_id) == 32
    resp = await gateway_client.get(f"/v1/images/files/{image_id}")
    assert resp.status == 200 and resp.content_type == "image/png"
    assert await resp.read() == png
    assert 0 < int(resp.headers["Cache-Control"].split("max-age=")[1]) <= 60
    for bad in (new_id(), "..%2F..%2Fetc%2Fpasswd", "short"):
        resp = await gateway_client.get(f"/v1/images/files/{bad}")
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "image_not_found"


async def test_expired_image_is_gone(gateway_client, gateway_app):  # noqa: ANN001
    store = gateway_app[GATEWAY].images
    image_id = await store.put(b"x", "image/webp", ttl=0.2)
    assert (await gateway_client.get(f"/v1/images/files/{image_id}")).status == 200
    time.sleep(0.3)
    assert (await gateway_client.get(f"/v1/images/files/{image_id}")).status == 404
    assert store.sweep() == 1
    assert not list(Path(store.directory).iterdir())


def test_local_store_size_bound(tmp_path):  # noqa: ANN001
    import asyncio

    store = LocalImageStore(tmp_path, max_bytes=2500)

    async def fill() -> list[str]:
        ids = []
        for _ in range(5):
            ids.append(await store.put(b"x" * 1000, "image/png", ttl=60))
            time.sleep(0.01)
        return ids

    ids = asyncio.run(fill())
    assert store.sweep() == 3
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".json")) == sorted(ids[-2:])


async def test_image_files_need_the_gateway_key(aiohttp_client, gateway_plugins, tmp_path):  # noqa: ANN001
    app = create_app({"security": {"gateway_keys": ["gk-1"]}, "images": {"directory": str(tmp_path)}},
                     plugins=gateway_plugins, load_entrypoints=False)
    client = await aiohttp_client(app)
    image_id = await app[GATEWAY].images.put(b"img", "image/png", ttl=60)
    assert (await client.get(f"/v1/images/files/{image_id}")).status == 401
    resp = await client.get(f"/v1/images/files/{image_id}", headers={"x-portkey-api-key": "gk-1"})
    assert resp.status == 200 and await resp.read() == b"img"


async def test_cache_store_in_the_cache_backend(aiohttp_client, gateway_plugins):  # noqa: ANN001
    app = create_app({"images": {"store": "cache"}}, plugins=gateway_plugins, load_entrypoints=False)
    client = await aiohttp_client(app)
    image_id = await app[GATEWAY].images.put(b"cached-img", "image/jpeg", ttl=60)
    resp = await client.get(f"/v1/images/files/{image_id}")
    assert resp.status == 200 and resp.content_type == "image/jpeg" and await resp.read() == b"cached-img"


def test_unknown_image_store_is_a_startup_error():
    with pytest.raises(StartupError, match="did you mean 'local'"):
        create_app({"images": {"store": "locl"}}, load_entrypoints=False)


async def test_cached_url_answer_still_resolves_after_the_provider_url_dies(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    png = PNG_1X1
    alive = {"on": True}

    async def provider_image(request: web.Request, rec: Recorded) -> web.Response:
        if not alive["on"]:
            return web.Response(status=403, text="Signature expired")
        return web.Response(body=png, content_type="image/png")

    fake_upstream.on("GET", "/blob/img-0.png", provider_image)
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": fake_upstream.url + "/blob/img-0.png",
                                                                      "revised_prompt": "r"}]}))
    cfg = {"x-portkey-config": msgspec.json.encode(
        {"provider": "fake", "api_key": "k", "cache": {"mode": "simple", "max_age": 600}}).decode()}
    first = await gateway_client.post(GEN, json={"prompt": "fox", "model": "fake-hd"}, headers=cfg)
    assert first.headers["x-portkey-cache-status"] == "MISS"
    first_body = await first.read()
    await gateway_app[GATEWAY].drain()
    alive["on"] = False  # the provider's signed URL has expired
    resp = await gateway_client.post(GEN, json={"prompt": "fox", "model": "fake-hd"}, headers=cfg)
    assert resp.headers["x-portkey-cache-status"] == "HIT"
    # The miss that was stored answered what every hit answers: the gateway's own URL.
    assert await resp.read() == first_body
    item = (await resp.json())["data"][0]
    assert item["revised_prompt"] == "r"
    url = item["url"]
    assert "/v1/images/files/" in url and url.startswith(str(gateway_client.make_url("/")).rstrip("/"))
    got = await gateway_client.get(url[url.index("/v1/"):])
    assert got.status == 200 and await got.read() == png and got.content_type == "image/png"


async def test_a_cacheable_url_answer_whose_image_cannot_be_fetched_is_handed_on_and_not_cached(
        gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/blob/gone.png", Reply(403, body=b"Signature expired", content_type="text/plain"))
    url = fake_upstream.url + "/blob/gone.png"
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": url}]}))
    cfg = {"x-portkey-config": msgspec.json.encode(
        {"provider": "fake", "api_key": "k", "cache": {"mode": "simple", "max_age": 600}}).decode()}
    for _ in range(2):
        resp = await gateway_client.post(GEN, json={"prompt": "owl", "model": "fake-hd"}, headers=cfg)
        assert resp.status == 200 and resp.headers["x-portkey-cache-status"] == "MISS"
        assert (await resp.json())["data"][0]["url"] == url  # the provider's own, still valid for the caller
        await gateway_app[GATEWAY].drain()
    assert len([r for r in fake_upstream.requests if r.method == "POST"]) == 2
