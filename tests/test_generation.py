"""The core's generation pipeline, through the OpenAI provider against its fake:
capability mapping (lenient and strict), n split over parallel calls, response_format
both ways, the one response shape, malformed answers."""
from __future__ import annotations

import asyncio
import base64

import msgspec
import pytest
from aiohttp import web

from gateway.testing import Recorded, Reply
from gateway_openai import testing as openai_fake
from gateway.testing.provider_contract import make_png
# This module runs through the first-party providers (their declared models, their fakes).
from first_party import gateway_plugins, gateway_settings  # noqa: F401  (fixtures)


GEN = "/v1/images/generations"
H = {"x-portkey-provider": "openai", "Authorization": "Bearer sk-gen"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seeded_handler(delays: dict[int, float] | None = None):  # noqa: ANN201
    """OpenAI's answer whose image encodes the request's seed (so order is visible)."""
    async def handle(request: web.Request, rec: Recorded) -> web.Response:
        body = rec.json()
        seed = body.get("seed", 0)
        await asyncio.sleep((delays or {}).get(seed, 0))
        data = [{"b64_json": b64(make_png(seed * 100 + i)), "revised_prompt": f"seed {seed}"} for i in range(body.get("n", 1))]
        return web.json_response({"created": 1700000000 + seed, "data": data}, headers={"x-request-id": f"req_{seed}"})
    return handle


async def test_n_is_split_over_parallel_calls_and_merged_in_order(gateway_client, fake_upstream):  # noqa: ANN001
    # dall-e-3 makes one image per call; the first call answers last.
    fake_upstream.on("POST", GEN, seeded_handler({7: 0.3, 8: 0.0, 9: 0.1}))
    body = {"prompt": "p", "model": "dall-e-3", "n": 3, "seed": 7, "response_format": "b64_json"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert [base64.b64decode(d["b64_json"]) for d in doc["data"]] == [make_png(700), make_png(800), make_png(900)]
    assert [d["revised_prompt"] for d in doc["data"]] == ["seed 7", "seed 8", "seed 9"]
    assert doc["provider"] == "openai" and doc["created"] == 1700000007
    sent = sorted((r.json() for r in fake_upstream.requests), key=lambda b: b["seed"])
    assert sent == [{**body, "n": 1, "seed": s} for s in (7, 8, 9)]
    assert resp.headers["x-request-id"] == "req_7"  # the first call's headers


async def test_one_failed_call_fails_the_request_and_cancels_the_rest(gateway_client, fake_upstream):  # noqa: ANN001
    async def handle(request: web.Request, rec: Recorded) -> web.StreamResponse:
        if rec.json()["seed"] == 2:
            return openai_fake.error(429, "Rate limit reached for images", code="rate_limit_exceeded")
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    fake_upstream.on("POST", GEN, handle)
    resp = await gateway_client.post(GEN, json={"prompt": "p", "model": "dall-e-3", "n": 3, "seed": 1}, headers=H)
    assert resp.status == 429
    doc = await resp.json()
    assert doc["error"]["message"] == "openai error: Rate limit reached for images"
    assert doc["error"]["code"] == "rate_limit_exceeded"
    for _ in range(100):
        if fake_upstream.cancelled == 2:
            break
        await asyncio.sleep(0.02)
    assert fake_upstream.cancelled == 2


async def test_lenient_mode_maps_to_the_nearest_and_says_what_changed(gateway_client, fake_upstream):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    body = {"prompt": "p", "model": "dall-e-3", "size": "1600x900", "quality": "high", "style": "cinematic",
            "n": 12, "seed": 3}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == (
        "n=12->10; size=1600x900->1792x1024; quality=high->hd; style=cinematic->(dropped)")
    sent = fake_upstream.last.json()
    assert (sent["size"], sent["quality"], sent["n"]) == ("1792x1024", "hd", 1)
    assert "style" not in sent
    assert len((await resp.json())["data"]) == 10


async def test_lenient_mode_drops_parameters_the_provider_does_not_take(gateway_client, fake_upstream):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "p", "model": "gpt-image-1", "background": "opaque"},
                                     headers=H)
    assert resp.status == 200
    assert "x-portkey-adjusted-params" not in resp.headers
    assert fake_upstream.last.json()["background"] == "opaque"


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"size": "512x512"}, "size", "allowed: 1024x1024, 1792x1024, 1024x1792"),
        ({"quality": "ultra"}, "quality", "allowed: standard, hd"),
        ({"style": "anime"}, "style", "allowed: vivid, natural"),
        ({"n": 11}, "n", "allowed: 1 to 10"),
    ],
)
async def test_strict_mode_names_the_parameter_and_the_allowed_values(gateway_client, fake_upstream, body, param,  # noqa: ANN001
                                                                      needle):
    openai_fake.install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "p", "model": "dall-e-3", **body},
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == param and err["code"] == "unsupported_parameter_value"
    assert needle in err["message"] and "openai model 'dall-e-3'" in err["message"]
    assert fake_upstream.requests == []


