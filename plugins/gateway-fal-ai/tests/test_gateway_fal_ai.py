"""The fal.ai provider end to end, against a fake of fal's documented queue API."""
from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import aiohttp
import msgspec
import openai
import pytest

import gateway_fal_ai
from gateway.testing import PNG_1X1, Reply, make_app
from gateway_fal_ai.models import EDIT_MODELS, MODELS
from gateway_fal_ai.testing import black_png, install

#: Where the fake serves the queue (conftest.py puts it in the base URL).
PREFIX = "/queue"
H = {"x-portkey-provider": "fal-ai", "Authorization": "Bearer fal-id:fal-secret"}
KEY = "Key fal-id:fal-secret"


def submits(upstream):  # noqa: ANN001, ANN201
    return [r for r in upstream.requests if r.method == "POST"]


def polls(upstream):  # noqa: ANN001, ANN201
    return [r for r in upstream.requests if r.method == "GET" and r.path.endswith("/status")]


def cancels(upstream):  # noqa: ANN001, ANN201
    return [r for r in upstream.requests if r.method == "PUT"]


async def eventually(check, timeout: float = 3.0) -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def post(client, body, headers=None):  # noqa: ANN001, ANN201
    return await client.post("/v1/images/generations", json=body, headers={**H, **(headers or {})})


# -- submit, poll, read --------------------------------------------------------------------

async def test_flux_dev_submits_to_the_sub_path_polls_the_app_id(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, steps=3)
    body = {"prompt": "a red fox", "model": "fal-ai/flux/dev", "n": 2, "size": "1024x768", "seed": 7,
            "output_format": "png"}
    resp = await post(gateway_client, body)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["provider"] == "fal-ai" and isinstance(doc["created"], int)
    [req] = fal.requests.values()
    assert [d["url"] for d in doc["data"]] == [f"{fake_upstream.url}/media/files/{req.id}/{i}.png" for i in (0, 1)]
    [sent] = submits(fake_upstream)
    assert sent.path == "/queue/fal-ai/flux/dev"
    assert sent.json() == {"prompt": "a red fox", "image_size": {"width": 1024, "height": 768}, "num_images": 2,
                           "seed": 7, "output_format": "png"}
    assert sent.headers["Authorization"] == KEY and sent.headers["Content-Type"] == "application/json"
    # Status and result under the app id, with the base URL's prefix kept; never the sub-path.
    assert [r.path for r in polls(fake_upstream)] == [f"/queue/fal-ai/flux/requests/{req.id}/status"] * 3
    result = [r for r in fake_upstream.requests if r.path == f"/queue/fal-ai/flux/requests/{req.id}"]
    assert len(result) == 1 and result[0].headers["Authorization"] == KEY
    assert fal.misrouted == [] and cancels(fake_upstream) == []
    assert sleeps == [0.5, 0.75, 1.125]


async def test_the_fake_refuses_polls_on_the_sub_path(gateway_client, fake_upstream):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX)
    auth = {"Authorization": KEY}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake_upstream.url}/queue/fal-ai/flux/dev", json={"prompt": "x"},
                                headers=auth) as resp:
            queued = await resp.json()
        assert queued["status_url"] == f"{fake_upstream.url}/queue/fal-ai/flux/requests/{queued['request_id']}/status"
        wrong = f"{fake_upstream.url}/queue/fal-ai/flux/dev/requests/{queued['request_id']}/status"
        async with session.get(wrong, headers=auth) as resp:
            assert resp.status == 404
        async with session.get(queued["status_url"], headers=auth) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "IN_QUEUE"
        async with session.get(queued["status_url"]) as resp:
            assert resp.status == 401
    assert fal.misrouted == [f"/queue/fal-ai/flux/dev/requests/{queued['request_id']}/status"]


async def test_urls_in_fals_answers_are_not_followed(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, answer_base="https://collector.example/steal")
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux/schnell"})
    assert resp.status == 200, await resp.text()
    assert all(r.path.startswith("/queue/") or r.path.startswith("/media/") for r in fake_upstream.requests)


async def test_ultra_and_seedream_bodies(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux-pro/v1.1-ultra", "size": "1536x1024",
                                       "raw": True})
    assert resp.status == 200, await resp.text()
    assert submits(fake_upstream)[-1].json() == {"prompt": "a fox", "aspect_ratio": "3:2", "raw": True}
    assert polls(fake_upstream)[-1].path.startswith("/queue/fal-ai/flux-pro/requests/")
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/bytedance/seedream/v4/text-to-image",
                                       "n": 6, "size": "2048x2048", "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 6
    assert submits(fake_upstream)[-1].json() == {"prompt": "a fox", "image_size": {"width": 2048, "height": 2048},
                                                 "num_images": 6}
    assert polls(fake_upstream)[-1].path.startswith("/queue/fal-ai/bytedance/requests/")


