"""The ``google`` provider (Gemini API) end to end: the real gateway and the openai SDK against the
fake of the Gemini API, asserting exactly what was sent and what came back."""
from __future__ import annotations

import base64
import io
from typing import Any

import msgspec
import openai
import pytest

from gateway.testing import FakeUpstream, Recorded, Reply, edit_form
from gateway.testing.provider_contract import ProviderContract, make_png
from gateway_google import gemini_api
from gateway_google.testing import KEY, GoogleFake, error_doc, install

GEN = "/v1/images/generations"
EDITS = "/v1/images/edits"
GEMINI = {"x-portkey-provider": "google", "Authorization": f"Bearer {KEY}"}
PRO = "gemini-3-pro-image"
PNGS = [make_png(100 + i) for i in range(4)]


def sdk(server: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=KEY, max_retries=0,
                              default_headers={"x-portkey-provider": "google"})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_openai_sdk_generation_becomes_generate_content(gateway_server, gemini: GoogleFake):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        raw = await client.images.with_raw_response.generate(
            model=PRO, prompt="a lighthouse at dusk", size="1536x1024", response_format="b64_json",
            extra_body={"seed": 42})
    result = raw.parse()
    [sent] = gemini.generations()
    assert sent.path == "/v1beta/models/gemini-3-pro-image:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY and "Authorization" not in sent.headers and sent.query == {}
    assert sent.json() == {"contents": [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}],
                           "generationConfig": {"responseModalities": ["IMAGE"], "seed": 42,
                                                "imageConfig": {"aspectRatio": "3:2", "imageSize": "1K"}}}
    # The fake thinks in an interim image first: the answer carries the final one only.
    assert [base64.b64decode(d.b64_json) for d in result.data] == gemini.served[0]
    doc = msgspec.json.decode(raw.content)
    assert doc["provider"] == "google"
    assert doc["usage"] == {"input_tokens": 9, "output_tokens": 1120 + 180, "total_tokens": 9 + 1120 + 180,
                            "input_tokens_details": {"text_tokens": 9},
                            "output_tokens_details": {"image_tokens": 1120, "reasoning_tokens": 180}}


async def test_n_fans_out_one_call_per_image_in_order(gateway_client, gemini: GoogleFake):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gemini-2.5-flash-image", "n": 3,
                                                "seed": 5, "response_format": "b64_json"}, headers=GEMINI)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    got = [base64.b64decode(d["b64_json"]) for d in doc["data"]]
    sent = gemini.generations()
    assert len(sent) == 3 and len(set(got)) == 3
    by_seed = {r.json()["generationConfig"]["seed"]: r for r in sent}
    assert sorted(by_seed) == [5, 6, 7]
    assert doc["usage"]["output_tokens"] == 3 * 1290  # summed over the calls


async def test_url_answers_are_served_by_the_gateway(gateway_client, gemini: GoogleFake):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"}, headers=GEMINI)
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["data"][0]["url"]
    image = await gateway_client.get("/" + url.split("://", 1)[1].partition("/")[2])
    assert image.status == 200 and image.headers["Content-Type"] == "image/png"
    assert await image.read() == gemini.served[0][0]
    assert gemini.generations()[0].path == "/v1beta/models/gemini-3.1-flash-image:generateContent"


async def test_edits_send_the_images_as_inline_data(gateway_server, gemini: GoogleFake):  # noqa: ANN001
    async with sdk(gateway_server) as client:
        result = await client.images.edit(
            model=PRO, prompt="the cat from the first in the room of the second", size="1024x1024",
            image=[(f"in{i}.png", io.BytesIO(data), "image/png") for i, data in enumerate(PNGS[:2])],
            response_format="b64_json", extra_body={"image_size": "2K"})
    assert base64.b64decode(result.data[0].b64_json) == gemini.served[0][0]
    body = gemini.generations()[0].json()
    assert body["contents"] == [{"role": "user", "parts": [
        {"text": "the cat from the first in the room of the second"},
        {"inlineData": {"mimeType": "image/png", "data": b64(PNGS[0])}},
        {"inlineData": {"mimeType": "image/png", "data": b64(PNGS[1])}}]}]
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "2K"}


async def test_an_edit_n_fans_out_and_a_mask_is_refused(gateway_client, gemini: GoogleFake):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(PNGS[0], n="2", seed="9", model=PRO), headers=GEMINI)
    assert resp.status == 200, await resp.text()
    assert sorted(r.json()["generationConfig"]["seed"] for r in gemini.generations()) == [9, 10]
    resp = await gateway_client.post(EDITS, data=edit_form(PNGS[0], mask=PNGS[1], model=PRO), headers=GEMINI)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "mask"
    assert len(gemini.generations()) == 2


@pytest.mark.parametrize(("prompt", "status", "code", "said"), [
    ("[block-prompt] a fox", 400, "content_policy_violation", "the prompt was blocked (PROHIBITED_CONTENT)"),
    ("[image-safety] a fox", 400, "content_policy_violation", "the image was blocked (IMAGE_SAFETY): Unable to show"),
    ("[text-only] a fox", 502, "invalid_provider_response",
     "no image in the answer (finishReason STOP; the model said: 'I can describe it instead: a lighthouse.')"),
    ("[no-image] a fox", 502, "invalid_provider_response", "no image in the answer (finishReason NO_IMAGE)"),
])
async def test_blocks_and_answers_without_an_image(gateway_client, gemini, prompt, status, code, said):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": prompt}, headers=GEMINI)
    assert resp.status == status, await resp.text()
    doc = await resp.json()
    assert doc["error"]["code"] == code and said in doc["error"]["message"] and doc["provider"] == "google"
    assert "data" not in doc