async def test_strict_mode_from_the_config_and_fallback_to_a_target_that_takes_it(gateway_client, fake_upstream):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    config = {"strategy": {"mode": "fallback"}, "strict_params": True, "targets": [
        {"provider": "openai", "api_key": "sk-1", "override_params": {"model": "dall-e-3"}},
        {"provider": "openai", "api_key": "sk-2", "override_params": {"model": "dall-e-2"}},
    ]}
    resp = await gateway_client.post(GEN, json={"prompt": "p", "size": "256x256"},
                                     headers={"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert [r.json()["model"] for r in fake_upstream.requests] == ["dall-e-2"]
    # The header turns strictness off for one request.
    resp = await gateway_client.post(GEN, json={"prompt": "p", "size": "256x256"}, headers={
        "x-portkey-config": msgspec.json.encode(config).decode(), "x-portkey-strict-params": "false"})
    assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert fake_upstream.last.json()["size"] == "1024x1024"


@pytest.mark.parametrize(("value", "needle"), [("big", "expected WIDTHxHEIGHT"), ("0x5", "expected WIDTHxHEIGHT")])
async def test_a_size_that_is_not_a_size_is_a_400(gateway_client, fake_upstream, value, needle):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "p", "model": "dall-e-3", "size": value}, headers=H)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "size" and needle in err["message"]


async def test_b64_answer_as_url_is_stored_and_served_under_a_signed_url(aiohttp_client, fake_upstream, tmp_path):  # noqa: ANN001
    import gateway_openai

    from gateway.app import create_app

    openai_fake.install(fake_upstream, image=make_png(42))
    app = create_app({"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}},
                      "security": {"gateway_keys": ["gk-1"]}, "images": {"directory": str(tmp_path)}},
                     plugins=[gateway_openai])
    client = await aiohttp_client(app)
    # gpt-image only answers base64: the gateway does not send response_format, and stores the image.
    resp = await client.post(GEN, json={"prompt": "p", "model": "gpt-image-1", "response_format": "url"},
                             headers={**H, "x-portkey-api-key": "gk-1"})
    assert resp.status == 200, await resp.text()
    assert "response_format" not in fake_upstream.last.json()
    doc = await resp.json()
    url = doc["data"][0]["url"]
    assert doc["usage"]["total_tokens"] == 110 and "b64_json" not in doc["data"][0]
    assert url.startswith(str(client.make_url("/v1/images/files/")))
    path, _, query = url[url.index("/v1/"):].partition("?")
    assert len(path.rsplit("/", 1)[1]) >= 32
    # The signed URL is the authorization: no key needed, and a key does not replace it.
    assert (await client.get(path, headers={"x-portkey-api-key": "gk-1"})).status == 403
    got = await client.get(f"{path}?{query}")
    assert got.status == 200 and got.headers["Content-Type"] == "image/png"
    assert "max-age=" in got.headers["Cache-Control"]
    assert await got.read() == make_png(42)


async def test_url_answer_as_b64_is_fetched_from_the_provider_host_only(gateway_client, fake_upstream):  # noqa: ANN001
    answers = [
        {"created": 1, "data": [{"url": fake_upstream.url + "/img/1.png"}]},
        {"created": 1, "data": [{"url": "https://attacker.example/steal.png"}]},
        {"created": 1, "data": [{"url": fake_upstream.url + "/img/missing.png"}]},
    ]
    fake_upstream.on("POST", GEN, *(Reply(json=a) for a in answers))
    fake_upstream.on("GET", "/img/1.png", Reply(body=make_png(5), content_type="image/png"))
    fake_upstream.on("GET", "/img/missing.png", Reply(404, body=b"gone"))
    body = {"prompt": "p", "model": "dall-e-2", "response_format": "b64_json"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) == make_png(5)
    # Neither is fetched into the answer: the image was made and billed, so instead of a 502
    # (which a client or a fallback would retry, billed again) its URL is handed on, with why.
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200
    assert (await resp.json())["data"] == [{"url": "https://attacker.example/steal.png"}]
    assert resp.headers["x-portkey-adjusted-params"] == (
        "response_format=b64_json->url (Invalid response from openai: an image URL is not on openai's own hosts "
        "(attacker.example))")
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200
    assert (await resp.json())["data"] == [{"url": fake_upstream.url + "/img/missing.png"}]
    assert "Fetching an image from openai failed: HTTP 404" in resp.headers["x-portkey-adjusted-params"]
    assert [r.path for r in fake_upstream.requests].count("/img/missing.png") == 1


