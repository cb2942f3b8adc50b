"""The Segmind provider plugin against a fake of Segmind's documented serverless API."""
from __future__ import annotations

import base64
from typing import Any, ClassVar

import msgspec
import openai
import pytest

import gateway_segmind
from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import ProviderContract
from gateway_segmind.testing import JPEG_1X1, NO_CREDITS_KEY

KEY = "SG_test_0123456789"
H = {"x-portkey-provider": "segmind", "Authorization": f"Bearer {KEY}"}


def assert_segmind_auth(rec: Recorded, key: str = KEY) -> None:
    assert rec.headers["x-api-key"] == key
    assert "Authorization" not in rec.headers
    assert not [name for name in rec.headers if name.lower().startswith("x-portkey-")]


async def generate(client: Any, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return await client.post("/v1/images/generations", json=body, headers=headers or H)


# -- what the gateway sends ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "path", "sent"),
    [
        (  # no model: the default, SDXL 1.0, in the Stable Diffusion dialect
            {"prompt": "a fox", "n": 2, "size": "1024x768", "steps": 30, "negative_prompt": "blurry", "seed": 5,
             "refiner": True},
            "/v1/sdxl1.0-txt2img",
            {"prompt": "a fox", "samples": 2, "img_width": 1024, "img_height": 768, "num_inference_steps": 30,
             "negative_prompt": "blurry", "seed": 5, "refiner": True, "base64": True},
        ),
        (  # Flux.1 Schnell: width/height and steps, no base64
            {"prompt": "a fox", "model": "flux-schnell", "size": "1000x1000", "steps": 4, "sampler_name": "euler"},
            "/v1/flux-schnell",
            {"prompt": "a fox", "samples": 1, "width": 1000, "height": 1000, "steps": 4, "sampler_name": "euler"},
        ),
        (  # Fast Flux.1 Schnell: an aspect ratio, no samples
            {"prompt": "a fox", "model": "fast-flux-schnell", "size": "1792x1024", "steps": 4},
            "/v1/fast-flux-schnell",
            {"prompt": "a fox", "aspect_ratio": "16:9", "steps": 4, "base64": True},
        ),
        (  # the SD 1.5 distillation's sizes
            {"prompt": "a fox", "model": "tinysd1.5-txt2img", "size": "768x512", "n": 4},
            "/v1/tinysd1.5-txt2img",
            {"prompt": "a fox", "samples": 4, "img_width": 768, "img_height": 512, "base64": True},
        ),
    ],
)
async def test_request_per_model(gateway_client, fake_upstream, body, path, sent):  # noqa: ANN001
    resp = await generate(gateway_client, {**body, "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert [base64.b64decode(d["b64_json"]) for d in doc["data"]] == [JPEG_1X1] * body.get("n", 1)
    assert doc["provider"] == "segmind" and isinstance(doc["created"], int)
    rec = fake_upstream.last
    assert (rec.method, rec.path) == ("POST", path)
    assert rec.json() == sent
    assert rec.headers["Content-Type"] == "application/json"
    assert_segmind_auth(rec)


async def test_openai_sdk(gateway_server, fake_upstream):  # noqa: ANN001
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key=KEY, max_retries=0,
                                  default_headers={"x-portkey-provider": "segmind"}) as sdk:
        result = await sdk.images.generate(
            model="sdxl1.0-txt2img", prompt="a lighthouse", n=3, size="1024x1024", response_format="b64_json",
            extra_body={"negative_prompt": "fog", "steps": 25, "scheduler": "UniPC"},
        )
    assert [base64.b64decode(d.b64_json) for d in result.data] == [JPEG_1X1] * 3
    rec = fake_upstream.last
    assert rec.path == "/v1/sdxl1.0-txt2img"
    assert rec.json() == {"prompt": "a lighthouse", "samples": 3, "img_width": 1024, "img_height": 1024,
                          "num_inference_steps": 25, "negative_prompt": "fog", "scheduler": "UniPC", "base64": True}
    assert_segmind_auth(rec)


async def test_n_over_samples_limit_is_split_with_seeds_apart(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "ssd-1b", "n": 6, "seed": 100})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 6
    sent = sorted((r.json() for r in fake_upstream.requests), key=lambda b: b["seed"])
    assert [(b["samples"], b["seed"]) for b in sent] == [(4, 100), (2, 104)]


