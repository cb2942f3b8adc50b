"""Passthrough: any other /v1 path goes to the provider's API; bytes stream through unchanged."""
from __future__ import annotations

import gzip
import os

import aiohttp
import pytest

from gateway.testing import Reply

H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-client"}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_methods_paths_and_query(gateway_client, fake_upstream, method):  # noqa: ANN001
    fake_upstream.on(method, "/v1/models/fake-hd", Reply(json={"id": "fake-hd"}))
    data = b'{"a": 1}' if method in ("POST", "PUT", "PATCH") else None
    resp = await gateway_client.request(method, "/v1/models/fake-hd?limit=2&after=x", data=data,
                                        headers={**H, "Content-Type": "application/json"})
    assert resp.status == 200
    assert await resp.json() == {"id": "fake-hd"}
    sent = fake_upstream.last
    assert (sent.method, sent.path, sent.query) == (method, "/v1/models/fake-hd", {"limit": "2", "after": "x"})
    assert sent.body == (data or b"")
    assert sent.headers["Authorization"] == "Bearer sk-client"


async def test_binary_in_binary_out(gateway_client, fake_upstream):  # noqa: ANN001
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(3_000_000)
    upload = os.urandom(1_000_000)
    fake_upstream.on("POST", "/v1/v2beta/raw", Reply(body=png, content_type="image/png", chunk_size=65536,
                                                     headers={"finish-reason": "SUCCESS", "seed": "42"}))
    resp = await gateway_client.post(
        "/v1/v2beta/raw", data=upload,
        headers={**H, "Content-Type": "application/octet-stream", "Accept": "image/png",
                 "X-Client-Header": "kept", "x-portkey-trace-id": "tr-1", "Connection": "keep-alive",
                 "X-Forwarded-For": "10.1.2.3"},
    )
    assert resp.status == 200
    assert resp.content_type == "image/png"
    assert resp.headers["finish-reason"] == "SUCCESS" and resp.headers["seed"] == "42"
    assert resp.headers["x-portkey-trace-id"] == "tr-1"
    assert resp.headers["Content-Length"] == str(len(png))
    assert await resp.read() == png
    sent = fake_upstream.last
    assert sent.body == upload
    assert sent.headers["Accept"] == "image/png"
    assert sent.headers["Content-Type"] == "application/octet-stream"
    assert sent.headers["X-Client-Header"] == "kept"
    assert "X-Forwarded-For" not in sent.headers
    assert not [k for k in sent.headers if k.lower().startswith("x-portkey-")]


async def test_multipart_passes_unchanged(gateway_client, fake_upstream):  # noqa: ANN001
    # A native multipart route (images.edits itself is a unified endpoint: tests/test_edits.py).
    fake_upstream.on("POST", "/v1/uploads/form", Reply(json={"created": 1, "data": [{"b64_json": "QQ=="}]}))
    form = aiohttp.FormData()
    form.add_field("prompt", "add a hat")
    form.add_field("model", "gpt-image-1")
    form.add_field("image", b"\x89PNG-image-bytes", filename="cat.png", content_type="image/png")
    resp = await gateway_client.post("/v1/uploads/form", data=form, headers=H)
    assert resp.status == 200
    sent = fake_upstream.last
    ctype = sent.headers["Content-Type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    boundary = ctype.split("boundary=")[1]
    assert boundary.encode() in sent.body
    assert b"\x89PNG-image-bytes" in sent.body and b"add a hat" in sent.body


async def test_provider_errors_relay_as_they_are(gateway_client, fake_upstream):  # noqa: ANN001
    native = b'{"name": "bad_request", "errors": ["height: must be a multiple of 64"]}'
    fake_upstream.on("POST", "/v1/generation/x/text-to-image", Reply(400, body=native, content_type="application/json"))
    resp = await gateway_client.post("/v1/generation/x/text-to-image", data=b"{}", headers={**H, "Content-Type": "application/json"})
    assert resp.status == 400
    assert await resp.read() == native
    assert resp.headers["x-portkey-provider"] == "fake"


async def test_compressed_answer_relayed_compressed(gateway_client, fake_upstream):  # noqa: ANN001
    raw = b'{"data": "' + b"z" * 10000 + b'"}'
    fake_upstream.on("GET", "/v1/files", Reply(body=gzip.compress(raw), content_type="application/json",
                                                headers={"Content-Encoding": "gzip"}))
    resp = await gateway_client.get("/v1/files", headers={**H, "Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await resp.read()) == raw
    assert fake_upstream.last.headers["Accept-Encoding"] == "gzip"


async def test_no_accept_encoding_means_identity_upstream(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/files", Reply(json={"data": []}))
    resp = await gateway_client.get("/v1/files", headers={**H, "Accept-Encoding": ""}, auto_decompress=False)
    assert resp.status == 200
    assert fake_upstream.last.headers["Accept-Encoding"] == "identity"


async def test_configured_key_wins_over_client_authorization(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    cfg = '{"provider": "fake", "api_key": "sk-from-config"}'
    resp = await gateway_client.get("/v1/models", headers={"x-portkey-config": cfg, "Authorization": "Bearer sk-client"})
    assert resp.status == 200
    assert fake_upstream.last.headers["Authorization"] == "Bearer sk-from-config"


async def test_custom_host_header(aiohttp_client, gateway_plugins, fake_upstream):  # noqa: ANN001
    from gateway.app import create_app

    app = create_app({}, plugins=gateway_plugins, load_entrypoints=False)  # default OpenAI base URL
    client = await aiohttp_client(app)
    fake_upstream.on("GET", "/custom/v1/models", Reply(json={"data": ["m"]}))
    resp = await client.get("/v1/models", headers={**H, "x-portkey-custom-host": fake_upstream.url + "/custom/v1"})
    assert resp.status == 200
    assert fake_upstream.last.path == "/custom/v1/models"
    resp = await client.get("/v1/models", headers={**H, "x-portkey-custom-host": "http://169.254.169.254/latest"})
    assert resp.status == 400
    assert "metadata" in (await resp.json())["error"]["message"]


async def test_forward_headers_on_unified_route(gateway_client, fake_upstream):  # noqa: ANN001
    from gateway.testing import fake_provider

    fake_provider.install(fake_upstream)
    resp = await gateway_client.post(
        "/v1/images/generations", json={"prompt": "x"},
        headers={**H, "X-Team": "blue", "X-Other": "no", "x-portkey-forward-headers": "x-team, x-portkey-provider"},
    )
    assert resp.status == 200
    sent = fake_upstream.last.headers
    assert sent["X-Team"] == "blue" and "X-Other" not in sent and "x-portkey-provider" not in sent


async def test_original_bytes_forwarded_and_overrides_reencode(gateway_client, fake_upstream):  # noqa: ANN001
    from gateway.testing import fake_provider

    fake_provider.install(fake_upstream)
    raw = b'{ "prompt" : "keep   my spacing",  "model":"fake-image", "future_param": {"x": [1,2]} }'
    resp = await gateway_client.post("/v1/images/generations", data=raw, headers={**H, "Content-Type": "application/json"})
    assert resp.status == 200
    assert fake_upstream.last.body == raw
    cfg = '{"provider": "fake", "api_key": "sk-c", "override_params": {"model": "fake-hd"}}'
    resp = await gateway_client.post("/v1/images/generations", data=raw,
                                     headers={"x-portkey-config": cfg, "Content-Type": "application/json"})
    assert resp.status == 200
    assert fake_upstream.last.json() == {"prompt": "keep   my spacing", "model": "fake-hd", "future_param": {"x": [1, 2]}}
