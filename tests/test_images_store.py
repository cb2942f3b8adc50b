"""The image store and GET /v1/images/files/{id}: images only, served so a browser never runs them;
cached URL answers that keep resolving."""
from __future__ import annotations

import asyncio
import base64
import io
import os
import time
import types
from pathlib import Path

import msgspec
import pytest
from aiohttp import web
from PIL import Image

import gateway_segmind
import gateway_stability_ai
from first_party import FIRST_PARTY
from gateway import hookimpl
from gateway.app import create_app
from gateway.errors import StartupError
from gateway.images.store import SECRET_FILE, LocalImageStore, NotAnImage, new_id
from gateway.images.urls import stored_path
from gateway.keys import GATEWAY
from gateway.testing import PNG_1X1, Recorded, Reply, fake_provider

GEN = "/v1/images/generations"
#: A config with the cache on: its answers keep gateway URLs.
CACHED = {"x-portkey-config": msgspec.json.encode(
    {"provider": "fake", "api_key": "k", "cache": {"mode": "simple", "max_age": 600}}).decode()}
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(64)
GIF = b"GIF89a" + os.urandom(32)
HTML = b"<!doctype html><html><body><script>fetch('/steal?c='+document.cookie)</script></body></html>"
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(document.domain)</script></svg>')


@pytest.fixture
def gateway_settings(fake_upstream, tmp_path):  # noqa: ANN001, ANN201
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "images": {"directory": str(tmp_path / "images")}}


def signed(app: web.Application, image_id: str, ttl: int = 60) -> str:
    """The signed path the gateway would hand out for ``image_id``."""
    return app[GATEWAY].image_urls.signed(stored_path(image_id, int(time.time()) + ttl))


def images_in(directory: Path) -> list[str]:
    """The images a local store holds (not its records or its URL secret)."""
    return [p.name for p in directory.iterdir() if not p.name.startswith(".") and not p.name.endswith(".json")]


async def test_store_and_serve(gateway_client, gateway_app):  # noqa: ANN001
    store = gateway_app[GATEWAY].images
    png = PNG_1X1 + os.urandom(100)
    image_id = await store.put(png, "image/png", ttl=60)
    assert len(image_id) == 32
    resp = await gateway_client.get(signed(gateway_app, image_id))
    assert resp.status == 200 and resp.content_type == "image/png"
    assert await resp.read() == png
    assert 0 < int(resp.headers["Cache-Control"].split("max-age=")[1]) <= 60
    for bad in (new_id(), "short"):
        resp = await gateway_client.get(signed(gateway_app, bad))
        assert resp.status == 404, bad
        assert (await resp.json())["error"]["code"] == "image_not_found"
    # Signed as sent, the id arrives decoded: the signature no longer holds, and no lookup runs.
    resp = await gateway_client.get(signed(gateway_app, "..%2F..%2Fetc%2Fpasswd"))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "invalid_signature"


async def test_images_are_served_so_a_browser_never_runs_them(gateway_client, gateway_app):  # noqa: ANN001
    store = gateway_app[GATEWAY].images
    for data, ctype, ext in ((PNG_1X1, "image/png", "png"), (JPEG, "image/jpeg", "jpg"), (GIF, "image/gif", "gif")):
        image_id = await store.put(data, ctype, ttl=60)
        resp = await gateway_client.get(signed(gateway_app, image_id))
        assert resp.status == 200 and await resp.read() == data
        assert resp.headers["Content-Type"] == ctype
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Content-Disposition"] == f'inline; filename="{image_id}.{ext}"'
        csp = resp.headers["Content-Security-Policy"]
        assert "sandbox" in csp and "default-src 'none'" in csp


async def test_the_type_comes_from_the_bytes_not_the_claim(gateway_client, gateway_app, tmp_path):  # noqa: ANN001
    store = gateway_app[GATEWAY].images
    image_id = await store.put(JPEG, "text/html", ttl=60)  # what the bytes are wins
    resp = await gateway_client.get(signed(gateway_app, image_id))
    assert resp.headers["Content-Type"] == "image/jpeg"
    for data in (HTML, SVG, b"", b"GIF8", b"RIFF\0\0\0\0WEBX"):
        with pytest.raises(NotAnImage):
            await store.put(data, "image/png", ttl=60)
    assert len(images_in(tmp_path / "images")) == 1


