"""Every error the gateway makes: OpenAI's JSON shape, the right status, no upstream call."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.testing import Reply
from gateway.testing import fake_provider

H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-test", "Content-Type": "application/json"}


def assert_error_shape(body: dict) -> dict:
    assert set(body) <= {"error", "provider"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


async def error_of(resp: aiohttp.ClientResponse, status: int, code: str | None) -> dict:
    """The error body, checked for shape, status and (every error the gateway makes has one) code."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    assert resp.headers["x-portkey-trace-id"]
    err = assert_error_shape(await resp.json())
    assert err["code"] == code, err
    return err


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (b'{"prompt": "x"', "invalid_json", "Malformed JSON"),
        (b"[1, 2]", "invalid_body", "must be a JSON object"),
        (b'"a string"', "invalid_body", "must be a JSON object"),
        (b"{}", "missing_required_parameter", "prompt"),
        (b'{"prompt": "   "}', "missing_required_parameter", "prompt"),
        (b'{"prompt": 5}', "invalid_parameter", "prompt"),
        (b'{"prompt": "x", "n": "two"}', "invalid_parameter", "n"),
        (b"", "invalid_body", "empty"),
    ],
)
async def test_bad_bodies(gateway_client, fake_upstream, body, code, needle):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", data=body, headers=H)
    err = await error_of(resp, 400, code)
    assert needle in err["message"]
    assert fake_upstream.requests == []


async def test_unknown_provider_lists_installed(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-portkey-provider": "fak"})
    err = await error_of(resp, 400, "unknown_provider")
    assert "'fak'" in err["message"] and "did you mean 'fake'" in err["message"]
    assert "installed providers: fake" in err["message"]
    assert fake_upstream.requests == []


async def test_no_provider_at_all(gateway_client):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"})
    err = await error_of(resp, 400, "missing_provider")
    assert "x-portkey-provider" in err["message"]


@pytest.mark.parametrize(
    ("header", "value", "code", "needle"),
    [
        ("x-portkey-config", "{not json", "invalid_config", "not valid JSON"),
        ("x-portkey-config", '{"provider": "fake", "weight": "heavy"}', "invalid_config", "$.weight"),
        ("x-portkey-config", '{"strategy": {"mode": "fallbak"}, "targets": [{"provider": "fake"}]}', "invalid_config", "did you mean 'fallback'"),
        ("x-portkey-config", '{"strategy": {"mode": "fallback"}, "targets": [{"weight": 1}]}', "invalid_config", "$.targets[0]"),
        ("x-portkey-config", '{"strategy": {"mode": "loadbalance"}, "targets": [{"provider": "fake", "weight": 0}]}', "invalid_config", "weight is 0"),
        ("x-portkey-config", '{"provider": "fake", "cache": {"mode": "fuzzy"}}', "invalid_config", "$.cache"),
        ("x-portkey-config", '{"provider": "fake", "retry": {"attempts": 99}}', "invalid_config", "$.retry"),
        ("x-portkey-config", "pc-unknown-id", "unknown_config", "Unknown saved config id"),
        ("x-portkey-config", "[1]", "invalid_config", "expected a JSON object"),
        ("x-portkey-metadata", "{oops", "invalid_metadata", "x-portkey-metadata"),
        ("x-portkey-metadata", '{"a": 1}', "invalid_metadata", "x-portkey-metadata"),
        ("x-portkey-metadata", '["a"]', "invalid_metadata", "x-portkey-metadata"),
        ("x-portkey-request-timeout", "soon", "invalid_request_timeout", "x-portkey-request-timeout"),
        ("x-portkey-request-timeout", "-5", "invalid_request_timeout", "x-portkey-request-timeout"),
    ],
)
async def test_bad_headers(gateway_client, fake_upstream, header, value, code, needle):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, header: value})
    err = await error_of(resp, 400, code)
    assert needle in err["message"]
    assert fake_upstream.requests == []


async def test_unknown_provider_option_in_config(gateway_client, fake_upstream):  # noqa: ANN001
    cfg = '{"provider": "fake", "api_key": "sk-c", "resource_nme": "x"}'
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers={"x-portkey-config": cfg})
    err = await error_of(resp, 400, "invalid_provider_option")
    assert "resource_nme" in err["message"] and "fake" in err["message"]
    assert fake_upstream.requests == []


