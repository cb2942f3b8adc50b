"""The response cache with the built-in memory backend: keys, statuses, single flight, bounds."""
from __future__ import annotations

import asyncio
import os

import aiohttp
import msgspec
from aiohttp import web

from gateway.cache.backend import BoundedMemoryCache
from gateway.cache.keys import canonical_body
from gateway.keys import GATEWAY
from gateway.testing import PNG_1X1, Recorded, Reply

GEN = "/v1/images/generations"
OK = {"created": 1, "data": [{"b64_json": "aW1hZ2U="}]}


def cfg(**node) -> dict[str, str]:  # noqa: ANN003
    node = {"provider": "fake", "api_key": "sk-a", "cache": {"mode": "simple", "max_age": 60}, **node}
    return {"x-portkey-config": msgspec.json.encode(node).decode()}


async def settle(app) -> None:  # noqa: ANN001
    """Let the store tasks (run after the answer is sent) finish."""
    await app[GATEWAY].drain()


async def test_miss_then_hit_same_body_and_type(gateway_client, gateway_app, fake_upstream, log_capture):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK))
    r1 = await gateway_client.post(GEN, json={"prompt": "fox", "n": 1}, headers=cfg())
    b1 = await r1.read()
    await settle(gateway_app)
    r2 = await gateway_client.post(GEN, data=b'{ "n": 1,   "prompt": "fox" }', headers={**cfg(), "Content-Type": "application/json"})
    b2 = await r2.read()
    assert (r1.headers["x-portkey-cache-status"], r2.headers["x-portkey-cache-status"]) == ("MISS", "HIT")
    assert b1 == b2 and r2.content_type == r1.content_type == "application/json"
    assert r2.headers["x-portkey-provider"] == "fake"
    assert len(fake_upstream.requests) == 1
    assert log_capture.events("request.finished")[-1]["cache"] == "HIT"


async def test_no_cache_config_is_disabled(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK))
    for _ in range(2):
        resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(cache=None))
        assert resp.headers["x-portkey-cache-status"] == "DISABLED"
    assert len(fake_upstream.requests) == 2


async def test_only_2xx_is_stored(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "down"}}), Reply(json=OK))
    r1 = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg())
    assert r1.status == 500
    await settle(gateway_app)
    r2 = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg())
    assert r2.status == 200 and r2.headers["x-portkey-cache-status"] == "MISS"


async def test_callers_with_different_keys_never_share(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK))
    await (await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(api_key="sk-tenant-a"))).read()
    await settle(gateway_app)
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(api_key="sk-tenant-b"))
    assert resp.headers["x-portkey-cache-status"] == "MISS"
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg(override_params={"model": "fake-hd"},
                                                                         api_key="sk-tenant-a"))
    assert resp.headers["x-portkey-cache-status"] == "MISS"  # the provider-shaped request differs
    assert len(fake_upstream.requests) == 3


async def test_force_refresh_by_value(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK), Reply(json={"created": 2, "data": [{"b64_json": "aGk="}]}))
    await (await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg())).read()
    await settle(gateway_app)
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={**cfg(), "x-portkey-cache-force-refresh": "false"})
    assert resp.headers["x-portkey-cache-status"] == "HIT"
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers={**cfg(), "x-portkey-cache-force-refresh": "TRUE"})
    assert resp.headers["x-portkey-cache-status"] == "REFRESH"
    assert (await resp.json())["created"] == 2
    await settle(gateway_app)
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=cfg())
    assert resp.headers["x-portkey-cache-status"] == "HIT" and (await resp.json())["created"] == 2


async def test_max_age_in_seconds(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK))
    headers = cfg(cache={"mode": "simple", "max_age": 1})
    await (await gateway_client.post(GEN, json={"prompt": "x"}, headers=headers)).read()
    await settle(gateway_app)
    assert (await gateway_client.post(GEN, json={"prompt": "x"}, headers=headers)).headers["x-portkey-cache-status"] == "HIT"
    await asyncio.sleep(1.1)
    assert (await gateway_client.post(GEN, json={"prompt": "x"}, headers=headers)).headers["x-portkey-cache-status"] == "MISS"


async def test_identical_concurrent_requests_make_one_upstream_call(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=OK, delay=0.3))
    resps = await asyncio.gather(*[gateway_client.post(GEN, json={"prompt": "same"}, headers=cfg()) for _ in range(8)])
    bodies = [await r.json() for r in resps]
    assert all(r.status == 200 for r in resps) and all(b == {**OK, "provider": "fake"} for b in bodies)
    assert len(fake_upstream.requests) == 1
    statuses = sorted(r.headers["x-portkey-cache-status"] for r in resps)
    assert statuses == ["HIT"] * 7 + ["MISS"]


