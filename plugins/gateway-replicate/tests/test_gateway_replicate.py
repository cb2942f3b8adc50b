"""The Replicate provider against a fake of Replicate's documented predictions API."""
from __future__ import annotations

import asyncio
import base64

import msgspec
import openai
import pytest

from gateway.sdk import StartupError
from gateway.testing import Reply
from gateway.testing.provider_contract import make_png
from gateway_replicate.models import SDXL_VERSION
from gateway_replicate.testing import COMMUNITY_VERSION, NSFW, PROBLEM, install

H = {"x-portkey-provider": "replicate", "Authorization": "Bearer r8_test_key"}
FLUX = "/v1/models/black-forest-labs/flux-schnell/predictions"


def creates(upstream):  # noqa: ANN001, ANN201
    return [r for r in upstream.requests if r.method == "POST" and not r.path.endswith("/cancel")]


def polls(upstream):  # noqa: ANN001, ANN201
    return [r for r in upstream.requests if r.method == "GET" and r.path.startswith("/v1/predictions/")]


async def eventually(check, timeout: float = 3.0) -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def post(client, body, headers=None):  # noqa: ANN001, ANN201
    return await client.post("/v1/images/generations", json=body, headers={**H, **(headers or {})})


# -- the create request per model ---------------------------------------------------------

async def test_flux_schnell_finishes_within_the_sync_wait(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                          gateway_images):
    fake = install(fake_upstream)
    body = {"prompt": "a red fox", "model": "black-forest-labs/flux-schnell", "n": 2, "size": "1920x1080",
            "seed": 7, "output_format": "png", "go_fast": True}
    resp = await post(gateway_client, body)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["provider"] == "replicate" and isinstance(doc["created"], int)
    [pred] = fake.predictions.values()
    # Replicate deletes outputs after an hour: with no response_format the answer carries the
    # gateway's own URLs, serving each output fetched once, in order.
    assert await gateway_images([d["url"] for d in doc["data"]]) == fake.served[0]
    assert "x-portkey-adjusted-params" not in resp.headers
    sent, *fetched = fake_upstream.requests
    assert (sent.method, sent.path) == ("POST", FLUX)
    assert sorted((r.method, r.path) for r in fetched) == [("GET", f"/delivery/{pred.id}/out-{i}.png") for i in (0, 1)]
    assert not [r for r in fetched if "Authorization" in r.headers]  # the key stays with the API host
    assert sent.json() == {"input": {"prompt": "a red fox", "aspect_ratio": "16:9", "num_outputs": 2, "seed": 7,
                                     "output_format": "png", "go_fast": True}}
    assert sent.headers["Authorization"] == "Bearer r8_test_key"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Prefer"] == "wait=60"
    assert sent.headers["Cancel-After"] == "600s"
    assert not [k for k in sent.headers if k.lower().startswith("x-portkey-")]
    assert sleeps == []


async def test_default_model_is_flux_schnell_and_odd_sizes_map_to_the_nearest_ratio(gateway_client, fake_upstream):  # noqa: ANN001
    install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", "size": "1000x1400"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.requests[0].path == FLUX
    assert fake_upstream.requests[0].json()["input"]["aspect_ratio"] == "3:4"
    assert resp.headers["x-portkey-adjusted-params"] == "size=1000x1400->3:4"


async def test_slow_prediction_is_polled_with_backoff(gateway_client, fake_upstream, sleeps, gateway_images):  # noqa: ANN001
    fake = install(fake_upstream, steps=6)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "black-forest-labs/flux-dev"})
    assert resp.status == 200, await resp.text()
    [pred] = fake.predictions.values()
    [item] = (await resp.json())["data"]
    assert await gateway_images([item["url"]]) == fake.served[0]
    # The create, the six polls, then the finished output fetched once.
    assert [(r.method, r.path) for r in fake_upstream.requests] == [
        ("POST", "/v1/models/black-forest-labs/flux-dev/predictions"),
        *[("GET", f"/v1/predictions/{pred.id}")] * 6, ("GET", f"/delivery/{pred.id}/out-0.png")]
    assert "Authorization" not in fake_upstream.requests[-1].headers
    assert all(r.headers["Authorization"] == "Bearer r8_test_key" for r in polls(fake_upstream))
    assert sleeps == [0.5, 0.75, 1.125, 1.6875, 2.0, 2.0]
    assert fake.cancelled == []


