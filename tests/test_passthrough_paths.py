"""Passthrough paths stay below the provider's base URL.

A dot segment in any encoding (``..``, ``%2e%2e``, ``..%2f``, ``%2f..``, backslashes, encoded
twice), an encoded ``?`` or ``#``, NUL or another control character is a 400 ``invalid_path``
before any provider sees the path.  Requests are written byte for byte: HTTP clients resolve
dot segments before sending, an attacker does not.
"""
from __future__ import annotations

import pytest

from gateway.testing import Reply
from gateway.testing.fuzz import Sent, exchange

H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-client"}


async def raw_get(server, target: str):  # noqa: ANN001, ANN201
    sent = Sent("GET", target, "path")
    for name, value in H.items():
        sent.header(name, value)
    answer = await exchange(server.port, sent, timeout=5)
    assert answer is not None, "no answer"
    return answer


def refused(answer, code: str = "invalid_path") -> str:  # noqa: ANN001
    assert answer.status == 400, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["x-portkey-trace-id"]
    err = answer.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == code, err
    return err["message"]


@pytest.mark.parametrize("target", [
    "/v1/../healthz",
    "/v1/%2e%2e/%2e%2e/admin",
    "/v1/%2E%2E/admin",
    "/v1/.%2e/admin",
    "/v1/..%2fadmin",
    "/v1/..%2Fadmin",
    "/v1/models%2f..%2f..%2fadmin",
    "/v1/x/../../admin",
    "/v1/a/..\\..\\admin",
    "/v1/a%5c..%5c..%5cadmin",
    "/v1/%252e%252e/admin",
    "/v1/%25252e%25252e/admin",
])
async def test_dot_segments_that_leave_the_base_url_are_refused(gateway_server, fake_upstream, target):  # noqa: ANN001
    fake_upstream.on("GET", "/healthz", Reply(json={"ok": True})).on("GET", "/admin", Reply(json={"ok": True}))
    message = refused(await raw_get(gateway_server, target))
    assert "dot segment" in message
    assert fake_upstream.requests == []


@pytest.mark.parametrize("target", ["/v1/./models", "/v1/files/../models"])
async def test_dot_segments_inside_the_base_url_are_refused_too(gateway_server, fake_upstream, target):  # noqa: ANN001
    # No HTTP client sends one (they resolve them first); a provider's own path mapping
    # (Azure's /openai/..., Segmind's /v2/...) would have to be checked again after resolving.
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    refused(await raw_get(gateway_server, target))
    assert fake_upstream.requests == []


@pytest.mark.parametrize("target", [
    "/v1/models%3Fx=1",
    "/v1/models%3fx=1",
    "/v1/models%23frag",
    "/v1/models%00",
    "/v1/models%0d%0aX-Injected:%20yes",
    "/v1/models%09",
    "/v1/models%7F",
    "/v1/models%253F",
])
async def test_encoded_query_fragment_and_control_characters_are_refused(gateway_server, fake_upstream, target):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    message = refused(await raw_get(gateway_server, target))
    assert "control characters" in message
    assert fake_upstream.requests == []


@pytest.mark.parametrize(("target", "path"), [
    ("/v1/models/fake-hd", "/v1/models/fake-hd"),
    ("/v1/files/a..b/..c/d..", "/v1/files/a..b/..c/d.."),
    ("/v1/files/.well-known", "/v1/files/.well-known"),
    ("/v1/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aapplication-inference-profile%2Fabc/invoke",
     "/v1/model/arn:aws:bedrock:us-east-1:1:application-inference-profile/abc/invoke"),
    ("/v1/files/caf%C3%A9", "/v1/files/caf\u00e9"),
])
async def test_ordinary_paths_still_pass(gateway_server, fake_upstream, target, path):  # noqa: ANN001
    fake_upstream.on("GET", path, Reply(json={"ok": True}))
    answer = await raw_get(gateway_server, target)
    assert answer.status == 200, answer.body
    assert fake_upstream.last.path == path
