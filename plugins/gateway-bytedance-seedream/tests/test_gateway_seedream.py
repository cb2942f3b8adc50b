"""The Seedream plugin end to end: the real gateway (and the openai SDK) against fakes of the Ark
images API in two regions (BytePlus and Volcengine), asserting exactly what was sent; and the
provider conformance suite."""
from __future__ import annotations

import base64
from pathlib import Path

import msgspec
import openai
import pytest

import gateway_bytedance_seedream
from gateway.sdk import IMAGES_GENERATIONS
from gateway.testing import FakeUpstream, Recorded, Reply
from gateway.testing.provider_contract import ProviderContract
from gateway_bytedance_seedream import SeedreamProvider
from gateway_bytedance_seedream.testing import GENERATIONS, KEY, REFUSED_OUTPUT, REFUSED_PROMPT, install

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "bytedance-seedream", "Authorization": f"Bearer {KEY}"}
CN_KEY = "ark-cn-key"
CN_GENERATIONS = "/cn/api/v3/images/generations"
M45 = "seedream-4-5-251128"


@pytest.fixture
def volcengine(fake_upstream):  # noqa: ANN001, ANN201
    return install(fake_upstream, key=CN_KEY, prefix="/cn/api/v3", platform="volcengine")


@pytest.fixture
def gateway_settings(fake_upstream, ark, volcengine):  # noqa: ANN001, ANN201
    return {
        "providers": {"bytedance-seedream": {
            "base_url": fake_upstream.url + "/api/v3",
            "regions": {"ap-southeast-1": fake_upstream.url + "/api/v3",
                        "cn-beijing": fake_upstream.url + "/cn/api/v3"},
        }},
        "virtual_keys": {"seedream-cn": {"provider": "bytedance-seedream", "api_key": CN_KEY, "region": "cn-beijing"}},
    }


async def test_openai_sdk_request_becomes_ark_body(gateway_server, fake_upstream, ark):  # noqa: ANN001
    async with openai.AsyncOpenAI(base_url=str(gateway_server.make_url("/v1")), api_key=KEY, max_retries=0,
                                  default_headers={"x-portkey-provider": "bytedance-seedream"}) as sdk:
        raw = await sdk.images.with_raw_response.generate(
            model=M45, prompt="a fox", size="1024x1024", response_format="b64_json", extra_body={"watermark": False})
    assert raw.headers["x-portkey-adjusted-params"] == "size=1024x1024->1920x1920"
    assert [base64.b64decode(d.b64_json) for d in raw.parse().data] == ark.served
    assert fake_upstream.last.path == GENERATIONS
    assert fake_upstream.last.json() == {"model": M45, "prompt": "a fox", "size": "1920x1920",
                                         "response_format": "b64_json", "watermark": False}
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {KEY}"


async def test_n_fans_out_one_image_per_call(gateway_client, fake_upstream, ark):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "n": 3, "response_format": "b64_json"}, headers=H)
    assert resp.status == 200, await resp.text()
    got = [base64.b64decode(d["b64_json"]) for d in (await resp.json())["data"]]
    assert len(got) == 3 and sorted(got) == sorted(ark.served)
    assert [r.json() for r in fake_upstream.requests] == [{"model": M45, "prompt": "a fox",
                                                           "response_format": "b64_json"}] * 3


async def test_url_answers_get_the_gateways_url_and_watermark_is_left_alone(gateway_client, fake_upstream,
                                                                            ark):  # noqa: ANN001
    # Ark's URLs expire in 24 hours: the answer carries the gateway's own, the image in its store.
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "quality": "4K", "response_format": "url"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    url = doc["data"][0]["url"]
    assert doc["provider"] == "bytedance-seedream" and url.startswith(str(gateway_client.make_url("/v1/images/files/")))
    image = await gateway_client.get(url[url.index("/v1/"):])
    assert image.status == 200 and await image.read() == ark.served[0]
    [create, fetch] = fake_upstream.requests
    assert create.json() == {"model": M45, "prompt": "a fox", "size": "4K", "response_format": "url"}
    assert fetch.method == "GET" and "Authorization" not in fetch.headers


