"""Unified generations against the fake of Stability's API: exactly what the gateway sends, and how
answers and errors come back."""
from __future__ import annotations

import base64

import msgspec
import openai
import pytest

import gateway_stability_ai
from gateway.testing import Recorded, Reply, make_app
from gateway.testing import PNG_1X1
from gateway_stability_ai import testing as fake_api

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "stability-ai", "Authorization": "Bearer sk-stab-1"}
SDXL = "stable-diffusion-xl-1024-v1-0"
SD16 = "stable-diffusion-v1-6"


def form(rec: Recorded) -> dict[str, str]:
    fields = fake_api.parse_form(rec.headers["Content-Type"], rec.body)
    assert fields is not None, rec.headers["Content-Type"]
    assert all(filename is None for filename, _ in fields.values())
    return {k: v.decode() for k, (_, v) in fields.items()}


async def test_v1_engine_request_is_stabilitys_json(gateway_client, fake_upstream):  # noqa: ANN001
    body = {"prompt": "a red fox", "model": SDXL, "n": 2, "size": "1344x768", "style": "anime",
            "negative_prompt": "blurry", "seed": 42, "cfg_scale": 9, "steps": 40, "sampler": "K_EULER"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert [base64.b64decode(d["b64_json"]) for d in doc["data"]] == [PNG_1X1, PNG_1X1]
    assert doc["provider"] == "stability-ai" and isinstance(doc["created"], int)
    assert "x-portkey-adjusted-params" not in resp.headers
    sent = fake_upstream.last
    assert (sent.method, sent.path) == ("POST", f"/v1/generation/{SDXL}/text-to-image")
    assert sent.headers["Authorization"] == "Bearer sk-stab-1"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json() == {
        "text_prompts": [{"text": "a red fox", "weight": 1}, {"text": "blurry", "weight": -1}],
        "samples": 2, "width": 1344, "height": 768, "style_preset": "anime",
        "seed": 42, "cfg_scale": 9, "steps": 40, "sampler": "K_EULER",
    }
    assert not [k for k in sent.headers if k.lower().startswith("x-portkey-")]


async def test_v1_without_size_leaves_the_engine_default(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": SD16}, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json() == {"text_prompts": [{"text": "x", "weight": 1}], "samples": 1}


@pytest.mark.parametrize(
    ("model", "size", "sent", "adjusted"),
    [
        (SDXL, "1024x1024", (1024, 1024), None),
        (SDXL, "1792x1024", (1344, 768), "size=1792x1024->1344x768"),
        (SD16, "768x512", (768, 512), None),
        (SD16, "256x256", (512, 512), "size=256x256->512x512"),  # at least 262,144 pixels
        (SD16, "1536x1536", (1024, 1024), "size=1536x1536->1024x1024"),  # at most 1,048,576 pixels
        (SD16, "1000x300", None, "size=1000x300->"),  # sides 320+, multiples of 64 (the fake checks)
    ],
)
async def test_v1_sizes_map_to_each_engines_documented_dimensions(  # noqa: ANN001, PLR0913
        gateway_client, fake_upstream, model, size, sent, adjusted):
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": model, "size": size}, headers=H)
    assert resp.status == 200, await resp.text()
    body = fake_upstream.last.json()
    if sent is not None:
        assert (body["width"], body["height"]) == sent
    header = resp.headers.get("x-portkey-adjusted-params")
    if adjusted is None:
        assert header is None
    else:
        assert header is not None and header.startswith(adjusted)


async def test_v1_size_refused_in_strict_mode(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": SD16, "size": "256x256"},
                                     headers={**H, "x-portkey-strict-params": "true"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "size" and "multiples of 64" in err["message"]
    assert fake_upstream.requests == []


async def test_v2_core_request_is_a_multipart_form(gateway_client, fake_upstream):  # noqa: ANN001
    body = {"prompt": "a lighthouse", "model": "core", "size": "1920x1080", "style": "photographic",
            "negative_prompt": "fog", "seed": 7, "output_format": "webp", "response_format": "url"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last
    assert (sent.method, sent.path) == ("POST", "/v2beta/stable-image/generate/core")
    assert sent.headers["Authorization"] == "Bearer sk-stab-1"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert form(sent) == {"prompt": "a lighthouse", "aspect_ratio": "16:9", "style_preset": "photographic",
                          "negative_prompt": "fog", "seed": "7", "output_format": "webp"}
    url = (await resp.json())["data"][0]["url"]
    image = await gateway_client.get("/" + url.split("://", 1)[1].partition("/")[2])
    assert image.status == 200
    assert image.headers["Content-Type"] == "image/webp"
    assert await image.read() == fake_api.FORMAT_BYTES["webp"]


@pytest.mark.parametrize(
    ("model", "path", "model_field"),
    [
        ("core", "core", None),
        ("stable-image-core", "core", None),
        ("ultra", "ultra", None),
        ("stable-image-ultra", "ultra", None),
        ("sd3", "sd3", None),
        ("sd3.5-large", "sd3", "sd3.5-large"),
        ("sd3.5-large-turbo", "sd3", "sd3.5-large-turbo"),
        ("sd3.5-medium", "sd3", "sd3.5-medium"),
        ("sd3.5-flash", "sd3", "sd3.5-flash"),
        ("sd3-medium", "sd3", "sd3-medium"),
    ],
)
async def test_v2_models_reach_their_endpoint(gateway_client, fake_upstream, model, path, model_field):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": model}, headers=H)
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last
    assert sent.path == f"/v2beta/stable-image/generate/{path}"
    assert form(sent).get("model") == model_field


async def test_default_model_is_core(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == "/v2beta/stable-image/generate/core"
    assert form(fake_upstream.last) == {"prompt": "x"}


async def test_sd3_takes_cfg_scale(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "sd3.5-large", "cfg_scale": 4.5}, headers=H)
    assert resp.status == 200, await resp.text()
    assert form(fake_upstream.last) == {"prompt": "x", "model": "sd3.5-large", "cfg_scale": "4.5"}


async def test_v2_n_is_split_into_calls_with_following_seeds(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "ultra", "n": 3, "seed": 10}, headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 3
    assert sorted(form(r)["seed"] for r in fake_upstream.requests) == ["10", "11", "12"]


async def test_split_seed_wraps_within_stabilitys_range(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "core", "n": 2, "seed": 4294967294}, headers=H)
    assert resp.status == 200, await resp.text()
    assert sorted(form(r)["seed"] for r in fake_upstream.requests) == ["0", "4294967294"]


async def test_other_apis_parameters_are_dropped_or_refused(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "core", "steps": 30, "sampler": "DDIM"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    assert form(fake_upstream.last) == {"prompt": "x"}
    assert resp.headers["x-portkey-adjusted-params"] == "sampler=(dropped); steps=(dropped)"
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": SDXL, "output_format": "jpeg"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert "output_format" not in fake_upstream.last.json()
    assert resp.headers["x-portkey-adjusted-params"] == "output_format=(dropped)"
    before = len(fake_upstream.requests)
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "core", "steps": 30},
                                     headers={**H, "x-portkey-strict-params": "1"})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "steps"
    assert len(fake_upstream.requests) == before


async def test_quality_and_unknown_style_are_dropped(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": SDXL, "quality": "hd", "style": "vivid"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json() == {"text_prompts": [{"text": "x", "weight": 1}], "samples": 1}
    assert resp.headers["x-portkey-adjusted-params"] == "quality=hd->(dropped); style=vivid->(dropped)"


async def test_unlisted_models_go_to_the_v2beta_endpoint_of_their_name(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v2beta/stable-image/generate/next-model",
                     Reply(json={"image": base64.b64encode(PNG_1X1).decode(), "finish_reason": "SUCCESS", "seed": 1}))
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "next-model"}, headers=H)
    assert resp.status == 200, await resp.text()
    # An sd3 variant the gateway does not list: the sd3 endpoint's model field (the fake refuses it).
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "sd3.7-huge"}, headers=H)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].startswith("stability-ai error: model: must be one of")
    assert form(fake_upstream.last)["model"] == "sd3.7-huge"


