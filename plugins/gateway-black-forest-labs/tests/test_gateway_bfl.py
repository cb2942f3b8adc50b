"""The Black Forest Labs provider through the gateway, against a fake of BFL's documented API."""
from __future__ import annotations

import asyncio
import base64

import openai
import pytest

from gateway.sdk import StartupError
from gateway.testing import FakeUpstream, Reply
from gateway_black_forest_labs.testing import install, make_jpeg

KEY = "bfl-test-key-0123456789"  # the conftest's virtual key holds the same
H = {"x-portkey-provider": "black-forest-labs", "Authorization": f"Bearer {KEY}"}
GEN = "/v1/images/generations"


async def eventually(check, timeout: float = 3.0) -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def post(client, body, headers=None):  # noqa: ANN001, ANN201
    return await client.post(GEN, json=body, headers={**H, **(headers or {})})


# -- generations ------------------------------------------------------------------------------

async def test_a_generation_is_a_task_polled_at_its_polling_url(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream, steps=2)
    body = {"prompt": "a red fox", "model": "flux-2-pro", "size": "1536x1024", "seed": 7, "safety_tolerance": 3,
            "response_format": "b64_json"}
    resp = await post(gateway_client, body)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["provider"] == "black-forest-labs" and isinstance(doc["created"], int)
    assert [base64.b64decode(d["b64_json"]) for d in doc["data"]] == bfl.served[0] == [make_jpeg(1)]
    [create] = bfl.creates()
    assert (create.method, create.path) == ("POST", "/v1/flux-2-pro")
    assert create.json() == {"prompt": "a red fox", "width": 1536, "height": 1024, "seed": 7, "safety_tolerance": 3}
    assert create.headers["x-key"] == KEY and "Authorization" not in create.headers
    [task] = bfl.tasks.values()
    polls = bfl.polls()
    assert len(polls) == 3 and all(p.query == {"id": task.id} and p.headers["x-key"] == KEY for p in polls)
    assert sleeps[:3] == [0.5, 0.75, 1.125]
    # The result image is fetched without the key.
    [delivery] = bfl.deliveries
    assert "x-key" not in delivery.headers and "Authorization" not in delivery.headers