async def test_versioned_sdxl_takes_width_height_in_multiples_of_8(gateway_client, fake_upstream):  # noqa: ANN001
    fake = install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "stability-ai/sdxl", "n": 2, "size": "1000x700",
                                       "negative_prompt": "blurry"})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 2
    [sent] = creates(fake_upstream)
    assert sent.path == "/v1/predictions"
    assert sent.json() == {"version": SDXL_VERSION, "input": {"prompt": "a fox", "width": 1000, "height": 704,
                                                               "num_outputs": 2, "negative_prompt": "blurry"}}
    assert resp.headers["x-portkey-adjusted-params"] == "size=1000x700->1000x704"
    assert [p.model for p in fake.predictions.values()] == ["stability-ai/sdxl"]


@pytest.mark.parametrize("model", [f"acme/pixel-art:{COMMUNITY_VERSION}", COMMUNITY_VERSION])
async def test_any_other_model_gets_the_generic_mapping_one_prediction_per_image(gateway_client, fake_upstream,  # noqa: ANN001
                                                                                 model):
    install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", "model": model, "n": 2, "size": "512x640", "seed": 10,
                                       "quality": "hd"})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 2
    sent = sorted((r.json() for r in creates(fake_upstream)), key=lambda b: b["input"]["seed"])
    assert sent == [{"version": COMMUNITY_VERSION, "input": {"prompt": "a fox", "width": 512, "height": 640,
                                                             "seed": seed}} for seed in (10, 11)]
    assert {r.path for r in creates(fake_upstream)} == {"/v1/predictions"}
    assert resp.headers["x-portkey-adjusted-params"] == "quality=hd->(dropped)"


async def test_flux_pro_takes_a_custom_size_and_answers_one_url(gateway_client, fake_upstream,  # noqa: ANN001
                                                                gateway_images):
    fake = install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", "model": "black-forest-labs/flux-1.1-pro", "size": "1000x1500",
                                       "safety_tolerance": 5})
    assert resp.status == 200, await resp.text()
    [pred] = fake.predictions.values()
    assert isinstance(pred.output, str)  # one file URL, not a list: still one image in the answer
    [item] = (await resp.json())["data"]
    assert await gateway_images([item["url"]]) == fake.served[0]
    [fetched] = fake.deliveries()
    assert fetched.path == f"/delivery/{pred.id}/out-0.png" and "Authorization" not in fetched.headers
    assert [r.method for r in fake_upstream.requests] == ["POST", "GET"]
    assert creates(fake_upstream)[0].json() == {"input": {"prompt": "a fox", "aspect_ratio": "custom", "width": 960,
                                                          "height": 1440, "safety_tolerance": 5}}


@pytest.mark.parametrize(("body", "expect"), [
    ({"model": "ideogram-ai/ideogram-v3-turbo", "size": "1024x1024"}, {"resolution": "1024x1024"}),
    ({"model": "ideogram-ai/ideogram-v3-quality", "size": "1792x1024", "style_type": "Design"},
     {"resolution": "1344x768", "style_type": "Design"}),
    ({"model": "recraft-ai/recraft-v3", "size": "1820x1024", "style": "digital_illustration"},
     {"size": "1820x1024", "style": "digital_illustration"}),
    ({"model": "black-forest-labs/flux-1.1-pro-ultra", "size": "2560x1080", "raw": True},
     {"aspect_ratio": "21:9", "raw": True}),
    ({"model": "stability-ai/stable-diffusion-3.5-large", "size": "1024x1024", "cfg": 4.5},
     {"aspect_ratio": "1:1", "cfg": 4.5}),
])
async def test_size_and_style_land_where_each_model_reads_them(gateway_client, fake_upstream, body, expect):  # noqa: ANN001
    install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", **body})
    assert resp.status == 200, await resp.text()
    [sent] = creates(fake_upstream)
    assert sent.path == f"/v1/models/{body['model']}/predictions"
    assert sent.json() == {"input": {"prompt": "a fox", **expect}}


async def test_native_parameters_from_override_params_and_config_key(gateway_client, fake_upstream):  # noqa: ANN001
    install(fake_upstream)
    cfg = {"provider": "replicate", "api_key": "r8_from_config", "override_params": {"output_format": "jpg"}}
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "a fox"},
                                     headers={"x-portkey-config": msgspec.json.encode(cfg).decode()})
    assert resp.status == 200, await resp.text()
    [sent] = creates(fake_upstream)
    assert sent.headers["Authorization"] == "Bearer r8_from_config"
    assert sent.json() == {"input": {"prompt": "a fox", "output_format": "jpg"}}


