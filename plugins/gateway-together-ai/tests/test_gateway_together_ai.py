"""The Together AI plugin against a fake of Together's documented images API."""
from __future__ import annotations

import base64

import openai

import gateway_together_ai
from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import ProviderContract
from gateway_together_ai.testing import GENERATIONS as GEN

H = {"x-portkey-provider": "together-ai", "Authorization": "Bearer tg-key"}


async def test_openai_sdk_request_becomes_together_body(gateway_server, fake_upstream):  # noqa: ANN001
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key="tg-key", max_retries=0,
                                  default_headers={"x-portkey-provider": "together-ai"}) as sdk:
        result = await sdk.images.generate(model="black-forest-labs/FLUX.1-schnell", prompt="a fox", n=2,
                                           size="1024x768", response_format="b64_json",
                                           extra_body={"steps": 4, "seed": 11})
    assert [base64.b64decode(d.b64_json)[:8] for d in result.data] == [b"\x89PNG\r\n\x1a\n"] * 2
    assert fake_upstream.last.json() == {"model": "black-forest-labs/FLUX.1-schnell", "prompt": "a fox", "n": 2,
                                         "width": 1024, "height": 768, "response_format": "base64", "steps": 4,
                                         "seed": 11}
    assert fake_upstream.last.headers["Authorization"] == "Bearer tg-key"


async def test_default_model_and_url_answers_handed_on(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"}, headers=H)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["provider"] == "together-ai" and doc["data"][0]["url"].startswith(fake_upstream.url + "/shrt/")
    assert fake_upstream.last.json()["model"] == "black-forest-labs/FLUX.1-schnell"


async def test_pro_model_size_is_fitted_and_n_split(gateway_client, fake_upstream):  # noqa: ANN001
    body = {"prompt": "a fox", "model": "black-forest-labs/FLUX.1.1-pro", "size": "1792x1024", "n": 2}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "size=1792x1024->1440x832"
    sent = [r.json() for r in fake_upstream.requests]
    assert [(b["width"], b["height"], b["n"]) for b in sent] == [(1440, 832, 1)] * 2


async def test_unknown_parameter_is_dropped_and_reported(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "style": "vivid", "user": "u-1"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-portkey-adjusted-params"] == "style=vivid->(dropped)"
    assert set(fake_upstream.last.json()) == {"model", "prompt", "n"}


async def test_passthrough_keeps_togethers_paths(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json=[{"id": "black-forest-labs/FLUX.1-schnell", "type": "image"}]))
    resp = await gateway_client.get("/v1/models", headers=H)
    assert resp.status == 200
    assert (await resp.json())[0]["type"] == "image"
    assert fake_upstream.last.headers["Authorization"] == "Bearer tg-key"


class TestContract(ProviderContract):
    provider = "together-ai"
    plugins = [gateway_together_ai]
    entrypoint = "together-ai"
    model = "black-forest-labs/FLUX.1.1-pro"
    route = ("POST", GEN)
    base_path = "/v1"
    odd_size = "1000x1000"
    mapped_size = "992x992"

    def images_asked(self, rec: Recorded) -> int:
        return rec.json().get("n", 1)

    def answer(self, images: list[bytes], fake: FakeUpstream, rec: Recorded) -> Reply:
        if rec.json().get("response_format") == "url":
            data = [{"index": i, "url": self.serve(fake, img), "type": "url"} for i, img in enumerate(images)]
        else:
            data = [{"index": i, "b64_json": base64.b64encode(img).decode(), "type": "b64_json"}
                    for i, img in enumerate(images)]
        return Reply(json={"id": "img-1", "model": self.model, "object": "list", "data": data})

    def error_answer(self, status: int, message: str) -> Reply:
        return Reply(status, json={"id": "e", "error": {"message": message, "type": "invalid_request_error"}})

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(422, json={"id": "e", "error": {
            "message": "NSFW content detected in the generated image. Try a different prompt.",
            "type": "invalid_request_error"}})

    def sent_size(self, rec: Recorded) -> str:
        body = rec.json()
        return f"{body['width']}x{body['height']}"


def test_readme_names_every_declared_model() -> None:
    from pathlib import Path

    readme = (Path(gateway_together_ai.__file__).parents[1] / "README.md").read_text()
    for model in gateway_together_ai.TogetherProvider.capabilities.models:
        assert f"`{model}`" in readme, model