async def test_flux2_pro_fans_out_with_seeds_moved_on(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux-2-pro", "n": 3, "seed": 5,
                                       "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    got = [base64.b64decode(d["b64_json"]) for d in (await resp.json())["data"]]
    assert sorted(s.json()["seed"] for s in submits(fake_upstream)) == [5, 6, 7]
    assert all("num_images" not in s.json() for s in submits(fake_upstream))
    by_seed = {r.input["seed"]: r for r in fal.requests.values()}
    assert len(got) == 3 and sorted(got) == sorted(img for imgs in fal.served for img in imgs)
    assert len(by_seed) == 3


async def test_an_unknown_model_gets_the_generic_mapping(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/fast-sdxl", "n": 2, "size": "1000x700",
                                       "negative_prompt": "blur"})
    assert resp.status == 200, await resp.text()
    assert [s.json() for s in submits(fake_upstream)] == [
        {"prompt": "a fox", "image_size": {"width": 1000, "height": 700}, "negative_prompt": "blur"}] * 2


# -- response formats -------------------------------------------------------------------------

async def test_b64_json_fetches_the_result_file(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/qwen-image", "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    [item] = (await resp.json())["data"]
    assert base64.b64decode(item["b64_json"]) == fal.served[0][0]
    assert fake_upstream.requests[-1].path.startswith("/media/files/")
    # The CDN is public: the key never goes to it.
    assert "Authorization" not in fake_upstream.requests[-1].headers


async def test_sync_mode_data_uris_become_gateway_urls(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux/dev", "sync_mode": True,
                                       "response_format": "url"})
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["data"][0]["url"]
    assert url.startswith(str(gateway_client.make_url("/v1/images/files/")))
    image = await gateway_client.get("/" + url.split("://", 1)[1].partition("/")[2])
    assert image.status == 200 and await image.read() == fal.served[0][0]
    assert not any(r.path.startswith("/media/") for r in fake_upstream.requests)


# -- content policy and errors ------------------------------------------------------------------

async def test_a_flagged_image_is_dropped(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, steps=1, nsfw={1})
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux/dev", "n": 3,
                                       "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    got = [base64.b64decode(d["b64_json"]) for d in (await resp.json())["data"]]
    assert got == [fal.served[0][0], fal.served[0][2]] and black_png() not in got
    # The caller learns why it got two images of three.
    assert resp.headers["x-portkey-adjusted-params"] == (
        "n=3->2 (1 withheld by fal's safety checker: has_nsfw_concepts)")


async def test_all_images_flagged_is_a_content_policy_violation(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, steps=1, nsfw={0, 1})
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux/dev", "n": 2})
    assert resp.status == 400
    doc = await resp.json()
    assert doc["error"]["code"] == "content_policy_violation" and doc["provider"] == "fal-ai"
    assert "flagged all 2 images" in doc["error"]["message"]


async def test_a_content_checker_refusal_is_the_policy_code(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, steps=1, refuse="forbidden")
    resp = await post(gateway_client, {"prompt": "something forbidden", "model": "fal-ai/ideogram/v3"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "content_policy_violation" and "flagged by a content checker" in err["message"]


async def test_validation_error_is_a_400_naming_the_field(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux/dev", "num_images": 9})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "num_images" and err["code"] == "less_than_equal"
    assert err["message"] == "fal-ai error: num_images: Input should be less than or equal to 4"


async def test_missing_key_is_fals_401(gateway_client, fake_upstream):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX)
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "a fox"},
                                     headers={"x-portkey-provider": "fal-ai"})
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["type"] == "authentication_error" and err["message"].startswith("fal-ai error: Authentication")


async def test_transient_status_errors_are_polled_again(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, steps=1, flaky=2)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 200, await resp.text()
    assert len(polls(fake_upstream)) == 3 and cancels(fake_upstream) == []


async def test_status_errors_that_keep_failing_cancel(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, flaky=10)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "runner_scheduling_failure"
    assert len(polls(fake_upstream)) == 4
    await eventually(lambda: fal.cancelled == list(fal.requests))


# -- cancelling --------------------------------------------------------------------------------

async def test_client_disconnect_cancels_the_request(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, never=True)
    task = asyncio.ensure_future(post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux/dev"}))
    await eventually(lambda: len(polls(fake_upstream)) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: fal.cancelled == list(fal.requests))
    [cancel] = cancels(fake_upstream)
    assert cancel.path == f"/queue/fal-ai/flux/requests/{fal.cancelled[0]}/cancel"
    assert cancel.headers["Authorization"] == KEY and fal.misrouted == []


async def test_request_timeout_cancels_the_request(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, never=True)
    resp = await post(gateway_client, {"prompt": "a fox"}, {"x-portkey-request-timeout": "300"})
    assert resp.status == 408
    # Too short for fal's own start timeout (more than a second): not sent.
    assert "X-Fal-Request-Timeout" not in submits(fake_upstream)[0].headers
    await eventually(lambda: fal.cancelled == list(fal.requests) and len(fal.requests) == 1)


@pytest.mark.parametrize("gateway_settings", [{"max_wait": 0.05}], indirect=True)
async def test_max_wait_cancels_and_is_a_504(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, never=True)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 504
    err = (await resp.json())["error"]
    assert err["code"] == "queue_timeout" and "within 0.05 s" in err["message"]
    await eventually(lambda: fal.cancelled == list(fal.requests))


async def test_a_failed_part_cancels_the_others(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, never=True)
    queue = fal.submitter("fal-ai/flux-2-pro")
    calls = 0

    async def second_fails(request, rec):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        if calls == 2:
            return await fake_upstream.respond(request, Reply(429, json={"detail": "Too many concurrent requests"}))
        return await queue(request, rec)

    fake_upstream.on("POST", "/queue/fal-ai/flux-2-pro", second_fails)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "fal-ai/flux-2-pro", "n": 2})
    assert resp.status == 429
    await eventually(lambda: len(fal.requests) == 1 and fal.cancelled == list(fal.requests))