async def test_b64_json_fetches_the_output_file(gateway_client, fake_upstream):  # noqa: ANN001
    fake = install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", "n": 2, "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    got = [base64.b64decode(d["b64_json"]) for d in (await resp.json())["data"]]
    assert got == fake.served[0]


@pytest.mark.parametrize("status", [404, 410])
async def test_an_output_that_cannot_be_fetched_hands_on_replicates_url_uncached(  # noqa: ANN001
        gateway_client, gateway_services, fake_upstream, gateway_images, status):
    """The output file is gone from replicate.delivery (deleted, as after its hour): the gateway
    cannot keep the image, so the answer hands on Replicate's own URL, a 200 (the prediction
    succeeded and was billed; a 5xx would invite a retry billed again), and it is not cached:
    every later hit would get a URL that no longer serves, instead of a new prediction."""
    fake = install(fake_upstream)
    fake.gone = status
    config = {"provider": "replicate", "api_key": "r8_test_key", "cache": {"mode": "simple", "max_age": 600}}
    headers = {"x-portkey-config": msgspec.json.encode(config).decode()}
    body = {"prompt": "a fox", "response_format": "url"}
    for made in (1, 2):
        resp = await gateway_client.post("/v1/images/generations", json=body, headers=headers)
        assert resp.status == 200, await resp.text()
        assert resp.headers["x-portkey-cache-status"] == "MISS"
        pred = list(fake.predictions.values())[-1]
        assert (await resp.json())["data"] == [{"url": pred.output[0]}]  # the fake's delivery URL
        await gateway_services.drain()
        # One fetch of the new output tried, then its URL handed on.
        assert len(creates(fake_upstream)) == len(fake.deliveries()) == made
        assert fake.deliveries()[-1].path == f"/delivery/{pred.id}/out-0.png"
    # The same request once the file is there: kept and cached, so the MISSes above were the hand-on's.
    fake.gone = None
    urls = []
    for cache_status in ("MISS", "HIT"):
        resp = await gateway_client.post("/v1/images/generations", json=body, headers=headers)
        assert resp.status == 200, await resp.text()
        assert resp.headers["x-portkey-cache-status"] == cache_status
        [item] = (await resp.json())["data"]
        urls.append(item["url"])
        await gateway_services.drain()
    assert await gateway_images(urls) == fake.served[2] * 2
    assert len(creates(fake_upstream)) == len(fake.deliveries()) == 3