@pytest.mark.parametrize("model", ["../v1/user/balance", "core?x=1", "a b"])
async def test_a_model_that_cannot_be_a_stability_model_is_a_400(gateway_client, fake_upstream, model):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": model}, headers=H)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "model"
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    ("model", "prompt", "status"),
    [
        (SDXL, f"a cat {fake_api.REFUSE}", 400),  # v1 invalid_prompts
        (SDXL, f"a cat {fake_api.BLUR}", 400),  # v1 artifact CONTENT_FILTERED
        ("core", f"a cat {fake_api.REFUSE}", 403),  # v2beta content_moderation
        ("sd3.5-large", f"a cat {fake_api.BLUR}", 400),  # v2beta finish_reason CONTENT_FILTERED
    ],
)
async def test_content_refusals_have_one_code(gateway_client, model, prompt, status):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": prompt, "model": model}, headers=H)
    assert resp.status == status, await resp.text()
    doc = await resp.json()
    assert doc["error"]["code"] == "content_policy_violation"
    assert doc["error"]["message"].startswith("stability-ai error: ")
    assert doc["provider"] == "stability-ai"


async def test_public_figure_refusal_is_a_content_policy_violation(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v2beta/stable-image/generate/ultra", fake_api.v2_error(
        422, "public_figure", "Our system detected the likeness of a public figure in your image."))
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "ultra"}, headers=H)
    assert resp.status == 422
    err = (await resp.json())["error"]
    assert err["code"] == "content_policy_violation" and "public figure" in err["message"]