async def test_unsupported_content_type(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post(
        "/v1/images/generations", data=b"prompt=x", headers={**H, "Content-Type": "application/x-www-form-urlencoded"}
    )
    err = await error_of(resp, 415, "unsupported_content_type")
    assert "application/x-www-form-urlencoded" in err["message"]
    assert fake_upstream.requests == []


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}, "server": {"max_body_bytes": 4096}}


async def test_body_over_limit_is_413(gateway_client, fake_upstream):  # noqa: ANN001
    big = b'{"prompt": "' + b"a" * 5000 + b'"}'
    resp = await gateway_client.post("/v1/images/generations", data=big, headers=H)
    err = await error_of(resp, 413, "payload_too_large")
    assert "4096" in err["message"]
    # passthrough: declared length over the limit, and a chunked body that grows past it
    resp = await gateway_client.post("/v1/images/variations", data=b"x" * 5000, headers=H)
    await error_of(resp, 413, "payload_too_large")

    async def chunks():  # noqa: ANN202
        for _ in range(10):
            yield b"y" * 1000

    fake_upstream.on("POST", "/v1/uploads", Reply(json={"ok": True}))
    resp = await gateway_client.post("/v1/uploads", data=chunks(), headers=H)
    assert resp.status in (413, 502)
    assert all(len(r.body) <= 4096 for r in fake_upstream.requests)


async def test_upstream_unreachable_is_502(aiohttp_client, gateway_plugins):  # noqa: ANN001
    from gateway.app import create_app

    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    app = create_app({"providers": {"fake": {"base_url": f"http://127.0.0.1:{port}/v1"}}}, plugins=gateway_plugins,
                     load_entrypoints=False)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    err = await error_of(resp, 502, "upstream_unreachable")
    assert f"127.0.0.1:{port}" in err["message"]
    assert err["code"] == "upstream_unreachable"


async def test_upstream_reset_before_answer_is_502(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(reset="before"))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    err = await error_of(resp, 502, "upstream_disconnected")
    assert "fake" in err["message"]


async def test_upstream_reset_mid_generation_is_a_502(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    # A generation answer is read whole before the client sees a byte, so a reset is an honest 502.
    body = b'{"created": 1, "data": [{"b64_json": "' + b"A" * 200_000 + b'"}]}'
    fake_upstream.on("POST", "/v1/images/generations", Reply(body=body, content_type="application/json", reset="mid"))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "upstream_reset"
    line = log_capture.events("request.finished")[-1]
    assert line["status"] == 502 and "mid-response" in line["error"]


async def test_upstream_reset_mid_passthrough_breaks_the_client_response(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    body = b"\x89PNG" + b"A" * 200_000
    fake_upstream.on("GET", "/v1/files/big", Reply(body=body, content_type="image/png", reset="mid"))
    resp = await gateway_client.get("/v1/files/big", headers=H)
    assert resp.status == 200  # headers were already relayed
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    await asyncio.sleep(0.05)
    line = log_capture.events("request.finished")[-1]
    assert line["status"] == 502 and "reset" in line["error"]
    assert line["bytes_out"] < len(body)


async def test_provider_error_keeps_status_and_message(gateway_client, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post(
        "/v1/images/generations", json={"prompt": "x", "model": "fake-9"}, headers=H
    )
    body = await resp.json()
    err = await error_of(resp, 404, "model_not_found")
    assert err["message"] == "fake error: The model 'fake-9' does not exist."
    assert err["code"] == "model_not_found" and err["type"] == "invalid_request_error"
    assert body["provider"] == "fake"
    assert resp.headers["x-portkey-provider"] == "fake"


async def test_provider_error_that_is_not_json(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(503, body=b"upstream overloaded", content_type="text/plain"))
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    err = await error_of(resp, 503, None)
    assert err["message"] == "fake error: HTTP 503: upstream overloaded"


async def test_request_timeout_is_408(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}, delay=2))
    resp = await gateway_client.post(
        "/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-portkey-request-timeout": "150"}
    )
    assert resp.status == 408
    assert await resp.json() == {
        "error": {"message": "Request exceeded the timeout sent in the request: 150ms", "type": "timeout_error",
                  "param": None, "code": None}
    }