async def test_data_uri_output_is_decoded_by_the_gateway(gateway_client, fake_upstream):  # noqa: ANN001
    png = make_png(42)
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    fake_upstream.on("POST", FLUX, Reply(201, json={"id": "p1", "status": "succeeded", "output": [uri]}))
    resp = await post(gateway_client, {"prompt": "a fox", "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) == png


async def test_invalid_model_is_a_400_before_any_upstream_call(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await post(gateway_client, {"prompt": "a fox", "model": "dall-e-3"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "model" and "owner/name" in err["message"]
    assert fake_upstream.requests == []


async def test_openai_sdk(gateway_server, fake_upstream, gateway_images):  # noqa: ANN001
    fake = install(fake_upstream)
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key="r8_sdk",
                                  default_headers={"x-portkey-provider": "replicate"}, max_retries=0) as client:
        result = await client.images.generate(model="black-forest-labs/flux-dev", prompt="a fox", size="1024x1024", n=2)
    # gateway_images reads through a client of the same server the SDK called.
    assert await gateway_images([d.url for d in result.data]) == fake.served[0]
    [pred] = fake.predictions.values()
    assert sorted(r.path for r in fake.deliveries()) == [f"/delivery/{pred.id}/out-{i}.png" for i in (0, 1)]
    assert not [r for r in fake.deliveries() if "Authorization" in r.headers]
    assert len(fake_upstream.requests) == 3  # the create and the two outputs: nothing else
    [sent] = creates(fake_upstream)
    assert sent.headers["Authorization"] == "Bearer r8_sdk"
    assert sent.json() == {"input": {"prompt": "a fox", "aspect_ratio": "1:1", "num_outputs": 2}}


# -- waiting, timeouts and cancelling --------------------------------------------------------

async def test_request_timeout_cancels_the_prediction(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake = install(fake_upstream, never=True)
    resp = await post(gateway_client, {"prompt": "a fox"}, {"x-portkey-request-timeout": "200"})
    assert resp.status == 408
    [sent] = creates(fake_upstream)
    # Too short to wait on the create request: it answers at once, with the id to cancel.
    assert "Prefer" not in sent.headers and sent.headers["Cancel-After"] == "5s"
    await eventually(lambda: fake.cancelled == list(fake.predictions))
    cancel = fake_upstream.requests[-1]
    assert cancel.path.endswith("/cancel") and cancel.headers["Authorization"] == "Bearer r8_test_key"


async def test_sync_wait_stays_inside_the_request_timeout(gateway_client, fake_upstream):  # noqa: ANN001
    install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox"}, {"x-portkey-request-timeout": "10500"})
    assert resp.status == 200, await resp.text()
    sent = creates(fake_upstream)[0]
    assert sent.headers["Prefer"] == "wait=9" and sent.headers["Cancel-After"] == "11s"


async def test_client_disconnect_cancels_the_prediction(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake = install(fake_upstream, never=True)
    task = asyncio.ensure_future(post(gateway_client, {"prompt": "a fox"}))
    await eventually(lambda: len(polls(fake_upstream)) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: fake.cancelled == list(fake.predictions))


async def test_every_parallel_prediction_is_cancelled_when_one_fails(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake = install(fake_upstream, never=True)
    first = True

    async def fail_one(request, rec):  # noqa: ANN001, ANN202
        nonlocal first
        if first:
            first = False
            return await fake_upstream.respond(request, Reply(201, json={"id": "broken", "status": "failed",
                                                                         "error": "CUDA out of memory"}))
        return await fake._creator(None)(request, rec)

    fake_upstream.on("POST", "/v1/predictions", fail_one)
    resp = await post(gateway_client, {"prompt": "a fox", "model": COMMUNITY_VERSION, "n": 3})
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "prediction_failed"
    await eventually(lambda: sorted(fake.cancelled) == sorted(fake.predictions) and len(fake.predictions) == 2)


@pytest.mark.parametrize("gateway_settings", [{"max_wait": 0.05, "sync_wait": 0}], indirect=True)
async def test_max_wait_cancels_and_is_a_504(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake = install(fake_upstream, never=True)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 504
    err = (await resp.json())["error"]
    assert err["code"] == "prediction_timeout" and "within 0.05 s" in err["message"]
    assert "Prefer" not in creates(fake_upstream)[0].headers
    await eventually(lambda: fake.cancelled == list(fake.predictions))


@pytest.mark.parametrize("gateway_settings", [{"providers": {"replicate": {"sync_wait": 61}}}])
def test_settings_are_checked_at_start_up(request, gateway_settings):  # noqa: ANN001
    with pytest.raises(StartupError, match="sync_wait"):
        request.getfixturevalue("gateway_app")


# -- errors -------------------------------------------------------------------------------------

async def test_missing_key_is_replicates_401(gateway_client, fake_upstream):  # noqa: ANN001
    install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox"}, {"Authorization": ""})
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["message"] == "replicate error: You did not pass a valid authentication token"
    assert err["type"] == "authentication_error"


async def test_input_validation_error_keeps_422_detail_and_field(gateway_client, fake_upstream):  # noqa: ANN001
    install(fake_upstream)
    resp = await post(gateway_client, {"prompt": "a fox", "num_inference_steps": 9})
    assert resp.status == 422
    err = (await resp.json())["error"]
    assert err["message"] == "replicate error: input.num_inference_steps: Must be less than or equal to 4"
    assert err["param"] == "num_inference_steps" and err["type"] == "invalid_request_error"


async def test_throttling_keeps_429_and_retry_after(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", FLUX, Reply(429, json={"title": "Request was throttled", "status": 429,
                                                    "detail": "Request was throttled. Expected available in 7 seconds."},
                                         content_type=PROBLEM, headers={"Retry-After": "7"}))
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    assert (await resp.json())["error"]["message"].startswith("replicate error: Request was throttled.")


async def test_failed_prediction_is_a_502_with_its_error(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, steps=2, fail="CUDA out of memory")
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 502
    doc = await resp.json()
    assert doc["error"]["code"] == "prediction_failed" and doc["provider"] == "replicate"
    assert doc["error"]["message"].endswith("failed: CUDA out of memory")


@pytest.mark.parametrize("message", [
    NSFW,
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)",
])
async def test_safety_refusals_are_content_policy_violations(gateway_client, fake_upstream, sleeps, message):  # noqa: ANN001
    install(fake_upstream, steps=1, fail=message)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "content_policy_violation" and err["message"] == f"replicate error: {message}"


async def test_canceled_elsewhere_is_a_502(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", FLUX, Reply(201, json={"id": "p1", "status": "canceled", "error": None}))
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "prediction_canceled"


@pytest.mark.parametrize("reply", [
    Reply(201, body=b"<html>oops</html>", content_type="text/html"),
    Reply(201, json={"id": "p1", "status": "succeeded", "output": None}),
    Reply(201, json={"id": "p1", "status": "succeeded", "output": {"image": 1}}),
    Reply(201, json={"id": "p1", "status": "succeeded", "output": ["not a url"]}),
    Reply(201, json={"id": "p1", "status": "queued"}),
    Reply(201, json={"id": "../../etc", "status": "starting"}),
])
async def test_malformed_answers_are_502(gateway_client, fake_upstream, reply):  # noqa: ANN001
    fake_upstream.on("POST", FLUX, reply)
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 502, await resp.text()
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_provider_response" and "replicate" in err["message"]


async def test_transient_poll_errors_are_retried(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    running = {"id": "p1", "status": "processing", "output": None}
    done = {"id": "p1", "status": "succeeded", "output": ["https://replicate.delivery/xezq/p1/out-0.webp"]}
    fake_upstream.on("POST", FLUX, Reply(201, json=running))
    fake_upstream.on("GET", "/v1/predictions/p1", Reply(503, body=b"busy", content_type="text/plain"),
                     Reply(429, json={"title": "Request was throttled", "status": 429}, content_type=PROBLEM),
                     Reply(json=running), Reply(json=done))
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"] == [{"url": done["output"][0]}]
    assert len(polls(fake_upstream)) == 4


async def test_a_poll_that_keeps_failing_gives_up_and_cancels(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    fake_upstream.on("POST", FLUX, Reply(201, json={"id": "p1", "status": "starting"}))
    fake_upstream.on("GET", "/v1/predictions/p1", Reply(404, json={"title": "Not found", "status": 404,
                                                                    "detail": "Prediction not found"},
                                                       content_type=PROBLEM))
    fake_upstream.on("POST", "/v1/predictions/p1/cancel", Reply(json={"id": "p1", "status": "canceled"}))
    resp = await post(gateway_client, {"prompt": "a fox"})
    assert resp.status == 404
    assert (await resp.json())["error"]["message"] == "replicate error: Prediction not found"
    await eventually(lambda: fake_upstream.requests[-1].path == "/v1/predictions/p1/cancel")


# -- passthrough ------------------------------------------------------------------------------

async def test_passthrough_reaches_the_native_api(gateway_client, fake_upstream):  # noqa: ANN001
    fake = install(fake_upstream)
    native = {"version": COMMUNITY_VERSION, "input": {"prompt": "a fox"}}
    resp = await gateway_client.post("/v1/predictions", json=native, headers={**H, "Prefer": "wait=5"})
    assert resp.status == 201
    pred = await resp.json()
    assert pred["status"] == "succeeded" and pred["output"] == fake.predictions[pred["id"]].output
    sent = fake_upstream.requests[0]
    assert (sent.path, sent.json(), sent.headers["Prefer"]) == ("/v1/predictions", native, "wait=5")
    assert sent.headers["Authorization"] == "Bearer r8_test_key"
    resp = await gateway_client.get(f"/v1/predictions/{pred['id']}", headers=H)
    assert resp.status == 200 and (await resp.json())["id"] == pred["id"]


@pytest.mark.parametrize("gateway_settings", [{}])
def test_default_base_url_is_replicates(gateway_app, app_services):  # noqa: ANN001
    provider = app_services.registry.providers["replicate"]
    assert provider.base_url == "https://api.replicate.com/v1"
    assert provider.image_hosts == ("replicate.delivery", "*.replicate.delivery")
