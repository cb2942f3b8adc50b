"""GET /v1/models: without a provider named, the catalog of what the caller can reach (each
model's sizes, n, edit and stream support, per provider and per provider slug); with one,
the provider's own list."""
from __future__ import annotations

import openai
import pytest

from gateway.testing import Reply

STORED = "sk-stored-0123456789"


@pytest.fixture
def gateway_settings(fake_upstream, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("GK_NARROW", "gk-narrow-0123456789")
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "virtual_keys": {"fake-prod": {"provider": "fake", "api_key": STORED},
                             "fake-dev": {"provider": "fake", "api_key": STORED}},
            "gateway_keys": {"wide": {"key": "gk-wide-0123456789"},
                             "narrow": {"key_env": "GK_NARROW", "virtual_keys": ["fake-dev"], "providers": ["fake"]}}}


async def test_the_catalog_lists_models_with_their_capabilities(gateway_server, fake_upstream):  # noqa: ANN001
    async with openai.AsyncOpenAI(api_key="unused", base_url=str(gateway_server.make_url("/v1")), max_retries=0,
                                  default_headers={"x-portkey-api-key": "gk-wide-0123456789"}) as client:
        page = await client.models.list()
    by_id = {m.id: m.model_dump() for m in page.data}
    assert {"fake-image", "fake-hd", "fake-fill", "@fake-prod/fake-image", "@fake-dev/fake-hd"} <= set(by_id)
    hd = by_id["fake-hd"]
    assert hd["owned_by"] == "fake" and hd["provider"] == "fake"
    gen = hd["capabilities"]["generations"]
    assert gen["sizes"] == ["1024x1024", "1792x1024", "1024x1792"] and gen["images_per_call"] == 1
    assert gen["qualities"] == ["standard", "hd"]
    assert hd["capabilities"]["edits"]["input_images"] == 16 and hd["capabilities"]["stream"] is True
    assert by_id["fake-fill"]["capabilities"]["generations"] is None  # an edit-only model
    assert by_id["fake-fill"]["capabilities"]["edits"]["needs_mask"] is True
    assert by_id["@fake-prod/fake-image"]["virtual_key"] == "fake-prod"
    assert STORED not in str(by_id)
    assert fake_upstream.requests == []


async def test_max_n_and_images_per_call_are_what_a_request_meets(gateway_client, fake_upstream):  # noqa: ANN001
    keyed = {"x-portkey-api-key": "gk-wide-0123456789"}
    resp = await gateway_client.get("/v1/models", headers=keyed)
    gen = {m["id"]: m["capabilities"]["generations"] for m in (await resp.json())["data"]}
    assert (gen["fake-hd"]["max_n"], gen["fake-hd"]["images_per_call"]) == (10, 1)
    assert (gen["fake-image"]["max_n"], gen["fake-image"]["images_per_call"]) == (10, 4)
    fake_upstream.on("POST", "/v1/images/generations",
                     Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
    sent = {**keyed, "x-portkey-virtual-key": "fake-prod", "x-portkey-strict-params": "true"}
    # max_n images in one request: images_per_call at a time, in parallel calls ...
    resp = await gateway_client.post("/v1/images/generations", headers=sent,
                                     json={"prompt": "a fox", "model": "fake-hd", "n": gen["fake-hd"]["max_n"]})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 10 and len(fake_upstream.requests) == 10
    # ... and one more is refused (strict) before any call.
    fake_upstream.requests.clear()
    resp = await gateway_client.post("/v1/images/generations", headers=sent,
                                     json={"prompt": "a fox", "model": "fake-hd", "n": 11})
    assert resp.status == 400 and "1 to 10" in (await resp.json())["error"]["message"]
    assert fake_upstream.requests == []


async def test_a_gateway_keys_scope_narrows_the_catalog(gateway_client):  # noqa: ANN001
    resp = await gateway_client.get("/v1/models", headers={"x-portkey-api-key": "gk-narrow-0123456789"})
    assert resp.status == 200, await resp.text()
    ids = {m["id"] for m in (await resp.json())["data"]}
    assert "@fake-dev/fake-image" in ids and not any(i.startswith("@fake-prod/") for i in ids)


async def test_it_needs_a_gateway_key_when_keys_are_on(gateway_client):  # noqa: ANN001
    resp = await gateway_client.get("/v1/models")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "missing_api_key"


async def test_with_a_provider_named_it_is_the_providers_own_list(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json={"object": "list", "data": [{"id": "upstream-model"}]}))
    for headers in ({"x-portkey-provider": "fake", "Authorization": "Bearer sk-own"},
                    {"x-portkey-virtual-key": "fake-prod"}):
        resp = await gateway_client.get("/v1/models", headers={"x-portkey-api-key": "gk-wide-0123456789", **headers})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["data"] == [{"id": "upstream-model"}]
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {STORED}"