async def test_v1_error_artifact_is_a_502(gateway_client):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": f"x {fake_api.FAIL}", "model": SD16}, headers=H)
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "generation_failed" and "finish reason ERROR" in err["message"]


async def test_errors_keep_status_message_and_name(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", f"/v1/generation/{SDXL}/text-to-image", Reply(
        429, json={"id": "e1", "name": "rate_limit_exceeded", "message": "You have exceeded the rate limit"},
        headers={"Retry-After": "60"}))
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": SDXL}, headers=H)
    assert resp.status == 429
    err = (await resp.json())["error"]
    assert err["message"] == "stability-ai error: You have exceeded the rate limit"
    assert err["code"] == "rate_limit_exceeded"
    assert resp.headers["Retry-After"] == "60"
    fake_upstream.on("POST", "/v2beta/stable-image/generate/core",
                     fake_api.v2_error(400, "bad_request", "prompt: too long", "seed: out of range"))
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "core"}, headers=H)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["message"] == "stability-ai error: prompt: too long; seed: out of range"
    assert err["code"] == "bad_request"


async def test_missing_key_is_stabilitys_401(gateway_client):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": SDXL},
                                     headers={"x-portkey-provider": "stability-ai"})
    assert resp.status == 401
    err = (await resp.json())["error"]
    assert err["message"] == "stability-ai error: missing authorization header" and err["code"] == "unauthorized"


async def test_non_json_error_body_keeps_its_text(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v2beta/stable-image/generate/core",
                     Reply(503, body=b"upstream connect error", content_type="text/plain"))
    resp = await gateway_client.post(GEN, json={"prompt": "x"}, headers=H)
    assert resp.status == 503
    assert (await resp.json())["error"]["message"] == "stability-ai error: HTTP 503: upstream connect error"


