"""Passthrough: Stability's native API through the gateway, bytes both ways."""
from __future__ import annotations

import aiohttp
import msgspec
import pytest

from gateway.sdk import PROXY
from gateway.testing import Reply, make_attempt
from gateway.testing import PNG_1X1
from gateway_stability_ai import testing as fake_api
from gateway_stability_ai.provider import StabilityProvider

H = {"x-portkey-provider": "stability-ai", "Authorization": "Bearer sk-stab-1"}
SDXL_T2I = "/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image"


async def test_forum_recipe_returns_stabilitys_png_bytes(gateway_client, fake_upstream):  # noqa: ANN001
    # The recipe from the forum: Stability's own JSON, Accept: image/png, through the gateway.
    native = {"text_prompts": [{"text": "A lighthouse on a cliff", "weight": 1}], "cfg_scale": 7,
              "height": 1024, "width": 1024, "samples": 1, "steps": 30}
    raw = msgspec.json.encode(native)
    resp = await gateway_client.post(SDXL_T2I, data=raw, headers={
        **H, "Content-Type": "application/json", "Accept": "image/png"})
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "image/png"
    assert await resp.read() == PNG_1X1
    assert resp.headers["Finish-Reason"] == "SUCCESS" and resp.headers["Seed"] == "1000"
    assert resp.headers["x-portkey-provider"] == "stability-ai"
    sent = fake_upstream.last
    assert sent.path == SDXL_T2I
    assert sent.body == raw
    assert sent.headers["Accept"] == "image/png"
    assert sent.headers["Authorization"] == "Bearer sk-stab-1"
    assert not [k for k in sent.headers if k.lower().startswith("x-portkey-")]


async def test_native_v1_errors_relay_unchanged(gateway_client, fake_upstream):  # noqa: ANN001
    native = {"text_prompts": [{"text": "x"}], "samples": 2}
    resp = await gateway_client.post(SDXL_T2I, json=native, headers={**H, "Accept": "image/png"})
    assert resp.status == 400
    doc = await resp.json()
    assert doc["name"] == "invalid_samples" and set(doc) == {"id", "name", "message"}


async def test_v2beta_multipart_passes_through(gateway_client, fake_upstream):  # noqa: ANN001
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("prompt", "a lighthouse")
    form.add_field("model", "sd3.5-flash")
    form.add_field("output_format", "jpeg")
    resp = await gateway_client.post("/v1/v2beta/stable-image/generate/sd3", data=form,
                                     headers={**H, "Accept": "image/*"})
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "image/jpeg"
    assert await resp.read() == fake_api.FORMAT_BYTES["jpeg"]
    assert resp.headers["finish-reason"] == "SUCCESS"
    sent = fake_upstream.last
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    fields = fake_api.parse_form(sent.headers["Content-Type"], sent.body)
    assert fields == {"prompt": (None, b"a lighthouse"), "model": (None, b"sd3.5-flash"),
                      "output_format": (None, b"jpeg")}


@pytest.mark.parametrize(
    ("method", "gateway_path", "upstream_path"),
    [
        ("GET", "/v1/user/balance", "/v1/user/balance"),
        ("GET", "/v1/engines/list", "/v1/engines/list"),
        ("GET", "/v1/v1/engines/list", "/v1/engines/list"),
        ("GET", "/v1/v2beta/results/abc123", "/v2beta/results/abc123"),
        ("POST", "/v1/v2alpha/generation/stable-image/upscale", "/v2alpha/generation/stable-image/upscale"),
    ],
)
async def test_native_paths_map_to_stabilitys_urls(gateway_client, fake_upstream, method, gateway_path,  # noqa: ANN001
                                                   upstream_path):
    fake_upstream.on(method, upstream_path, Reply(json={"ok": True}))
    resp = await gateway_client.request(method, gateway_path + "?x=1", headers=H)
    assert resp.status == 200, await resp.text()
    assert (fake_upstream.last.path, fake_upstream.last.query) == (upstream_path, {"x": "1"})


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("/generation/stable-diffusion-v1-6/text-to-image",
         "https://api.stability.ai/v1/generation/stable-diffusion-v1-6/text-to-image"),
        ("/v2beta/stable-image/generate/core", "https://api.stability.ai/v2beta/stable-image/generate/core"),
        ("/v1/user/account", "https://api.stability.ai/v1/user/account"),
        ("/v2alpha", "https://api.stability.ai/v2alpha"),
        ("/v2betaish/x", "https://api.stability.ai/v1/v2betaish/x"),
    ],
)
def test_proxy_url_against_the_real_base_url(path, url):  # noqa: ANN001
    attempt = make_attempt(StabilityProvider, endpoint=PROXY, method="GET", path=path)
    assert attempt.provider.proxy_url(attempt, path, "") == url
    assert attempt.provider.proxy_url(attempt, path, "a=1") == url + "?a=1"