async def test_leader_failure_lets_the_followers_call_themselves(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "x"}}, delay=0.2), Reply(json=OK))
    resps = await asyncio.gather(*[gateway_client.post(GEN, json={"prompt": "s"}, headers=cfg()) for _ in range(3)])
    assert sorted(r.status for r in resps)[0] == 200 and 500 in [r.status for r in resps]


async def test_binary_passthrough_hit_is_byte_identical(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(200_000)
    fake_upstream.on("POST", "/v1/generation/sdxl/text-to-image",
                     Reply(body=png, content_type="image/png", headers={"finish-reason": "SUCCESS"}))
    headers = {**cfg(), "Accept": "image/png", "Content-Type": "application/json"}
    r1 = await gateway_client.post("/v1/generation/sdxl/text-to-image", data=b'{"text_prompts": [{"text": "a"}]}', headers=headers)
    assert await r1.read() == png
    await settle(gateway_app)
    r2 = await gateway_client.post("/v1/generation/sdxl/text-to-image", data=b'{"text_prompts":[{"text":"a"}]}', headers=headers)
    assert r2.headers["x-portkey-cache-status"] == "HIT"
    assert await r2.read() == png and r2.content_type == "image/png" and r2.headers["finish-reason"] == "SUCCESS"
    r3 = await gateway_client.post("/v1/generation/sdxl/text-to-image", data=b'{"text_prompts":[{"text":"a"}]}',
                                   headers={**headers, "Accept": "application/json"})
    assert r3.headers["x-portkey-cache-status"] == "MISS"  # Accept changes the answer


async def test_multipart_field_order_does_not_matter(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/edits", Reply(json=OK))

    def form(order):  # noqa: ANN001, ANN202
        f = aiohttp.FormData()
        fields = {"prompt": ("add a hat", None, None), "image": (PNG_1X1, "cat.png", "image/png")}
        for name in order:
            value, filename, ctype = fields[name]
            f.add_field(name, value, filename=filename, content_type=ctype)
        return f

    r1 = await gateway_client.post("/v1/images/edits", data=form(["prompt", "image"]), headers=cfg())
    await r1.read()
    await settle(gateway_app)
    r2 = await gateway_client.post("/v1/images/edits", data=form(["image", "prompt"]), headers=cfg())
    assert r2.headers["x-portkey-cache-status"] == "HIT"
    assert len(fake_upstream.requests) == 1


async def test_image_bytes_stored_once_by_content_hash(gateway_client, gateway_app, fake_upstream):  # noqa: ANN001
    big = {"created": 1, "data": [{"b64_json": "A" * 300_000}]}
    fake_upstream.on("POST", GEN, Reply(json=big))
    for prompt in ("one", "two", "three"):
        await (await gateway_client.post(GEN, json={"prompt": prompt}, headers=cfg())).read()
    await settle(gateway_app)
    backend = gateway_app[GATEWAY].cache.backend
    assert isinstance(backend, BoundedMemoryCache)
    blobs = [k for k in backend._data if k.startswith("b:")]
    entries = [k for k in backend._data if k.startswith("e:")]
    assert len(blobs) == 1 and len(entries) == 3
    assert backend.bytes < 2 * 300_000


async def test_gateway_wide_default_and_byte_bound(aiohttp_client, gateway_plugins, fake_upstream):  # noqa: ANN001
    from gateway.app import create_app

    gateway_app = create_app({"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                              "cache": {"memory_max_bytes": 1_000_000, "default": {"mode": "simple", "max_age": 60}}},
                             plugins=gateway_plugins, load_entrypoints=False)
    gateway_client = await aiohttp_client(gateway_app)

    async def answer(request: web.Request, rec: Recorded) -> web.Response:
        prompt = rec.json()["prompt"]
        return web.json_response({"created": 1, "data": [{"b64_json": prompt * 100_000}]})

    fake_upstream.on("POST", GEN, answer)
    headers = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-x"}
    for prompt in "abcdefgh":  # 8 x ~100 kB answers, under a 1 MB bound
        await (await gateway_client.post(GEN, json={"prompt": prompt}, headers=headers)).read()
    await settle(gateway_app)
    backend = gateway_app[GATEWAY].cache.backend
    assert backend.bytes <= 1_000_000
    resp = await gateway_client.post(GEN, json={"prompt": "h"}, headers=headers)
    assert resp.headers["x-portkey-cache-status"] == "HIT"
    for prompt in "ijkl":
        await (await gateway_client.post(GEN, json={"prompt": prompt}, headers=headers)).read()
    await settle(gateway_app)
    assert backend.bytes <= 1_000_000
    resp = await gateway_client.post(GEN, json={"prompt": "a"}, headers=headers)
    assert resp.headers["x-portkey-cache-status"] == "MISS"  # least recently used went first


def test_canonical_body():
    assert canonical_body(b'{"b": 1, "a": [1, 2]}', "application/json") == canonical_body(b'{"a":[1,2],"b":1}', "application/json; charset=utf-8")
    assert canonical_body(b"raw", "image/png") == b"raw"