async def test_errors_keep_googles_status_and_retry_info(gateway_client, fake_upstream: FakeUpstream,  # noqa: ANN001
                                                         gemini: GoogleFake):
    doc = error_doc(429, "Resource has been exhausted (e.g. check quota).")
    doc["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    fake_upstream.on("POST", "/v1beta/models/gemini-3.1-flash-image:generateContent", Reply(429, json=doc))
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=GEMINI)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    err = (await resp.json())["error"]
    assert (err["code"], err["message"]) == ("resource_exhausted",
                                             "google error: Resource has been exhausted (e.g. check quota).")


async def test_a_wrong_key_is_googles_400_and_no_key_is_a_401_before_sending(gateway_client,  # noqa: ANN001
                                                                           gemini: GoogleFake):
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"},
                                     headers={**GEMINI, "Authorization": "Bearer AIza-wrong-key-123456"})
    assert resp.status == 400
    assert "API key not valid" in (await resp.json())["error"]["message"]
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={"x-portkey-provider": "google"})
    assert resp.status == 401
    assert len(gemini.generations()) == 1


async def test_strict_mode_refuses_a_ratio_the_model_lacks(gateway_client, gemini: GoogleFake):  # noqa: ANN001
    body = {"prompt": "a fox", "model": PRO, "size": "1024x4096"}
    resp = await gateway_client.post(GEN, json=body, headers={**GEMINI, "x-portkey-strict-params": "true"})
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "size"
    resp = await gateway_client.post(GEN, json=body, headers=GEMINI)
    assert resp.status == 200
    assert resp.headers["x-portkey-adjusted-params"] == "size=1024x4096->9:16"
    assert gemini.generations()[0].json()["generationConfig"]["imageConfig"]["aspectRatio"] == "9:16"


async def test_a_virtual_key_holds_the_gemini_key(gateway_client, gemini: GoogleFake):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={"x-portkey-virtual-key": "gemini-prod"})
    assert resp.status == 200, await resp.text()
    assert gemini.generations()[0].headers["x-goog-api-key"] == KEY


async def test_passthrough_reaches_v1beta_with_the_key_in_a_header(gateway_client,  # noqa: ANN001
                                                                    fake_upstream: FakeUpstream):
    fake_upstream.on("GET", "/v1beta/models", Reply(json={"models": [{"name": "models/gemini-3-pro-image"}]}))
    resp = await gateway_client.get("/v1/models?pageSize=5", headers=GEMINI)
    assert resp.status == 200
    assert (await resp.json())["models"][0]["name"] == "models/gemini-3-pro-image"
    sent = fake_upstream.last
    assert sent.path == "/v1beta/models" and sent.query == {"pageSize": "5"}
    assert sent.headers["x-goog-api-key"] == KEY and "Authorization" not in sent.headers


async def test_passthrough_generate_content_as_the_sdk_sends_it(gateway_client, gemini: GoogleFake):  # noqa: ANN001
    body = {"contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "4:5"}}}
    resp = await gateway_client.post("/v1/v1beta/models/gemini-3-pro-image:generateContent", json=body,
                                     headers=GEMINI)
    assert resp.status == 200, await resp.text()
    parts = (await resp.json())["candidates"][0]["content"]["parts"]
    assert {"text": "Here is the image."} in parts
    assert gemini.generations()[0].json() == body


class TestContract(ProviderContract):
    provider = "google"
    plugins = [gemini_api]
    entrypoint = "google"
    model = PRO
    route = ("POST", "/v1beta/models/gemini-3-pro-image:generateContent")
    base_path = "/v1beta"
    odd_size = "1200x1000"
    mapped_size = "5:4"

    def install_success(self, fake: FakeUpstream, served: list[list[bytes]]) -> None:
        # The faithful fake answers: it checks the key and the body first, and thinks aloud.
        install(fake, key=self.api_key, served=served)

    def images_asked(self, rec: Recorded) -> int:
        return 1

    def answer(self, images: list[bytes], fake: FakeUpstream, rec: Recorded) -> Reply:
        raise AssertionError("install_success answers with the fake")

    def error_answer(self, status: int, message: str) -> Reply:
        return Reply(status, json=error_doc(status, message))

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(json={"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}],
                           "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}})

    def sent_size(self, rec: Recorded) -> str:
        return rec.json()["generationConfig"]["imageConfig"]["aspectRatio"]

    def assert_auth(self, rec: Recorded) -> None:
        assert rec.headers.get("x-goog-api-key") == self.api_key
        assert "Authorization" not in rec.headers and "key" not in rec.query


def test_readme_names_every_declared_model() -> None:
    from pathlib import Path

    from gateway_google.models import FAMILIES, MODELS

    readme = (Path(gemini_api.__file__).parents[1] / "README.md").read_text()
    for model in MODELS:
        assert f"`{model}`" in readme, model
    for pattern, _ in FAMILIES:
        assert f"`{pattern}`" in readme, pattern