async def test_unlisted_model_makes_one_image_per_call(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "sd1.5-txt2img", "n": 2, "size": "640x480",
                                           "strength": 1})
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 2
    assert [r.path for r in fake_upstream.requests] == ["/v1/sd1.5-txt2img"] * 2
    assert fake_upstream.last.json() == {"prompt": "a fox", "samples": 1, "img_width": 640, "img_height": 480,
                                         "strength": 1, "base64": True}


async def test_size_is_mapped_to_the_models_limits(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "ssd-1b", "size": "512x512"})
    assert resp.status == 200, await resp.text()
    assert "size=512x512->1024x1024" in resp.headers["x-portkey-adjusted-params"]
    assert (fake_upstream.last.json()["img_width"], fake_upstream.last.json()["img_height"]) == (1024, 1024)
    resp = await generate(gateway_client, {"prompt": "a fox", "size": "4096x1024"})
    assert resp.status == 200, await resp.text()
    # Scaled into the 2048 side limit keeping the 4:1 shape.
    assert (fake_upstream.last.json()["img_width"], fake_upstream.last.json()["img_height"]) == (2048, 512)
    assert "size=4096x1024->2048x512" in resp.headers["x-portkey-adjusted-params"]
    before = len(fake_upstream.requests)
    resp = await generate(gateway_client, {"prompt": "a fox", "size": "4096x1024"},
                          {**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "size"
    assert len(fake_upstream.requests) == before


async def test_openai_style_and_quality_are_reported_dropped(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox", "style": "vivid", "quality": "hd"})
    assert resp.status == 200, await resp.text()
    adjusted = resp.headers["x-portkey-adjusted-params"]
    assert "style=vivid->(dropped)" in adjusted and "quality=hd->(dropped)" in adjusted
    assert set(fake_upstream.last.json()) == {"prompt", "samples", "base64"}


async def test_qr_size_goes_to_segmind_size(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/qrsdxl", Reply(json={"image": base64.b64encode(JPEG_1X1).decode()}))
    resp = await generate(gateway_client, {"prompt": "a maze", "model": "qrsdxl", "qr_text": "https://example.org",
                                           "qr_size": 768, "size": "1024x1024"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json() == {"prompt": "a maze", "samples": 1, "img_width": 1024, "img_height": 1024,
                                         "qr_text": "https://example.org", "size": 768, "base64": True}


async def test_a_model_that_is_not_a_slug_never_reaches_segmind(gateway_client, fake_upstream):  # noqa: ANN001
    for model in ("../get-user-credits", "a/b", "x?y=1"):
        resp = await generate(gateway_client, {"prompt": "a fox", "model": model})
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "model"
    assert fake_upstream.requests == []


async def test_config_key_and_override_params(gateway_client, fake_upstream):  # noqa: ANN001
    cfg = {"provider": "segmind", "api_key": "SG_from_config", "override_params": {"negative_prompt": "text"}}
    resp = await generate(gateway_client, {"prompt": "a fox"},
                          {"x-portkey-config": msgspec.json.encode(cfg).decode()})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json()["negative_prompt"] == "text"
    assert_segmind_auth(fake_upstream.last, "SG_from_config")


# -- what the gateway answers --------------------------------------------------------------

async def test_raw_image_answer_served_as_a_gateway_url(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "flux-schnell", "response_format": "url"})
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["data"][0]["url"]
    assert url.startswith(str(gateway_client.make_url("/v1/images/files/")))
    image = await gateway_client.get("/v1/images/files/" + url.rsplit("/", 1)[1])
    assert image.status == 200
    assert image.headers["Content-Type"] == "image/jpeg"
    assert await image.read() == JPEG_1X1


async def test_octet_stream_image_answer(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/flux-schnell", Reply(body=JPEG_1X1, content_type="application/octet-stream"))
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "flux-schnell", "response_format": "b64_json"})
    assert resp.status == 200, await resp.text()
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) == JPEG_1X1


@pytest.mark.parametrize(
    ("reply", "n", "what"),
    [
        (Reply(json={"status": "Success"}), 1, "no `image`"),
        (Reply(json={"image": "not base64 !"}), 1, "not valid base64"),
        (Reply(json={"image": 42}), 1, "not a base64 string"),
        (Reply(json={"image": base64.b64encode(JPEG_1X1).decode()}), 2, "asked for 2 images, got 1"),
        (Reply(body=b"<html>ok</html>", content_type="text/html"), 1, "not JSON"),
        (Reply(body=b"", content_type="image/jpeg"), 1, "empty image/jpeg"),
        (Reply(body=JPEG_1X1, content_type="image/jpeg"), 2, "asked for 2 images, got one image/jpeg"),
    ],
)
async def test_malformed_answers_are_a_502(gateway_client, fake_upstream, reply, n, what):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/sdxl1.0-txt2img", reply)
    resp = await generate(gateway_client, {"prompt": "a fox", "n": n})
    assert resp.status == 502, await resp.text()
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_provider_response"
    assert what in err["message"] and "segmind" in err["message"]


# -- errors ----------------------------------------------------------------------------------

async def test_not_enough_credits_keeps_406(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox"},
                          {"x-portkey-provider": "segmind", "Authorization": f"Bearer {NO_CREDITS_KEY}"})
    assert resp.status == 406
    doc = await resp.json()
    assert doc["error"]["message"] == "segmind error: Not enough credits"
    assert doc["error"]["code"] == "insufficient_credits"
    assert doc["provider"] == "segmind"


async def test_missing_key_is_segminds_401(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox"}, {"x-portkey-provider": "segmind"})
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["message"] == "segmind error: Unauthorized: x-api-key header missing"
    assert err["code"] == "invalid_api_key"
    assert "x-api-key" not in fake_upstream.last.headers


async def test_segmind_validation_error_is_relayed(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox", "num_inference_steps": 5})
    assert resp.status == 422
    assert (await resp.json())["error"]["message"] == (
        "segmind error: num_inference_steps: value 5 is out of range for sdxl1.0-txt2img")


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        (Reply(422, json={"detail": [{"loc": ["body", "samples"], "msg": "ensure this value is less than 5"}]}),
         422, "segmind error: samples: ensure this value is less than 5"),
        (Reply(504, body=b"<html><head><title>504 Gateway Time-out</title></head><body><h1>504</h1></body></html>",
               content_type="text/html"), 504, "segmind error: 504 Gateway Time-out"),
        (Reply(500, body=b"Internal Server Error", content_type="text/plain"), 500,
         "segmind error: Internal Server Error"),
        (Reply(503, body=b"", content_type="text/plain"), 503, "segmind error: HTTP 503"),
    ],
)
async def test_error_bodies(gateway_client, fake_upstream, reply, status, message):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/sdxl1.0-txt2img", reply)
    resp = await generate(gateway_client, {"prompt": "a fox"})
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/json")
    assert (await resp.json())["error"]["message"] == message


async def test_nsfw_refusal_is_a_content_policy_violation(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "an nsfw scene"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "content_policy_violation"
    assert err["message"].startswith("segmind error: NSFW content detected")


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500, json={"error": "Potential NSFW content was detected in one or more images"}),
        Reply(200, json={"error": "Image blocked by the safety checker"}),
    ],
)
async def test_refusals_under_other_statuses_are_400(gateway_client, fake_upstream, reply):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/sdxl1.0-txt2img", reply)
    resp = await generate(gateway_client, {"prompt": "a fox"})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "content_policy_violation"


async def test_a_plain_500_is_not_a_refusal(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/sdxl1.0-txt2img", Reply(500, json={"error": "CUDA out of memory"}))
    resp = await generate(gateway_client, {"prompt": "a fox"})
    assert resp.status == 500
    err = (await resp.json())["error"]
    assert err["code"] is None and err["message"] == "segmind error: CUDA out of memory"


# -- passthrough ------------------------------------------------------------------------------

async def test_passthrough_relays_raw_image_bytes(gateway_client, fake_upstream):  # noqa: ANN001
    body = msgspec.json.encode({"prompt": "a fox", "samples": 1, "img_width": 512, "img_height": 512})
    resp = await gateway_client.post("/v1/sdxl1.0-txt2img", data=body,
                                     headers={**H, "Content-Type": "application/json"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["x-remaining-credits"] == "9.5"
    assert await resp.read() == JPEG_1X1
    rec = fake_upstream.last
    assert (rec.path, rec.body) == ("/v1/sdxl1.0-txt2img", body)
    assert_segmind_auth(rec)


async def test_passthrough_keeps_segmind_errors_as_they_are(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post("/v1/ssd-1b", json={"prompt": "a fox", "img_width": 512}, headers=H)
    assert resp.status == 422
    assert await resp.json() == {"error": "img_width: value 512 is out of range for ssd-1b"}


async def test_passthrough_paths(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/get-user-credits", Reply(json={"credits": 1.5, "free-credits": 0.0}))
    resp = await gateway_client.get("/v1/get-user-credits?x=1", headers=H)
    assert resp.status == 200 and (await resp.json())["credits"] == 1.5
    assert (fake_upstream.last.path, fake_upstream.last.query) == ("/v1/get-user-credits", {"x": "1"})
    assert_segmind_auth(fake_upstream.last)
    # Segmind's async API lives beside v1: /v1/v2/<model> -> https://api.segmind.com/v2/<model>
    fake_upstream.on("POST", "/v2/flux-schnell", Reply(json={"request_id": "r1", "status": "QUEUED"}))
    resp = await gateway_client.post("/v1/v2/flux-schnell", json={"prompt": "a fox"}, headers=H)
    assert resp.status == 200 and (await resp.json())["request_id"] == "r1"
    assert fake_upstream.last.path == "/v2/flux-schnell"
    assert_segmind_auth(fake_upstream.last)


def test_default_base_url_is_segminds():
    from gateway.testing.harness import make_provider

    # The class the plugin registers, built as the registry builds it (no `[providers.segmind]` settings).
    [registered] = gateway_segmind.gateway_register_providers()
    assert make_provider(registered).base_url == "https://api.segmind.com/v1"


# -- the conformance suite ------------------------------------------------------------------

class TestSegmindContract(ProviderContract):
    provider = "segmind"
    plugins: ClassVar[list[Any]] = [gateway_segmind]
    entrypoint = "segmind"
    model = "sdxl1.0-txt2img"
    route = ("POST", "/v1/sdxl1.0-txt2img")
    base_path = "/v1"
    odd_size = "1000x1001"
    mapped_size = "1000x1000"

    def images_asked(self, rec: Recorded) -> int:
        return rec.json()["samples"]

    def answer(self, images: list[bytes], fake: FakeUpstream, rec: Recorded) -> Reply:
        assert rec.json()["base64"] is True
        encoded = [base64.b64encode(img).decode() for img in images]
        return Reply(json={"image": encoded[0] if len(encoded) == 1 else encoded, "status": "Success"})

    def error_answer(self, status: int, message: str) -> Reply:
        return Reply(status, json={"error": message})

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(400, json={"error": "NSFW content detected. Please try again with a different prompt."})

    def sent_size(self, rec: Recorded) -> str:
        body = rec.json()
        return f"{body['img_width']}x{body['img_height']}"

    def assert_auth(self, rec: Recorded) -> None:
        assert_segmind_auth(rec, self.api_key)


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        ("NSFW content detected. Please try again with a different prompt.", True),
        ("Potential NSFW content was detected in one or more images", True),
        ("Your prompt was flagged by our content moderation system", True),
        ("Image blocked by the safety checker", True),
        ("Inappropriate content in the prompt", True),
        ("safety_tolerance: value 9 is out of range", False),
        ("num_inference_steps: value 5 is out of range for sdxl1.0-txt2img", False),
        ("Not enough credits", False),
        ("CUDA out of memory", False),
    ],
)
def test_content_refusal_messages(message, refusal):  # noqa: ANN001
    from gateway_segmind.errors import is_content_refusal

    assert is_content_refusal(message) is refusal


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"error": "Model is cold, try again"}', "application/json", "Model is cold, try again"),
        (b'{"error": {"message": "nested"}}', "application/json", "nested"),
        (b'{"message": "plain message"}', "text/plain", "plain message"),
        (b'{"unexpected": 1}', "application/json", '{"unexpected": 1}'),
        (b"\xff\xd8\xff\xe0 not text", "image/jpeg", None),
        (b"<html><body><script>x()</script><p>Bad &amp; gateway</p></body></html>", "text/html", "Bad & gateway"),
        (b"   ", "text/plain", None),
    ],
)
def test_error_message_reading(body, content_type, message):  # noqa: ANN001
    from gateway_segmind.errors import error_message

    assert error_message(body, content_type) == message