async def test_an_image_that_cannot_be_fetched_is_not_made_again_by_a_fallback(gateway_client, fake_upstream):  # noqa: ANN001
    # The first target made (and billed) the image; only its URL could not be fetched. A 502 here
    # would send the fallback to the second target, and the caller would pay twice.
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": fake_upstream.url + "/img/gone.png"}]}))
    fake_upstream.on("GET", "/img/gone.png", Reply(503, body=b"busy"))
    config = {"strategy": {"mode": "fallback"},
              "targets": [{"provider": "openai", "api_key": "sk-first"}, {"provider": "openai", "api_key": "sk-second"}]}
    resp = await gateway_client.post(GEN, json={"prompt": "p", "model": "dall-e-2", "response_format": "b64_json"},
                                     headers={"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"] == [{"url": fake_upstream.url + "/img/gone.png"}]
    assert "HTTP 503" in resp.headers["x-portkey-adjusted-params"]
    posts = [r for r in fake_upstream.requests if r.method == "POST"]
    assert [r.headers["Authorization"] for r in posts] == ["Bearer sk-first"]


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (Reply(200, body=b"<html>oops</html>", content_type="text/html"), "the body is not JSON: <html>oops</html>"),
        (Reply(200, json={"error": {"message": "quota"}}), "no `data` list"),
        (Reply(200, json={"created": 1, "data": []}), "no images in `data`"),
        (Reply(200, json={"created": 1, "data": [{"image": "x"}]}), "neither `b64_json` nor `url`"),
        (Reply(200, json={"created": 1, "data": [{"b64_json": "***"}]}), "not valid base64"),
    ],
)
async def test_an_answer_that_is_not_the_documented_shape_is_a_502(gateway_client, fake_upstream, reply, needle):  # noqa: ANN001
    fake_upstream.on("POST", GEN, reply)
    resp = await gateway_client.post(GEN, json={"prompt": "p", "response_format": "url"}, headers=H)
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_provider_response" and needle in err["message"]
    assert err["message"].startswith("Invalid response from openai: ")


async def test_data_uri_images_are_decoded(gateway_client, fake_upstream):  # noqa: ANN001
    uri = "data:image/png;base64," + b64(make_png(9))
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"url": uri}]}))
    resp = await gateway_client.post(GEN, json={"prompt": "p"}, headers=H)
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) == make_png(9)


async def test_moderation_blocked_is_a_content_policy_violation(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(400, json={"error": {
        "message": "Your request was rejected by the safety system.", "type": "image_generation_user_error",
        "param": None, "code": "moderation_blocked"}}))
    resp = await gateway_client.post(GEN, json={"prompt": "p", "model": "gpt-image-1"}, headers=H)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "content_policy_violation"


async def test_cache_entries_differ_by_response_format_and_n(aiohttp_client, fake_upstream):  # noqa: ANN001
    import gateway_openai

    from gateway.app import create_app

    openai_fake.install(fake_upstream)
    app = create_app({"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}},
                      "cache": {"default": {"mode": "simple"}}}, plugins=[gateway_openai])
    client = await aiohttp_client(app)
    statuses = []
    for body in ({"response_format": "url"}, {"response_format": "b64_json"}, {"response_format": "url"},
                 {"n": 2}, {"n": 2}):
        resp = await client.post(GEN, json={"prompt": "p", "model": "gpt-image-1", **body}, headers=H)
        assert resp.status == 200
        doc = await resp.json()
        assert len(doc["data"]) == body.get("n", 1)
        statuses.append(resp.headers["x-portkey-cache-status"])
        await asyncio.sleep(0.1)  # the entry is stored after the answer
    assert statuses == ["MISS", "MISS", "HIT", "MISS", "HIT"]


def test_fitted_sizes_always_land_inside_every_limit():
    from gateway.negotiation import _fit
    from gateway.provider import ModelCapabilities

    # Stability v1-6's documented rules: sides 320-1536 in steps of 64, 262144-1048576 pixels.
    mc = ModelCapabilities(min_side=320, max_side=1536, side_multiple=64, min_pixels=262144, max_pixels=1048576)
    for w in range(64, 4000, 37):
        for hgt in range(64, 4000, 41):
            nw, nh = _fit(w, hgt, mc)
            assert 320 <= nw <= 1536 and 320 <= nh <= 1536 and nw % 64 == nh % 64 == 0, (w, hgt, nw, nh)
            assert 262144 <= nw * nh <= 1048576, (w, hgt, nw, nh)
    assert _fit(400, 640, mc) == (448, 704)  # rounding to nearest would fall under the pixel floor


async def test_an_answer_already_in_shape_goes_on_with_provider_added(gateway_client, fake_upstream):  # noqa: ANN001
    answers = [{"created": 5, "data": [{"b64_json": "aGk="}], "usage": {"total_tokens": 3}, "x_service": "kept"},
               {"created": 5, "data": [{"b64_json": "aGk="}], "provider": "someone-else"}]
    fake_upstream.on("POST", GEN, *(Reply(json=a) for a in answers))
    resp = await gateway_client.post(GEN, json={"prompt": "p", "model": "gpt-image-1"}, headers=H)
    assert await resp.json() == {**answers[0], "provider": "openai"}
    resp = await gateway_client.post(GEN, json={"prompt": "p", "model": "gpt-image-1"}, headers=H)
    assert await resp.json() == {"created": 5, "data": [{"b64_json": "aGk="}], "provider": "openai"}
