"""Image URLs the gateway hands out: signed so they load in a browser without a gateway key and
cannot be forged or stretched, and pointing at a base the caller cannot choose (``images.public_url``,
the Host only when the operator lists it, proxy headers only when trusted), cache hits included."""
from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import openai
import pytest

import gateway_openai
from first_party import FIRST_PARTY
from gateway.app import create_app
from gateway.errors import StartupError
from gateway.images.store import SECRET_FILE, SECRET_KEY
from gateway.images.urls import stored_path
from gateway.keys import GATEWAY
from gateway.testing import PNG_1X1, Reply
from gateway_openai import testing as openai_fake

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-fake"}
B64 = {"created": 1, "data": [{"b64_json": base64.b64encode(PNG_1X1).decode()}]}
EVIL = "evil.example"
SECRET = "s3cr3t-" + "x" * 40


def cached(max_age: int = 600) -> dict[str, str]:
    return {"x-portkey-config": msgspec.json.encode(
        {"provider": "fake", "api_key": "sk-fake", "cache": {"mode": "simple", "max_age": max_age}}).decode()}


def path_of(url: str) -> str:
    """The path and query of an absolute URL, as a browser would send them."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def app_for(fake_upstream: Any, tmp_path: Path, **images: Any) -> Any:
    settings: dict[str, Any] = {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"},
                                              "openai": {"base_url": fake_upstream.url + "/v1"}},
                                "images": {"directory": str(tmp_path / "images"), **images}}
    if "gateway_keys" in images:
        settings["security"] = {"gateway_keys": settings["images"].pop("gateway_keys")}
    return create_app(settings, plugins=[*FIRST_PARTY, gateway_openai], load_entrypoints=False)


async def url_answer(client: Any, headers: dict[str, str] | None = None, **body: Any) -> tuple[Any, str]:
    resp = await client.post(GEN, json={"prompt": "a fox", "response_format": "url", **body},
                             headers={**H, **(headers or {})})
    assert resp.status == 200, await resp.text()
    return resp, (await resp.json())["data"][0]["url"]


@pytest.fixture
def gateway_settings(fake_upstream, tmp_path):  # noqa: ANN001, ANN201
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "images": {"directory": str(tmp_path / "images")}}


# --------------------------------------------------------------------------- signed URLs
async def test_url_answers_load_in_a_browser_with_gateway_keys_on(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    client = await aiohttp_client(app_for(fake_upstream, tmp_path, gateway_keys=["gk-1"]))
    _, url = await url_answer(client, {"x-portkey-api-key": "gk-1"})
    query = parse_qs(urlsplit(url).query)
    assert set(query) == {"expires", "sig"}
    # An <img src> sends no header at all.
    image = await client.get(path_of(url), skip_auto_headers=["User-Agent"])
    assert image.status == 200, await image.text()
    assert await image.read() == PNG_1X1 and image.headers["Content-Type"] == "image/png"


async def test_unsigned_tampered_and_expired_urls_are_403(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    app = app_for(fake_upstream, tmp_path, gateway_keys=["gk-1"])
    client = await aiohttp_client(app)
    _, url = await url_answer(client, {"x-portkey-api-key": "gk-1"})
    path = urlsplit(url).path
    image_id = path.rsplit("/", 1)[1]
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    flipped = ("A" if q["sig"][0] != "A" else "B") + q["sig"][1:]
    other = stored_path("B" * 32, int(q["expires"])).split("?")[0]
    invalid = [
        path,  # unsigned, even with the gateway key below
        f"{path}?expires={q['expires']}",
        f"{path}?sig={q['sig']}",
        f"{path}?expires={q['expires']}&sig={flipped}",
        f"{path}?expires={int(q['expires']) + 1}&sig={q['sig']}",
        f"{other}?expires={q['expires']}&sig={q['sig']}",
        f"{path}?expires=%C2%B9%C2%B2&sig={q['sig']}",  # superscript digits
        f"{path}?expires={q['expires']}&sig=%C3%A9",  # not ASCII
        f"{path}?expires={'9' * 5000}&sig={q['sig']}",
    ]
    for bad in invalid:
        resp = await client.get(bad, headers={"x-portkey-api-key": "gk-1"})
        assert resp.status == 403, (bad, await resp.text())
        err = (await resp.json())["error"]
        assert (err["type"], err["code"]) == ("permission_error", "invalid_signature"), bad
    past = app[GATEWAY].image_urls.signed(stored_path(image_id, int(time.time()) - 5))
    resp = await client.get(past)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "url_expired"
    assert resp.content_type == "application/json"


async def test_a_url_expires_with_its_image(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    app = app_for(fake_upstream, tmp_path, ttl=120)
    client = await aiohttp_client(app)
    _, url = await url_answer(client)
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    image = await app[GATEWAY].images.get(urlsplit(url).path.rsplit("/", 1)[1])
    assert expires <= image.expires < expires + 2 and abs(expires - (time.time() + 120)) < 3
    resp = await client.get(path_of(url))
    assert 0 < int(resp.headers["Cache-Control"].split("max-age=")[1]) <= 120


async def test_a_configured_secret_is_shared_by_instances(aiohttp_client, fake_upstream, tmp_path, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("IMAGE_URL_SECRET", SECRET)
    (tmp_path / "secret").write_text(SECRET + "\n")
    fake_upstream.on("POST", GEN, Reply(json=B64))
    one = await aiohttp_client(app_for(fake_upstream, tmp_path, url_secret_env="IMAGE_URL_SECRET"))
    two = await aiohttp_client(app_for(fake_upstream, tmp_path, url_secret_file=str(tmp_path / "secret")))
    # Same store directory, another secret: its own URLs only.
    monkeypatch.setenv("OTHER_SECRET", "another-" + "y" * 40)
    three = await aiohttp_client(app_for(fake_upstream, tmp_path, url_secret_env="OTHER_SECRET"))
    _, url = await url_answer(one)
    assert (await two.get(path_of(url))).status == 200
    resp = await three.get(path_of(url))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "invalid_signature"


async def test_without_a_secret_processes_sharing_the_store_agree(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    one = await aiohttp_client(app_for(fake_upstream, tmp_path))
    two = await aiohttp_client(app_for(fake_upstream, tmp_path))
    _, url = await url_answer(one)
    assert (await two.get(path_of(url))).status == 200
    secret = tmp_path / "images" / ".url-secret"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_bytes()) >= 32


async def test_a_shared_secret_is_put_back_and_a_new_winner_adopted(aiohttp_client, tmp_path):  # noqa: ANN001
    app = create_app({"images": {"store": "cache"}}, load_entrypoints=False)
    client = await aiohttp_client(app)
    state = app[GATEWAY]
    image_id = await state.images.put(PNG_1X1, "image/png", ttl=60)
    path = stored_path(image_id, int(time.time()) + 60)
    before = state.image_urls.signed(path)
    shared = await state.cache.get(SECRET_KEY)
    await state.cache.backend.delete(SECRET_KEY)  # evicted from Redis under memory pressure
    await state.image_urls.keys.refresh()
    assert await state.cache.get(SECRET_KEY) == shared and state.image_urls.signed(path) == before
    await state.cache.set(SECRET_KEY, b"w" * 32, ttl=None)  # another instance's secret won meanwhile
    await state.image_urls.keys.refresh()
    after = state.image_urls.signed(path)
    assert after != before
    for url in (before, after):  # what was handed out before still loads
        assert (await client.get(url)).status == 200


async def test_a_removed_secret_file_is_put_back(aiohttp_client, tmp_path):  # noqa: ANN001
    app = create_app({"images": {"directory": str(tmp_path)}}, load_entrypoints=False)
    await aiohttp_client(app)
    secret = tmp_path / SECRET_FILE
    was = secret.read_bytes()
    secret.unlink()  # a temp-directory cleaner
    await app[GATEWAY].image_urls.keys.refresh()
    assert secret.read_bytes() == was


@pytest.mark.parametrize(("images", "says"), [
    ({"url_secret_env": "NO_SUCH_VARIABLE_SET"}, "images.url_secret_env: environment variable NO_SUCH_VARIABLE_SET"),
    ({"url_secret_file": "/nonexistent/secret"}, "images.url_secret_file: cannot read /nonexistent/secret"),
    ({"url_secret": "short"}, "images.url_secret: the secret must be at least 32 characters"),
    ({"url_secret": SECRET, "url_secret_env": "X"}, "set only one of images.url_secret"),
    ({"public_url": "ftp://gateway.example.com"}, "images.public_url"),
    ({"public_url": "https://gateway.example.com/?x=1"}, "images.public_url"),
    ({"url_hosts": ["https://gateway.example.com"]}, "images.url_hosts"),
])
def test_bad_image_url_settings_stop_start_up(images: dict[str, Any], says: str, tmp_path: Path) -> None:
    with pytest.raises(StartupError) as e:
        create_app({"images": {"directory": str(tmp_path), **images}}, load_entrypoints=False)
    assert says in str(e.value)
    assert SECRET not in str(e.value)


# --------------------------------------------------------------------------- the base of the URL
@pytest.mark.parametrize("cache", [False, True])
async def test_the_host_header_never_reaches_an_answer(aiohttp_client, fake_upstream, tmp_path, cache):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    client = await aiohttp_client(app_for(fake_upstream, tmp_path))
    own = str(client.make_url("/v1/images/files/"))
    extra = cached() if cache else {}
    resp, url = await url_answer(client, {"Host": EVIL, **extra})
    assert url.startswith(own) and EVIL not in (await resp.text())
    await client.app[GATEWAY].drain()
    # The next caller (a hit with the cache on) sees the gateway's own address too.
    resp, url = await url_answer(client, extra)
    assert resp.headers["x-portkey-cache-status"] == ("HIT" if cache else "DISABLED")
    assert url.startswith(own) and EVIL not in (await resp.text())
    assert (await client.get(path_of(url))).status == 200


async def test_a_cache_hit_gets_its_own_callers_allowed_host(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    app = app_for(fake_upstream, tmp_path, url_hosts=["gw-a.internal:8787", "GW-B.internal"])
    client = await aiohttp_client(app)
    resp, first = await url_answer(client, {"Host": "gw-a.internal:8787", **cached()})
    assert first.startswith("http://gw-a.internal:8787/v1/images/files/")
    await app[GATEWAY].drain()
    resp, hit = await url_answer(client, {"Host": "gw-b.internal", **cached()})
    assert resp.headers["x-portkey-cache-status"] == "HIT"
    assert hit.startswith("http://gw-b.internal/v1/images/files/") and "gw-a" not in (await resp.text())
    assert path_of(hit) == path_of(first)  # the same image, signed the same way
    # A host not listed falls back to the gateway's own address, also on a hit.
    resp, url = await url_answer(client, {"Host": EVIL, **cached()})
    assert resp.headers["x-portkey-cache-status"] == "HIT"
    assert url.startswith(str(client.make_url("/v1/images/files/")))


async def test_proxy_headers_only_when_trusted(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "images.example.com, inner.example"}
    plain = await aiohttp_client(app_for(fake_upstream, tmp_path))
    _, url = await url_answer(plain, proxied)
    assert url.startswith(str(plain.make_url("/v1/images/files/")))
    trusting = await aiohttp_client(app_for(fake_upstream, tmp_path, forwarded_headers=True))
    _, url = await url_answer(trusting, proxied)
    assert url.startswith("https://images.example.com/v1/images/files/")
    _, url = await url_answer(trusting, {"X-Forwarded-Host": "bad host/with?junk"})
    assert url.startswith(str(trusting.make_url("/v1/images/files/")))
    listed = await aiohttp_client(app_for(fake_upstream, tmp_path, forwarded_headers=True,
                                          url_hosts=["images.example.com"]))
    _, url = await url_answer(listed, proxied)
    assert url.startswith("https://images.example.com/v1/images/files/")
    _, url = await url_answer(listed, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": EVIL})
    assert url.startswith(str(listed.make_url("/v1/images/files/")))


async def test_public_url_wins(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    client = await aiohttp_client(app_for(fake_upstream, tmp_path, public_url="https://img.example.com/gw/",
                                          url_hosts=["gw-a.internal"], forwarded_headers=True))
    _, url = await url_answer(client, {"Host": "gw-a.internal", "X-Forwarded-Host": "gw-a.internal"})
    assert url.startswith("https://img.example.com/gw/v1/images/files/")
    resp = await client.get(path_of(url).removeprefix("/gw"))
    assert resp.status == 200


async def test_a_wildcard_bind_warns_to_set_public_url(aiohttp_client, tmp_path, log_capture):  # noqa: ANN001
    app = create_app({"server": {"host": "0.0.0.0"}, "images": {"directory": str(tmp_path)}}, load_entrypoints=False)
    await aiohttp_client(app)
    [warning] = log_capture.events("images.public_url_unset")
    assert warning["level"] == "warning" and "images.public_url" in warning["hint"]
    app = create_app({"images": {"directory": str(tmp_path)}}, load_entrypoints=False)
    await aiohttp_client(app)
    assert len(log_capture.events("images.public_url_unset")) == 1


# --------------------------------------------------------------------------- streams and SDKs
async def test_a_synthesized_stream_and_its_hit_carry_no_callers_host(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    app = app_for(fake_upstream, tmp_path)
    client = await aiohttp_client(app)
    own = str(client.make_url("/v1/images/files/")).encode()
    for status in ("MISS", "HIT"):
        resp = await client.post(GEN, json={"prompt": "a fox", "stream": True, "response_format": "url"},
                                 headers={**H, "Host": EVIL, **cached()})
        body = await resp.read()
        assert resp.headers["x-portkey-cache-status"] == status
        assert b"image_generation.completed" in body and b'"url":"' + own in body and EVIL.encode() not in body
        await app[GATEWAY].drain()


async def test_a_relayed_stream_gets_signed_urls_on_the_gateways_own_address(aiohttp_client, fake_upstream,  # noqa: ANN001
                                                                             tmp_path):
    openai_fake.install(fake_upstream)
    app = app_for(fake_upstream, tmp_path, gateway_keys=["gk-1"])
    server_client = await aiohttp_client(app)
    headers = {"x-portkey-provider": "openai", "x-portkey-api-key": "gk-1", "Host": EVIL}
    sdk = openai.AsyncOpenAI(base_url=str(server_client.make_url("/v1")), api_key="sk-openai-1", max_retries=0,
                             default_headers=headers)
    async with sdk:
        stream = await sdk.images.generate(model="gpt-image-1", prompt="a fox", stream=True, partial_images=1,
                                           response_format="url")
        done = [event async for event in stream][-1]
    assert done.url.startswith(str(server_client.make_url("/v1/images/files/")))
    image = await server_client.get(path_of(done.url))
    assert image.status == 200 and await image.read() == PNG_1X1


async def test_the_openai_sdk_reads_a_url_answer_a_browser_can_load(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json=B64))
    client = await aiohttp_client(app_for(fake_upstream, tmp_path, gateway_keys=["gk-1"]))
    sdk = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key="sk-fake", max_retries=0,
                             default_headers={"x-portkey-provider": "fake", "x-portkey-api-key": "gk-1"})
    async with sdk:
        result = await sdk.images.generate(prompt="a fox", response_format="url")
    image = await client.get(path_of(result.data[0].url))
    assert image.status == 200 and await image.read() == PNG_1X1
    assert os.path.basename(urlsplit(result.data[0].url).path) + ".png" in image.headers["Content-Disposition"]


# --------------------------------------------------------------------------- a provider's paths
async def test_a_providers_relative_url_is_refused_not_signed(gateway_client, fake_upstream):  # noqa: ANN001
    # A custom host a caller names can answer anything: here another caller's image path with
    # an expiry far away.  It must not come back signed by the gateway.
    fake_upstream.on("POST", GEN, Reply(json=B64))
    _, url = await url_answer(gateway_client)
    victim = urlsplit(url).path
    forged = f"{victim}?expires={int(time.time()) + 10**8}"
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": forged}]}))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"}, headers=H)
    assert resp.status == 502, await resp.text()
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_provider_response" and "absolute http(s) URL" in err["message"]
    assert "sig=" not in await resp.text()


async def test_a_providers_stored_path_elsewhere_in_the_answer_stays_unsigned(gateway_client, fake_upstream):  # noqa: ANN001
    # A base64 answer is relayed byte for byte, whatever else it holds: a path in another field is
    # left as the provider wrote it.
    fake_upstream.on("POST", GEN, Reply(json=B64))
    _, url = await url_answer(gateway_client)
    forged = f"{urlsplit(url).path}?expires={int(time.time()) + 10**8}"
    fake_upstream.on("POST", GEN, Reply(json={**B64, "extra": {"url": forged}}))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["extra"] == {"url": forged}
    assert (await gateway_client.get(forged)).status == 403
    assert (await gateway_client.get(path_of(url))).status == 200