# -- edits ---------------------------------------------------------------------------------------

async def test_openai_sdk_edit_sends_the_upload_as_a_data_uri(gateway_server, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, steps=1)
    png = PNG_1X1
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key="fal-id:fal-secret",
                                  default_headers={"x-portkey-provider": "fal-ai"}, max_retries=0) as sdk:
        result = await sdk.images.edit(model="fal-ai/flux-pro/kontext", image=("in.png", png, "image/png"),
                                       prompt="add a hat", n=2, response_format="b64_json",
                                       extra_body={"seed": 3})
    [req] = fal.requests.values()
    assert req.endpoint == "fal-ai/flux-pro/kontext" and req.files == {"image_url": [png]}
    assert req.input["num_images"] == 2 and req.input["seed"] == 3
    assert [base64.b64decode(d.b64_json) for d in result.data] == fal.served[0]
    assert polls(fake_upstream)[0].path.startswith("/queue/fal-ai/flux-pro/requests/")


async def test_seedream_edit_takes_several_images(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX, steps=1)
    form = aiohttp.FormData()
    for i in range(3):
        form.add_field("image[]", black_png(), filename=f"in{i}.png", content_type="image/png")
    form.add_field("prompt", "put them together")
    form.add_field("model", "fal-ai/bytedance/seedream/v4/edit")
    form.add_field("size", "auto")
    resp = await gateway_client.post("/v1/images/edits", data=form, headers=H)
    assert resp.status == 200, await resp.text()
    [req] = fal.requests.values()
    assert req.files == {"image_urls": [black_png()] * 3} and req.input["image_size"] == "auto"


# -- passthrough and keys ------------------------------------------------------------------------

async def test_passthrough_reaches_the_queue_with_the_key(gateway_client, fake_upstream):  # noqa: ANN001
    fal = install(fake_upstream, prefix=PREFIX)
    native = {"prompt": "a fox", "image_size": "square_hd"}
    resp = await gateway_client.post("/v1/fal-ai/flux/dev", json=native, headers=H)
    assert resp.status == 200
    queued = await resp.json()
    sent = fake_upstream.requests[0]
    assert (sent.path, sent.json(), sent.headers["Authorization"]) == ("/queue/fal-ai/flux/dev", native, KEY)
    resp = await gateway_client.get(f"/v1/fal-ai/flux/requests/{queued['request_id']}/status", headers=H)
    assert resp.status == 200 and (await resp.json())["status"] == "IN_QUEUE"
    assert fake_upstream.requests[-1].headers["Authorization"] == KEY
    assert list(fal.requests) == [queued["request_id"]]


async def test_virtual_key_and_config_target(aiohttp_client, fake_upstream, monkeypatch, sleeps):  # noqa: ANN001
    monkeypatch.setenv("TEST_FAL_KEY", "vk-id:vk-secret")
    install(fake_upstream, prefix=PREFIX, steps=1)
    app = make_app({"providers": {"fal-ai": {"base_url": fake_upstream.url + PREFIX}},
                    "virtual_keys": {"fal": {"provider": "fal-ai", "api_key_env": "TEST_FAL_KEY"}}},
                   [gateway_fal_ai])
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "a fox", "model": "fal-ai/flux/schnell"},
                             headers={"x-portkey-virtual-key": "fal"})
    assert resp.status == 200, await resp.text()
    assert {r.headers.get("Authorization") for r in fake_upstream.requests if r.path.startswith("/queue/")} == \
        {"Key vk-id:vk-secret"}
    config = {"provider": "fal-ai", "api_key": "cfg-id:cfg-secret", "override_params": {"model": "fal-ai/flux-2-pro"}}
    resp = await client.post("/v1/images/generations", json={"prompt": "a fox"},
                             headers={"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 200, await resp.text()
    last = submits(fake_upstream)[-1]
    assert last.path == "/queue/fal-ai/flux-2-pro" and last.headers["Authorization"] == "Key cfg-id:cfg-secret"


@pytest.mark.parametrize("gateway_settings", [{}])
def test_default_base_url_and_image_hosts(gateway_app, app_services):  # noqa: ANN001
    provider = app_services.registry.providers["fal-ai"]
    assert provider.base_url == "https://queue.fal.run"
    assert provider.image_hosts == ("fal.media", "*.fal.media")


def test_readme_lists_every_model():
    readme = (Path(gateway_fal_ai.__file__).parents[1] / "README.md").read_text()
    missing = [name for name in (*MODELS, *EDIT_MODELS) if f"`{name}`" not in readme]
    assert not missing, missing
