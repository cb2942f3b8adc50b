"""The OpenAI provider plugin against a fake of OpenAI's documented images API."""
from __future__ import annotations

import base64
import gzip
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

import gateway_openai
from gateway.testing import Reply, make_app, services_of
from gateway.testing.provider_contract import ProviderContract

H = {"x-portkey-provider": "openai", "Authorization": "Bearer sk-openai-1"}


@pytest.mark.gateway_entrypoints
def test_plugin_is_installed(gateway_services):  # noqa: ANN001
    assert "openai" in gateway_services.registry.providers
    gateway_bin = Path(sys.executable).with_name("gateway")
    out = subprocess.run([str(gateway_bin), "plugins"], capture_output=True, text=True, check=True).stdout
    assert "openai  gateway-openai " + gateway_openai.__version__ in out
    assert "gateway_register_providers" in out


@pytest.mark.parametrize(
    ("body", "expect_key"),
    [
        ({"prompt": "a", "model": "dall-e-2", "n": 3, "size": "256x256", "response_format": "b64_json"}, "b64_json"),
        ({"prompt": "a", "model": "dall-e-3", "style": "natural", "quality": "hd"}, "url"),
        ({"prompt": "a", "model": "gpt-image-1", "output_compression": 80, "output_format": "jpeg"}, "b64_json"),
    ],
)
async def test_generations_per_model(gateway_client, fake_upstream, body, expect_key):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json=body, headers=H)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert len(data["data"]) == body.get("n", 1)
    assert expect_key in data["data"][0]
    assert fake_upstream.last.json() == body
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-openai-1"
    assert fake_upstream.last.headers["Content-Type"] == "application/json"


async def test_content_policy_refusal_keeps_openai_code(gateway_client):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "content_policy test"}, headers=H)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["code"] == "content_policy_violation"
    assert body["provider"] == "openai"


async def test_missing_key_is_openais_401(gateway_client):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers={"x-portkey-provider": "openai"})
    assert resp.status == 401
    assert (await resp.json())["error"]["message"].startswith("openai error: You didn't provide an API key")


async def test_organization_and_project_from_headers_and_config(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers={
        **H, "x-portkey-openai-organization": "org-1", "x-portkey-openai-project": "proj-1"})
    assert resp.status == 200
    assert fake_upstream.last.headers["OpenAI-Organization"] == "org-1"
    assert fake_upstream.last.headers["OpenAI-Project"] == "proj-1"
    cfg = msgspec.json.encode({"provider": "openai", "api_key": "sk-cfg", "openai_organization": "org-2"}).decode()
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers={"x-portkey-config": cfg})
    assert resp.status == 200
    assert fake_upstream.last.headers["OpenAI-Organization"] == "org-2"
    assert "OpenAI-Project" not in fake_upstream.last.headers
    bad = msgspec.json.encode({"provider": "openai", "api_key": "k", "openai_organization": 5}).decode()
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers={"x-portkey-config": bad})
    assert resp.status == 400
    assert "$.openai_organization" in (await resp.json())["error"]["message"]


async def test_gzip_error_body_is_decoded_for_the_error_message(gateway_client, fake_upstream):  # noqa: ANN001
    err = {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    fake_upstream.on("POST", "/v1/images/generations", Reply(
        429, body=gzip.compress(msgspec.json.encode(err)), content_type="application/json",
        headers={"Content-Encoding": "gzip", "Retry-After": "3"}))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"},
                                     headers={**H, "Accept-Encoding": "gzip, br"})
    assert resp.status == 429
    body = await resp.json()
    assert body["error"]["message"] == "openai error: Rate limit reached"
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert "gzip" in fake_upstream.last.headers["Accept-Encoding"]


async def test_passthrough_variations_to_openai_path(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/variations", Reply(json={"created": 1, "data": [{"url": "https://x/1.png"}]}))
    resp = await gateway_client.post("/v1/images/variations", data=b"--b\r\n\r\n--b--\r\n",
                                     headers={**H, "Content-Type": "multipart/form-data; boundary=b"})
    assert resp.status == 200
    assert fake_upstream.last.path == "/v1/images/variations"
    assert fake_upstream.last.body == b"--b\r\n\r\n--b--\r\n"


def test_default_base_url_is_openais():
    app = make_app({}, [gateway_openai])
    assert services_of(app).registry.providers["openai"].base_url == "https://api.openai.com/v1"


class TestContract(ProviderContract):
    provider = "openai"
    plugins = [gateway_openai]
    entrypoint = "openai"
    model = "dall-e-3"
    route = ("POST", "/v1/images/generations")
    base_path = "/v1"
    odd_size = "512x512"
    mapped_size = "1024x1024"

    def images_asked(self, rec):  # noqa: ANN001, ANN201
        return rec.json().get("n", 1)

    def answer(self, images, fake, rec):  # noqa: ANN001, ANN201
        if rec.json().get("response_format", "url") == "url":
            data = [{"url": self.serve(fake, img), "revised_prompt": "a lighthouse"} for img in images]
        else:
            data = [{"b64_json": base64.b64encode(img).decode(), "revised_prompt": "a lighthouse"} for img in images]
        return Reply(json={"created": 1700000000, "data": data})

    def error_answer(self, status, message):  # noqa: ANN001, ANN201
        return Reply(status, json={"error": {"message": message, "type": "invalid_request_error", "param": None,
                                             "code": None}})

    def content_policy_answer(self, fake):  # noqa: ANN001, ANN201
        return Reply(400, json={"error": {
            "message": "Your request was rejected as a result of our safety system.",
            "type": "invalid_request_error", "param": None, "code": "content_policy_violation"}})

    def sent_size(self, rec):  # noqa: ANN001, ANN201
        return rec.json()["size"]