async def test_response_format_url_is_a_gateway_url_of_the_fetched_image(gateway_client, fake_upstream,  # noqa: ANN001
                                                                          sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", "response_format": "url", "output_format": "png"})
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["data"][0]["url"]
    assert url.startswith(str(gateway_client.make_url("/v1/images/files/")))
    image = await gateway_client.get("/" + url.split("://", 1)[1].partition("/")[2])
    assert image.status == 200 and image.headers["Content-Type"] == "image/png"
    assert await image.read() == bfl.served[0][0]
    assert len(bfl.deliveries) == 1


async def test_no_response_format_also_gets_the_gateways_url(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    # BFL's URL lasts minutes: whenever the answer carries a URL it is the gateway's own.
    bfl = install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 200, await resp.text()
    [item] = (await resp.json())["data"]
    assert item["url"].startswith(str(gateway_client.make_url("/v1/images/files/")))
    assert len(bfl.deliveries) == 1


async def test_an_image_that_cannot_be_fetched_hands_on_bfls_url(gateway_client, fake_upstream,  # noqa: ANN001
                                                                  sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    bfl.expired = True
    resp = await post(gateway_client, {"prompt": "a fox", "response_format": "url"})
    assert resp.status == 200, await resp.text()
    [task] = bfl.tasks.values()
    assert (await resp.json())["data"] == [{"url": task.sample}]


async def test_n_runs_parallel_tasks_merged_in_order(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream, steps=3)
    resp = await post(gateway_client, {"prompt": "a fox", "n": 3, "seed": 10, "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    got = [base64.b64decode(d["b64_json"]) for d in (await resp.json())["data"]]
    creates = bfl.creates()
    assert len(creates) == 3 and sorted(c.json()["seed"] for c in creates) == [10, 11, 12]
    # All three were running at once: every task was submitted before any finished.
    assert bfl.max_active == 3
    # In order: the image of the task with seed 10 first, then 11, then 12.
    order = sorted(bfl.tasks.values(), key=lambda task: task.body["seed"])
    assert got == [bfl.results[task.id] for task in order] and len(set(got)) == 3


async def test_kontext_and_ultra_get_aspect_ratios(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    for model, ratio in (("flux-kontext-pro", "16:9"), ("flux-pro-1.1-ultra", "16:9")):
        resp = await post(gateway_client, {"prompt": "a fox", "model": model, "size": "1792x1024", "raw": True})
        assert resp.status == 200, await resp.text()
        sent = bfl.creates()[-1]
        expect = {"prompt": "a fox", "aspect_ratio": ratio, **({"raw": True} if "ultra" in model else {})}
        assert sent.path == f"/v1/{model}" and sent.json() == expect
        if "kontext" in model:
            assert "raw=(dropped)" in resp.headers["x-portkey-adjusted-params"]


async def test_the_openai_sdk(gateway_server, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key=KEY, max_retries=0,
                                  default_headers={"x-portkey-provider": "black-forest-labs"}) as sdk:
        result = await sdk.images.generate(model="flux-2-klein-4b", prompt="a fox", size="1024x1024",
                                           response_format="b64_json", extra_body={"output_format": "png"})
    assert base64.b64decode(result.data[0].b64_json) == bfl.served[0][0]
    assert bfl.creates()[0].json() == {"prompt": "a fox", "width": 1024, "height": 1024, "output_format": "png"}


# -- refusals and errors ------------------------------------------------------------------------

@pytest.mark.parametrize("ending", ["Request Moderated", "Content Moderated"])
async def test_moderated_tasks_are_content_policy_violations(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                             ending):  # noqa: ANN001
    install(fake_upstream, ending=ending)
    resp = await post(gateway_client, {"prompt": "something refused"})
    assert resp.status == 400
    doc = await resp.json()
    assert doc["error"]["code"] == "content_policy_violation" and doc["provider"] == "black-forest-labs"
    assert ending in doc["error"]["message"] and "Derivative Works" in doc["error"]["message"]


async def test_a_failed_task_is_a_502_with_its_details(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, ending="Error")
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "generation_failed" and "Internal error while generating" in err["message"]


async def test_a_lost_task_is_a_502_task_not_found(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    bfl.forget = True
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "task_not_found"


async def test_out_of_credits_keeps_402(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, credits=0)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 402
    err = (await resp.json())["error"]
    assert (err["type"], err["code"]) == ("billing_error", "insufficient_credits")
    assert "Insufficient credits" in err["message"]


async def test_too_many_active_tasks_keeps_429_and_retry_after(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, never=True, limit=2)
    resp = await post(gateway_client, {"prompt": "a fox", "n": 3}, {"x-portkey-request-timeout": "2000"})
    assert resp.status == 429
    err = (await resp.json())["error"]
    assert (err["type"], err["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert "active tasks (2)" in err["message"]
    fake_upstream.on("POST", "/v1/flux-2-pro", Reply(429, json={"detail": "Too many active tasks"},
                                                     headers={"Retry-After": "7"}))
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 429 and resp.headers["Retry-After"] == "7"


@pytest.mark.parametrize("gateway_settings", [{"max_active_tasks": 2}], indirect=True)
async def test_tasks_over_the_active_limit_wait_for_a_slot_instead_of_a_429(  # noqa: ANN001
        gateway_client, fake_upstream, sleeps):
    bfl = install(fake_upstream, steps=2, limit=2)
    answers = await asyncio.gather(post(gateway_client, {"prompt": "a fox", "n": 3}),
                                   post(gateway_client, {"prompt": "a hare", "n": 2}))
    assert [a.status for a in answers] == [200, 200], [await a.text() for a in answers]
    assert [len((await a.json())["data"]) for a in answers] == [3, 2]
    # Five tasks, never more than two at once, and none refused.
    assert len(bfl.creates()) == 5 and bfl.max_active == 2 and bfl.active == 0


async def test_kontext_max_runs_at_most_its_own_six_at_once(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream, steps=2)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "flux-kontext-max", "n": 9})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 9
    assert len(bfl.creates()) == 9 and bfl.max_active_of == {"flux-kontext-max": 6}


async def test_validation_errors_are_400s_naming_the_field(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", "safety_tolerance": 9})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "safety_tolerance"
    assert err["message"] == ("black-forest-labs error: safety_tolerance: Input should be less than or equal to 5")


async def test_a_missing_key_is_bfls_403(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={"x-portkey-provider": "black-forest-labs"})
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == "black-forest-labs error: Not authenticated"


async def test_malformed_polls_are_502s(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream)
    fake_upstream.on("GET", "/v1/get_result", Reply(json={"status": "Exploded"}))
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_provider_response" and "Exploded" in err["message"]


async def test_transient_poll_errors_are_retried(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream)
    getter = bfl._getter
    fake_upstream.on("GET", "/v1/get_result", Reply(503, json={"detail": "Service unavailable"}),
                     Reply(429, json={"detail": "slow down"}), getter)
    resp = await post(gateway_client, {"prompt": "a fox", "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    assert len(bfl.polls()) == 4


# -- the polling URL's host ------------------------------------------------------------------------

async def test_a_polling_url_on_a_foreign_host_is_not_followed(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    other = await FakeUpstream().start()
    try:
        bfl = install(fake_upstream)
        other.on("GET", "/v1/get_result", Reply(json={"id": "x", "status": "Ready",
                                                       "result": {"sample": "https://evil.example/x.png"}}))
        for base in (other.url, "https://evil.example", "http://api.us1.bfl.ai"):
            bfl.polling_base = base
            resp = await post(gateway_client, {"prompt": "a fox", "response_format": "b64_json"})
            assert resp.status == 200, await resp.text()
        # Every poll was built on the base URL; the other host heard nothing, the key went nowhere else.
        assert other.requests == []
        assert len(bfl.polls()) == 6 and all(p.path == "/v1/get_result" for p in bfl.polls())
    finally:
        await other.close()


# -- waiting, timeouts and disconnects -------------------------------------------------------------

async def test_client_disconnect_stops_polling(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream, never=True)
    task = asyncio.ensure_future(post(gateway_client, {"prompt": "a fox"}))
    await eventually(lambda: len(bfl.polls()) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    settled = len(bfl.polls())
    await asyncio.sleep(0.2)
    assert len(bfl.polls()) == settled


async def test_request_timeout_ends_the_wait(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream, never=True)
    resp = await post(gateway_client, {"prompt": "a fox"}, {"x-portkey-request-timeout": "200"})
    assert resp.status == 408
    settled = len(bfl.polls())
    await asyncio.sleep(0.2)
    assert settled >= 1 and len(bfl.polls()) == settled


@pytest.mark.parametrize("gateway_settings", [{"max_wait": 0.05}], indirect=True)
async def test_max_wait_is_a_504(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, never=True)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 504
    err = (await resp.json())["error"]
    assert err["code"] == "task_timeout" and "within 0.05 s" in err["message"]


# -- regions, virtual keys, passthrough -----------------------------------------------------------

async def test_a_virtual_key_with_a_region_goes_to_the_regional_host(gateway_client, fake_upstream,  # noqa: ANN001
                                                                     sleeps):  # noqa: ANN001
    bfl = install(fake_upstream, prefixes=("", "/eu", "/us"))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={"x-portkey-virtual-key": "bfl-eu"})
    assert resp.status == 200, await resp.text()
    [create] = bfl.creates()
    assert create.path == "/eu/v1/flux-2-pro" and create.headers["x-key"] == KEY
    assert {p.path for p in bfl.polls()} == {"/eu/v1/get_result"}
    # The stored key goes only where its region says: a request may not send it elsewhere.
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={
        "x-portkey-virtual-key": "bfl-eu", "x-portkey-bfl-region": "us"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "custom_host_not_allowed"
    # With the caller's own key, the header picks the region.
    resp = await post(gateway_client, {"prompt": "a fox"}, {"x-portkey-bfl-region": "us"})
    assert resp.status == 200, await resp.text()
    assert bfl.creates()[-1].path == "/us/v1/flux-2-pro"


async def test_passthrough_reaches_the_native_api_with_the_key(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    bfl = install(fake_upstream, prefixes=("", "/eu"), credits=42)
    resp = await gateway_client.get("/v1/credits", headers=H)
    assert resp.status == 200 and await resp.json() == {"credits": 42.0}
    sent = fake_upstream.requests[-1]
    assert sent.path == "/v1/credits" and sent.headers["x-key"] == KEY and "Authorization" not in sent.headers
    native = {"prompt": "a fox", "width": 1024, "height": 768}
    resp = await gateway_client.post("/v1/flux-2-pro", json=native, headers={"x-portkey-virtual-key": "bfl-eu"})
    assert resp.status == 200
    task = await resp.json()
    assert task["polling_url"].startswith(fake_upstream.url + "/eu/v1/get_result")
    assert bfl.creates()[-1].json() == native and bfl.creates()[-1].path == "/eu/v1/flux-2-pro"
    resp = await gateway_client.get(f"/v1/get_result?id={task['id']}", headers={"x-portkey-virtual-key": "bfl-eu"})
    assert resp.status == 200 and (await resp.json())["status"] == "Pending"


@pytest.mark.parametrize(("gateway_settings", "named"), [
    ({"providers": {"black-forest-labs": {"max_wait": 0}}}, "max_wait"),
    ({"providers": {"black-forest-labs": {"region_urls": {"eu": "ftp://api.eu.bfl.ai"}}}}, "region_urls.eu"),
    ({"providers": {"black-forest-labs": {"region_urls": {"asia": "https://api.asia.bfl.ai"}}}}, "asia"),
])
def test_settings_are_checked_at_start_up(request, gateway_settings, named):  # noqa: ANN001
    with pytest.raises(StartupError, match=named):
        request.getfixturevalue("gateway_app")


@pytest.mark.parametrize("gateway_settings", [{}])
def test_default_base_url_and_delivery_hosts(gateway_app, app_services):  # noqa: ANN001
    provider = app_services.registry.providers["black-forest-labs"]
    assert provider.base_url == "https://api.bfl.ai"
    assert provider.settings.region_urls.eu == "https://api.eu.bfl.ai"
    assert provider.image_hosts == ("delivery-*.bfl.ai", "delivery.*.bfl.ai", "bfldeliveryprod.blob.core.windows.net")