@pytest.mark.parametrize(
    ("model", "reply", "what"),
    [
        (SDXL, Reply(json={"artifacts": [{"seed": 1, "finishReason": "SUCCESS"}]}), "no `base64`"),
        (SDXL, Reply(json={"artifacts": []}), "asked for 1 images, got 0"),
        (SDXL, Reply(json={"artifacts": [{"base64": "QQ==", "finishReason": "MAYBE"}]}), "unknown finish reason"),
        ("core", Reply(body=PNG_1X1, content_type="image/png"), "not JSON"),
        ("core", Reply(json={"finish_reason": "SUCCESS"}), "no `image`"),
    ],
)
async def test_malformed_answers_are_502(gateway_client, fake_upstream, model, reply, what):  # noqa: ANN001
    path = f"/v1/generation/{SDXL}/text-to-image" if model == SDXL else "/v2beta/stable-image/generate/core"
    fake_upstream.on("POST", path, reply)
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": model}, headers=H)
    assert resp.status == 502
    err = (await resp.json())["error"]
    assert err["code"] == "invalid_provider_response" and what in err["message"]


async def test_openai_sdk(gateway_server, fake_upstream):  # noqa: ANN001
    client = openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key="sk-stab-sdk", max_retries=0,
                                default_headers={"x-portkey-provider": "stability-ai"})
    async with client:
        one = await client.images.generate(model=SD16, prompt="a fox", size="512x512", n=2,
                                           response_format="b64_json")
        two = await client.images.generate(model="sd3.5-flash", prompt="a fox", size="1024x1536",
                                           extra_body={"seed": 5})
    assert [base64.b64decode(d.b64_json) for d in one.data] == [PNG_1X1, PNG_1X1]
    # No response_format: what Stability gives, base64.
    assert base64.b64decode(two.data[0].b64_json) == PNG_1X1
    v1, v2 = fake_upstream.requests
    assert v1.json() == {"text_prompts": [{"text": "a fox", "weight": 1}], "samples": 2, "width": 512, "height": 512}
    assert v1.headers["Authorization"] == "Bearer sk-stab-sdk"
    assert form(v2) == {"prompt": "a fox", "model": "sd3.5-flash", "aspect_ratio": "2:3", "seed": "5"}


async def test_config_target_with_override_params(gateway_client, fake_upstream):  # noqa: ANN001
    cfg = {"provider": "stability-ai", "api_key": "sk-from-config",
           "override_params": {"model": "sd3.5-medium", "cfg_scale": 4, "style": "cinematic"}}
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": "dall-e-3"},
                                     headers={"x-portkey-config": msgspec.json.encode(cfg).decode()})
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last
    assert sent.headers["Authorization"] == "Bearer sk-from-config"
    assert form(sent) == {"prompt": "x", "model": "sd3.5-medium", "style_preset": "cinematic", "cfg_scale": "4"}


async def test_forwarded_headers_reach_stability(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "x", "model": SDXL}, headers={
        **H, "x-portkey-forward-headers": "Stability-Client-ID, Accept",
        "Stability-Client-ID": "my-app", "Accept": "image/png"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Stability-Client-ID"] == "my-app"
    # The gateway reads JSON: a forwarded Accept cannot change what Stability answers.
    assert fake_upstream.last.headers["Accept"] == "application/json"


async def test_virtual_key_and_custom_host(aiohttp_client, fake_upstream, monkeypatch):  # noqa: ANN001
    monkeypatch.setenv("TEST_STABILITY_KEY", "sk-from-env")
    fake_api.install(fake_upstream)
    # No base_url setting: the default is Stability's own host, replaced per request by the custom host,
    # which the virtual key lists (a stored key goes to no other host a request names).
    app = make_app({"virtual_keys": {"stab": {"provider": "stability-ai", "api_key_env": "TEST_STABILITY_KEY",
                                              "allowed_custom_hosts": [fake_upstream.url]}}},
                   [gateway_stability_ai])
    client = await aiohttp_client(app)
    headers = {"x-portkey-virtual-key": "stab", "x-portkey-custom-host": fake_upstream.url}
    resp = await client.post(GEN, json={"prompt": "x", "model": "sd3.5-large-turbo"}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-from-env"
    resp = await client.get("/v1/user/balance", headers=headers)
    assert resp.status == 404  # the fake has no balance endpoint; its answer is relayed as it is
    assert fake_upstream.last.path == "/v1/user/balance"
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-from-env"