async def test_cached_url_answer_is_kept_in_the_image_store(gateway_client, fake_upstream, ark):  # noqa: ANN001
    config = {"provider": "bytedance-seedream", "api_key": KEY, "cache": {"mode": "simple", "max_age": 60}}
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"},
                                     headers={"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["data"][0]["url"]
    assert url.startswith(str(gateway_client.make_url("/v1/images/files/")))
    image = await gateway_client.get("/" + url.split("://", 1)[1].partition("/")[2])
    assert image.status == 200 and await image.read() == ark.served[0]


async def test_refused_prompt_carries_the_policy_code(gateway_client, ark):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": f"a {REFUSED_PROMPT}"}, headers=H)
    assert resp.status == 400, await resp.text()
    err = (await resp.json())["error"]
    assert err["code"] == "content_policy_violation" and "InputTextSensitiveContentDetected" in err["message"]


async def test_group_generation_keeps_the_images_made(gateway_client, fake_upstream, ark):  # noqa: ANN001
    body = {"prompt": f"three panels, {REFUSED_OUTPUT}", "sequential_image_generation": "auto",
            "sequential_image_generation_options": {"max_images": 3}, "response_format": "b64_json"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert [base64.b64decode(d["b64_json"]) for d in (await resp.json())["data"]] == ark.served
    assert len(ark.served) == 2
    body["sequential_image_generation_options"] = {"max_images": 1}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "content_policy_violation"


async def test_ark_errors_keep_their_status_message_and_code(gateway_client, ark):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "seedream-9-9-991231"}, headers=H)
    assert resp.status == 404
    err = (await resp.json())["error"]
    assert err["code"] == "InvalidEndpointOrModel.NotFound" and "seedream-9-9-991231 does not exist" in err["message"]
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={**H, "Authorization": "Bearer wrong"})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "AuthenticationError"


async def test_region_header_goes_to_volcengine(gateway_client, fake_upstream, volcengine):  # noqa: ANN001
    headers = {**H, "Authorization": f"Bearer {CN_KEY}", "x-portkey-seedream-region": "cn-beijing"}
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == CN_GENERATIONS
    assert fake_upstream.last.json()["model"] == "doubao-seedream-4-5-251128"
    assert base64.b64decode((await resp.json())["data"][0]["b64_json"]) == volcengine.served[0]


async def test_virtual_key_carries_its_region(gateway_client, fake_upstream, volcengine):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={"x-portkey-virtual-key": "seedream-cn"})
    assert resp.status == 200, await resp.text()
    create = fake_upstream.requests[0]  # then the gateway fetches the image for its own URL
    assert create.path == CN_GENERATIONS
    assert create.headers["Authorization"] == f"Bearer {CN_KEY}"
    # The key is sent to its own region only: a request naming another is refused before anything is sent.
    before = len(fake_upstream.requests)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={
        "x-portkey-virtual-key": "seedream-cn", "x-portkey-seedream-region": "ap-southeast-1"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "custom_host_not_allowed" and err["param"] == "region"
    assert len(fake_upstream.requests) == before


async def test_unknown_region_is_a_400_naming_the_known_ones(gateway_client, fake_upstream, ark):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={**H, "x-portkey-seedream-region":
                                                                             "us-east-1"})
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["param"] == "region" and "cn-beijing" in err["message"]
    assert fake_upstream.requests == []


async def test_passthrough_reaches_ark_with_auth(gateway_client, fake_upstream, ark):  # noqa: ANN001
    fake_upstream.on("GET", "/api/v3/models", Reply(json={"data": [{"id": M45}]}))
    resp = await gateway_client.get("/v1/models", headers=H)
    assert resp.status == 200 and (await resp.json())["data"][0]["id"] == M45
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {KEY}"
    assert not [k for k in fake_upstream.last.headers if k.lower().startswith("x-portkey-")]


def test_readme_names_every_declared_family() -> None:
    readme = (Path(gateway_bytedance_seedream.__file__).parents[1] / "README.md").read_text()
    caps = SeedreamProvider.capabilities
    assert IMAGES_GENERATIONS in caps.endpoints
    for pattern, _ in (*caps.families, *caps.edit_families):
        assert f"`{pattern}`" in readme, pattern


class TestContract(ProviderContract):
    provider = "bytedance-seedream"
    plugins = [gateway_bytedance_seedream]
    entrypoint = "bytedance-seedream"
    model = M45
    route = ("POST", GENERATIONS)
    base_path = "/api/v3"
    odd_size = "1024x1024"
    mapped_size = "1920x1920"

    def images_asked(self, rec: Recorded) -> int:
        return 1  # Ark makes one image a call (no group generation asked)

    def answer(self, images: list[bytes], fake: FakeUpstream, rec: Recorded) -> Reply:
        if rec.json().get("response_format", "url") == "url":
            data = [{"url": self.serve(fake, img), "size": "2048x2048"} for img in images]
        else:
            data = [{"b64_json": base64.b64encode(img).decode(), "size": "2048x2048"} for img in images]
        return Reply(json={"model": self.model, "created": 1757469561, "data": data,
                           "usage": {"generated_images": len(data), "output_tokens": 16384, "total_tokens": 16384}})

    def error_answer(self, status: int, message: str) -> Reply:
        return Reply(status, json={"error": {"code": "InvalidParameter", "message": message, "param": "prompt",
                                             "type": "BadRequest"}})

    def content_policy_answer(self, fake: FakeUpstream) -> Reply:
        return Reply(400, json={"error": {"code": "OutputImageSensitiveContentDetected", "param": "", "type":
                                          "BadRequest", "message": "The request failed because the output image may "
                                                                   "contain sensitive information. Request ID: 1"}})

    def sent_size(self, rec: Recorded) -> str:
        return rec.json()["size"]
