"""Portkey 2.x's model catalog: a provider slug (``@openai-prod``) names a virtual key, in the
model, in a config target and in x-portkey-provider; names that only look like slugs are left alone."""
from __future__ import annotations

import httpx
import msgspec
import openai
import pytest
from portkey_ai import AsyncPortkey

from gateway.catalog import model_slug, provider_slug
from gateway.testing import PNG_1X1, Reply, edit_form, fake_provider

GEN = "/v1/images/generations"
STORED = "sk-stored-prod-0123456789"


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "virtual_keys": {"fake-prod": {"provider": "fake", "api_key": STORED},
                             "fake-dev": {"provider": "fake", "api_key": "sk-stored-dev-0123456789"}}}


@pytest.mark.parametrize(("value", "found"), [
    ("@fake-prod/fake-hd", ("fake-prod", "fake-hd")), ("@a.b:c/m/with/slashes", ("a.b:c", "m/with/slashes")),
    ("@cf/stabilityai/stable-diffusion-xl-base-1.0", None), ("@hf/thebloke/x", None), ("gpt-image-1", None),
    ("@fake-prod", None), ("@/m", None), ("@fake-prod/", None), (5, None),
])
def test_model_slugs(value, found):  # noqa: ANN001
    assert model_slug(value) == found


def test_provider_slugs() -> None:
    assert provider_slug("@fake-prod") == "fake-prod"
    assert provider_slug("fake") is None and provider_slug("@") is None and provider_slug("@a/b") is None


async def test_a_slug_in_the_model_routes_to_its_virtual_key(gateway_server, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    async with openai.AsyncOpenAI(api_key="unused", base_url=str(gateway_server.make_url("/v1")),
                                  max_retries=0) as client:
        result = await client.images.generate(model="@fake-prod/fake-hd", prompt="a fox", response_format="b64_json")
    assert result.data[0].b64_json
    sent = fake_upstream.last
    assert sent.json()["model"] == "fake-hd"  # the plain model upstream, never the slug
    assert sent.headers["Authorization"] == f"Bearer {STORED}"


async def test_a_slug_in_an_edit_form(gateway_client, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post("/v1/images/edits", data=edit_form(PNG_1X1, model="@fake-dev/fake-image",
                                                                        prompt="a hat"))
    assert resp.status == 200, await resp.text()
    parts = {p.name: p.data for p in await fake_upstream.last.form()}
    assert parts["model"] == b"fake-image"
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-stored-dev-0123456789"


@pytest.mark.parametrize("headers", [
    {"x-portkey-provider": "@fake-prod"},
    {"x-portkey-config": msgspec.json.encode({"provider": "@fake-prod"}).decode()},
    {"x-portkey-config": msgspec.json.encode({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "@fake-prod", "override_params": {"model": "fake-hd"}}]}).decode()},
])
async def test_a_slug_as_the_provider(gateway_client, fake_upstream, headers):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {STORED}"


@pytest.mark.parametrize(("body", "headers", "param"), [
    ({"model": "@fake-prd/fake-hd"}, {}, "model"),
    ({}, {"x-portkey-provider": "@nope"}, "x-portkey-provider"),
    ({}, {"x-portkey-config": msgspec.json.encode({"provider": "@nope"}).decode()}, "x-portkey-config"),
])
async def test_an_unknown_slug_is_a_400_listing_the_slugs(gateway_client, fake_upstream, body, headers, param):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", **body}, headers=headers)
    assert resp.status == 400, await resp.text()
    err = (await resp.json())["error"]
    assert (err["code"], err["param"]) == ("unknown_provider_slug", param)
    assert "@fake-dev, @fake-prod" in err["message"]
    assert fake_upstream.requests == []


async def test_workers_ai_names_are_models_not_slugs(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "@cf/bytedance/stable-diffusion-xl-lightning",
                                                "response_format": "b64_json"},
                                     headers={"x-portkey-provider": "fake", "Authorization": "Bearer sk-own"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json()["model"] == "@cf/bytedance/stable-diffusion-xl-lightning"


@pytest.mark.parametrize("headers", [
    {"x-portkey-virtual-key": "fake-dev"},
    {"x-portkey-config": msgspec.json.encode({"virtual_key": "fake-dev"}).decode()},
])
async def test_a_model_slug_that_contradicts_the_routing_is_a_400(gateway_client, fake_upstream, headers):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "@fake-prod/fake-hd"}, headers=headers)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "conflicting_provider"
    assert fake_upstream.requests == []


async def test_the_portkey_sdk_with_a_model_slug(gateway_server, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    # Our own httpx client, closed here: the SDK leaves its default one open.
    async with httpx.AsyncClient() as http:
        client = AsyncPortkey(base_url=str(gateway_server.make_url("/v1")), api_key="unused", http_client=http)
        async with client:
            resp = await client.images.generate(model="@fake-prod/fake-image", prompt="a fox", n=2,
                                                response_format="b64_json")
    assert len(resp.data) == 2
    sent = fake_upstream.last
    assert sent.json()["model"] == "fake-image"
    assert sent.headers["Authorization"] == f"Bearer {STORED}"