async def test_config_request_timeout_is_408(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}, delay=2))
    cfg = '{"provider": "fake", "api_key": "sk-c", "request_timeout": 120}'
    resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers={"x-portkey-config": cfg})
    assert resp.status == 408
    assert "120ms" in (await resp.json())["error"]["message"]


async def test_client_disconnect_cancels_upstream_call(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/images/generations", Reply(hang=True))
    task = asyncio.ensure_future(gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=H))
    for _ in range(100):
        if fake_upstream.requests:
            break
        await asyncio.sleep(0.01)
    assert fake_upstream.requests
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        if fake_upstream.cancelled:
            break
        await asyncio.sleep(0.01)
    assert fake_upstream.cancelled == 1
    for _ in range(100):
        if log_capture.events("request.finished"):
            break
        await asyncio.sleep(0.01)
    assert log_capture.events("request.finished")[-1]["status"] == 499


async def test_gateway_key_required_when_configured(aiohttp_client, gateway_plugins, fake_upstream):  # noqa: ANN001
    from gateway.app import create_app

    fake_provider.install(fake_upstream)
    app = create_app(
        {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
         "security": {"gateway_keys": ["gk-one", "gk-two"]}},
        plugins=gateway_plugins, load_entrypoints=False,
    )
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    assert await error_of(resp, 401, "missing_api_key")
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-portkey-api-key": "nope"})
    assert await error_of(resp, 401, "invalid_api_key")
    # A key that is not ASCII is a wrong key like any other (it once was a 500).
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-portkey-api-key": "gk-ünï"})
    assert await error_of(resp, 401, "invalid_api_key")
    assert fake_upstream.requests == []
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers={**H, "x-portkey-api-key": "gk-two"})
    assert resp.status == 200
    assert "gk-two" not in str(fake_upstream.last.headers)


async def test_healthz_and_readyz_need_no_auth(gateway_client):  # noqa: ANN001
    assert (await gateway_client.get("/healthz")).status == 200
    resp = await gateway_client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["status"] == "ready"


async def test_a_bug_is_a_json_500_without_traceback(aiohttp_client, gateway_plugins, fake_upstream, log_capture):  # noqa: ANN001
    from gateway import hookimpl
    from gateway.app import create_app

    class Broken:
        @hookimpl(tryfirst=True)
        def gateway_route(self, ctx):  # noqa: ANN001
            return "not an outcome"  # the core trips over this

    app = create_app({}, plugins=[*gateway_plugins, Broken()], load_entrypoints=False)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    err = await error_of(resp, 500, "internal_error")
    assert err["code"] == "internal_error" and "Traceback" not in await resp.text()
    crashed = log_capture.events("request.crashed")
    assert crashed and crashed[0]["exception"]


async def test_a_silent_provider_is_a_504_after_the_read_timeout(aiohttp_client, fake_upstream, gateway_plugins):  # noqa: ANN001
    """``upstream.read_timeout`` bounds a provider's silence: on the unified route one deadline
    per exchange (504, saying the provider may still be working), on passthrough aiohttp's
    per-read bound (a relay that stops sending is cut)."""
    from gateway.app import create_app

    fake_upstream.on("POST", "/v1/images/generations", Reply(json={"created": 1, "data": []}, delay=2))
    app = create_app({"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                      "upstream": {"read_timeout": 0.3}}, plugins=gateway_plugins, load_entrypoints=False)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=H)
    err = await error_of(resp, 504, "upstream_timeout")
    assert "0.3 s" in err["message"] and "may still be working" in err["message"]
    # Passthrough: the headers never come, so the read bound ends it as a 502.
    fake_upstream.on("GET", "/v1/slow", Reply(json={"ok": True}, delay=2))
    resp = await client.get("/v1/slow", headers=H)
    await error_of(resp, 502, "upstream_error")


async def test_a_path_no_route_serves_is_a_json_404(gateway_client, fake_upstream):  # noqa: ANN001
    for path in ("/nope", "/v2/models", "/%0d%0a", "/", "/images/generations"):
        err = await error_of(await gateway_client.get(path), 404, "not_found")
        assert "/v1/images/generations" in err["message"]
        assert "the API is under /v1" in err["message"]
    assert fake_upstream.requests == []


async def test_a_method_a_route_does_not_take_is_a_json_405_with_allow(gateway_client, fake_upstream):  # noqa: ANN001
    resp = await gateway_client.post("/healthz")
    err = await error_of(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"] and "POST" in err["message"]