async def test_a_webp_answer_is_stored_and_served_as_webp(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    """A provider's WebP (made by Pillow, sent as base64, typed by nobody) is kept as
    ``image/webp`` and served as one image among the others: nosniff, inline, sandboxed."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buf, "WEBP")
    webp = buf.getvalue()
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": base64.b64encode(webp).decode()}]}))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"},
                                     headers={"x-portkey-provider": "fake", "Authorization": "Bearer k"})
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["data"][0]["url"]
    image_id = url.split("?")[0].rsplit("/", 1)[1]
    stored = await gateway_app[GATEWAY].images.get(image_id)
    assert stored is not None and stored.content_type == "image/webp"
    image = await gateway_client.get(url[url.index("/v1/"):])
    assert image.status == 200 and await image.read() == webp
    assert image.headers["Content-Type"] == "image/webp"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert image.headers["Content-Disposition"] == f'inline; filename="{image_id}.webp"'
    csp = image.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp


async def test_a_record_with_another_type_is_never_served(gateway_client, gateway_app, tmp_path):  # noqa: ANN001
    directory = tmp_path / "images"
    image_id = new_id()  # as a gateway that kept the provider's type would have stored it
    (directory / image_id).write_bytes(HTML)
    (directory / f"{image_id}.json").write_bytes(
        msgspec.json.encode({"content_type": "text/html", "expires": time.time() + 60}))
    resp = await gateway_client.get(signed(gateway_app, image_id))
    assert resp.status == 404 and b"<script>" not in await resp.read()


async def test_expired_image_is_gone(gateway_client, gateway_app):  # noqa: ANN001
    store = gateway_app[GATEWAY].images
    image_id = await store.put(PNG_1X1, "image/png", ttl=0.2)
    assert (await gateway_client.get(signed(gateway_app, image_id))).status == 200
    time.sleep(0.3)
    assert (await gateway_client.get(signed(gateway_app, image_id))).status == 404
    assert store.sweep() == 1
    # The URL secret the store shares with other processes stays.
    assert [p.name for p in Path(store.directory).iterdir()] == [SECRET_FILE]


def test_local_store_size_bound(tmp_path):  # noqa: ANN001
    store = LocalImageStore(tmp_path, max_bytes=2500)

    async def fill() -> list[str]:
        ids = []
        for _ in range(5):
            ids.append(await store.put(PNG_1X1 + b"x" * 1000, "image/png", ttl=60))
            time.sleep(0.01)
        return ids

    ids = asyncio.run(fill())
    assert store.sweep() == 3
    assert sorted(images_in(tmp_path)) == sorted(ids[-2:])


async def test_image_files_need_a_signature_not_a_key(aiohttp_client, gateway_plugins, tmp_path):  # noqa: ANN001
    app = create_app({"security": {"gateway_keys": ["gk-1"]}, "images": {"directory": str(tmp_path)}},
                     plugins=gateway_plugins, load_entrypoints=False)
    client = await aiohttp_client(app)
    image_id = await app[GATEWAY].images.put(PNG_1X1, "image/png", ttl=60)
    resp = await client.get(f"/v1/images/files/{image_id}", headers={"x-portkey-api-key": "gk-1"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "invalid_signature"
    resp = await client.get(signed(app, image_id))
    assert resp.status == 200 and await resp.read() == PNG_1X1


async def test_cache_store_in_the_cache_backend(aiohttp_client, gateway_plugins):  # noqa: ANN001
    app = create_app({"images": {"store": "cache"}}, plugins=gateway_plugins, load_entrypoints=False)
    client = await aiohttp_client(app)
    image_id = await app[GATEWAY].images.put(JPEG, "image/jpeg", ttl=60)
    resp = await client.get(signed(app, image_id))
    assert resp.status == 200 and resp.content_type == "image/jpeg" and await resp.read() == JPEG
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    with pytest.raises(NotAnImage):
        await app[GATEWAY].images.put(SVG, "image/svg+xml", ttl=60)


def test_unknown_image_store_is_a_startup_error():
    with pytest.raises(StartupError, match="did you mean 'local'"):
        create_app({"images": {"store": "locl"}}, load_entrypoints=False)


# --------------------------------------------------------------------------- what providers answer
async def test_a_stability_answer_typed_html_is_never_stored(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", "/v2beta/stable-image/generate/core", Reply(
        body=msgspec.json.encode({"image": base64.b64encode(HTML).decode(), "finish_reason": "SUCCESS"}),
        content_type="application/json; type=text/html"))
    app = create_app({"providers": {"stability-ai": {"base_url": fake_upstream.url}},
                      "images": {"directory": str(tmp_path)}},
                     plugins=[*FIRST_PARTY, gateway_stability_ai], load_entrypoints=False)
    client = await aiohttp_client(app)
    resp = await client.post(GEN, json={"prompt": "a fox", "model": "core", "response_format": "url"},
                             headers={"x-portkey-provider": "stability-ai", "Authorization": "Bearer sk-stab"})
    assert resp.status == 502, await resp.text()
    doc = await resp.json()
    assert doc["error"]["code"] == "invalid_provider_response" and doc["provider"] == "stability-ai"
    assert "stability-ai" in doc["error"]["message"] and "text/html" in doc["error"]["message"]
    assert images_in(tmp_path) == []


async def test_a_segmind_svg_with_a_script_is_never_stored(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/sdxl1.0-txt2img", Reply(body=SVG, content_type="image/svg+xml"))
    app = create_app({"providers": {"segmind": {"base_url": fake_upstream.url + "/v1"}},
                      "images": {"directory": str(tmp_path)}},
                     plugins=[*FIRST_PARTY, gateway_segmind], load_entrypoints=False)
    client = await aiohttp_client(app)
    resp = await client.post(GEN, json={"prompt": "a fox", "response_format": "url"},
                             headers={"x-portkey-provider": "segmind", "Authorization": "Bearer sg-1"})
    assert resp.status == 502, await resp.text()
    doc = await resp.json()
    assert doc["error"]["code"] == "invalid_provider_response" and "segmind" in doc["error"]["message"]
    assert b"<script>" not in await resp.read() and images_in(tmp_path) == []


async def test_a_base64_answer_that_is_no_image_fails_as_the_providers(gateway_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": base64.b64encode(SVG).decode()}]}))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"},
                                     headers={"x-portkey-provider": "fake", "Authorization": "Bearer k"})
    assert resp.status == 502 and (await resp.json())["error"]["code"] == "invalid_provider_response"
    assert images_in(tmp_path / "images") == []


async def test_a_cached_url_answer_whose_image_is_a_page_hands_on_the_providers_url(gateway_client, gateway_app,  # noqa: ANN001
                                                                                  fake_upstream, tmp_path):
    fake_upstream.on("GET", "/blob/page.png", Reply(body=HTML, content_type="image/png"))
    url = fake_upstream.url + "/blob/page.png"
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": url}]}))
    cfg = CACHED
    for _ in range(2):
        resp = await gateway_client.post(GEN, json={"prompt": "owl", "model": "fake-hd"}, headers=cfg)
        assert resp.status == 200 and resp.headers["x-portkey-cache-status"] == "MISS"
        # Served from the provider's origin, never the gateway's; and not cached.
        assert (await resp.json())["data"][0]["url"] == url
        await gateway_app[GATEWAY].drain()
    assert images_in(tmp_path / "images") == []


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
    cfg = CACHED
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
    cfg = CACHED
    for _ in range(2):
        resp = await gateway_client.post(GEN, json={"prompt": "owl", "model": "fake-hd"}, headers=cfg)
        assert resp.status == 200 and resp.headers["x-portkey-cache-status"] == "MISS"
        assert (await resp.json())["data"][0]["url"] == url  # the provider's own, still valid for the caller
        await gateway_app[GATEWAY].drain()
    assert len([r for r in fake_upstream.requests if r.method == "POST"]) == 2


class ExpiringFake(fake_provider.FakeProvider):
    """The fake provider, declaring that its image URLs expire soon."""

    name = "fake-expiring"
    result_urls_expire = True


@hookimpl
def _register_expiring() -> list[type]:
    return [ExpiringFake]


async def test_a_provider_whose_urls_expire_gets_the_gateways_urls(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    plugin = types.SimpleNamespace(gateway_register_providers=_register_expiring)
    app = create_app({"providers": {"fake-expiring": {"base_url": fake_upstream.url + "/v1"}},
                      "images": {"directory": str(tmp_path / "images")}}, plugins=[*FIRST_PARTY, plugin],
                     load_entrypoints=False)
    client = await aiohttp_client(app)
    fake_upstream.on("GET", "/blob/1.png", Reply(body=PNG_1X1, content_type="image/png"))
    fake_upstream.on("GET", "/blob/gone.png", Reply(403, body=b"expired", content_type="text/plain"))
    headers = {"x-portkey-provider": "fake-expiring", "Authorization": "Bearer k"}
    for blob, kept in (("1.png", True), ("gone.png", False)):
        url = f"{fake_upstream.url}/blob/{blob}"
        fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": url}]}))
        for body in ({"prompt": "owl"}, {"prompt": "owl", "response_format": "url"}):  # no cache in either
            resp = await client.post(GEN, json=body, headers=headers)
            assert resp.status == 200, await resp.text()
            got = (await resp.json())["data"][0]["url"]
            if kept:
                assert "/v1/images/files/" in got
                image = await client.get(got[got.index("/v1/"):])
                assert image.status == 200 and await image.read() == PNG_1X1
            else:  # cannot be fetched now: the provider's own URL rather than failing work it did
                assert got == url
