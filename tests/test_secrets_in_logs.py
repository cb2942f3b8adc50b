"""Nothing that looks like a key reaches an answer or a log line as given: a key pasted into a
field that names something is shown by a fingerprint, a key in a custom host's query is
dropped, a provider's error quoting the key it was sent is scrubbed, and a gateway key that
is not ASCII is a 401 like any other wrong key."""
from __future__ import annotations

import msgspec
import pytest
from aiohttp import web

from gateway.redact import fingerprint, is_credential_name, looks_like_a_name, scrub, shown
from gateway.testing import Recorded, Reply, fake_provider

GEN = "/v1/images/generations"
BODY = {"prompt": "a cat"}
KEY = "sk-proj-Zq3vT8mN1pL6xR4kW9sY2bH7cJ5dF0gA"
STORED = "sk-stored-5f3a9c1e7b2d4f60"


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {
        "providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
        "virtual_keys": {"fake-prod": {"provider": "fake", "api_key": STORED}},
        "security": {"gateway_keys": ["gk-test-0123456789"]},
    }


GK = {"x-portkey-api-key": "gk-test-0123456789"}


async def refused_without(resp, log_capture, secret: str, status: int = 400) -> dict:  # noqa: ANN001
    """The answer's error, checked: ``status``, and ``secret`` in neither the answer nor the log."""
    text = await resp.text()
    assert resp.status == status, text
    assert secret not in text
    assert secret not in log_capture.text
    assert log_capture.events("request.finished")
    return msgspec.json.decode(text)["error"]


@pytest.mark.parametrize(("headers", "code"), [
    ({"x-portkey-virtual-key": KEY}, "unknown_virtual_key"),
    ({"x-portkey-provider": KEY, "Authorization": "Bearer sk-own"}, "unknown_provider"),
    ({"x-portkey-config": msgspec.json.encode({"provider": KEY, "api_key": "sk-own"}).decode()}, "unknown_provider"),
    ({"x-portkey-config": msgspec.json.encode({"virtual_key": KEY}).decode()}, "unknown_virtual_key"),
    ({"x-portkey-config": msgspec.json.encode({"strategy": {"mode": "fallback"},
                                                "targets": [{"virtual_key": KEY}]}).decode()}, "unknown_virtual_key"),
    ({"x-portkey-config": KEY}, "unknown_config"),
])
async def test_a_key_in_a_naming_field_is_shown_by_fingerprint(gateway_client, fake_upstream, log_capture,
                                                               headers, code):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json=BODY, headers={**GK, **headers})
    err = await refused_without(resp, log_capture, KEY)
    assert err["code"] == code
    if code != "unknown_config":
        assert fingerprint(KEY) in err["message"]
    assert fake_upstream.requests == []


async def test_a_name_is_still_echoed_with_a_suggestion(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json=BODY, headers={**GK, "x-portkey-virtual-key": "fake-prd"})
    err = await refused_without(resp, log_capture, "never-there")
    assert "'fake-prd'" in err["message"] and "fake-prod" in err["message"]


async def test_a_key_in_a_custom_hosts_query_reaches_no_answer_or_log(gateway_client, fake_upstream,
                                                                      log_capture):  # noqa: ANN001
    # A host the guard refuses, and a host it lets through: neither echoes the query.
    for host in (f"http://10.0.0.7/v1?key={KEY}", f"{fake_upstream.url}/v1?key={KEY}#{KEY}"):
        resp = await gateway_client.post(GEN, json=BODY, headers={
            **GK, "x-portkey-provider": "fake", "Authorization": "Bearer sk-own", "x-portkey-custom-host": host})
        assert resp.status in (400, 502), await resp.text()
        assert KEY not in await resp.text()
    assert KEY not in log_capture.text


async def test_a_provider_error_quoting_the_stored_key_is_scrubbed(gateway_client, fake_upstream,
                                                                   log_capture):  # noqa: ANN001
    async def quote_the_key(request: web.Request, rec: Recorded) -> web.Response:
        sent = rec.headers["Authorization"].removeprefix("Bearer ")
        return fake_provider.error(401, f"Incorrect API key provided: {sent}. Header was: Bearer {sent}",
                                   code="invalid_api_key")

    fake_upstream.on("POST", GEN, quote_the_key)
    resp = await gateway_client.post(GEN, json=BODY, headers={**GK, "x-portkey-virtual-key": "fake-prod"})
    err = await refused_without(resp, log_capture, STORED, status=401)
    assert err["message"] == "fake error: Incorrect API key provided: [redacted]. Header was: Bearer [redacted]"
    assert fake_upstream.last.headers["Authorization"] == f"Bearer {STORED}"


async def test_a_provider_error_quoting_the_callers_own_key_is_scrubbed_too(gateway_client, fake_upstream,
                                                                            log_capture):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(status=403, json={"error": {"message": f"key {KEY} is disabled"}}))
    resp = await gateway_client.post(GEN, json=BODY, headers={
        **GK, "x-portkey-provider": "fake", "Authorization": f"Bearer {KEY}"})
    err = await refused_without(resp, log_capture, KEY, status=403)
    assert err["message"] == "fake error: key [redacted] is disabled"


@pytest.mark.parametrize("key", ["gk-t\u00e9st-0123456789", "\u30ad\u30fc", "gk-test-0123456789\u00a0"])
async def test_a_gateway_key_that_is_not_ascii_is_a_401(gateway_client, fake_upstream, log_capture, key):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json=BODY, headers={
        "x-portkey-api-key": key, "x-portkey-provider": "fake", "Authorization": "Bearer sk-own"})
    assert resp.status == 401, await resp.text()
    assert log_capture.events("request.finished")[0]["status"] == 401
    assert fake_upstream.requests == []


@pytest.mark.parametrize("value", ["openai-prod", "pc-abc123", "@team/openai", "fake", "bedrock-us-east-1",
                                   "vk_2024_images"])
def test_names_read_as_names(value: str) -> None:
    assert looks_like_a_name(value)
    assert shown(value) == repr(value)


@pytest.mark.parametrize("value", [KEY, "AKIAIOSFODNN7EXAMPLE", "r8_" + "x9" * 18, "key-0123456789abcdef0123456789abcdef",
                                   "AIzaSyA-1234567890abcdefgh", "0123456789abcdef0123456789abcdef",
                                   "abcdefghijklmnopqrstuvwxyzABCDEF", "Bearer sk-x", "has space", "x" * 60])
def test_keys_do_not(value: str) -> None:
    assert not looks_like_a_name(value)
    assert value not in shown(value) and fingerprint(value) in shown(value)


def test_scrub_leaves_short_values_and_replaces_every_occurrence() -> None:
    assert scrub(f"{KEY} and {KEY}", [KEY, None, "", "and"]) == "[redacted] and [redacted]"


@pytest.mark.parametrize(("name", "credential"), [
    ("api_key", True), ("aws_secret_access_key", True), ("azure_ad_token", True), ("Authorization", True),
    ("vertex_service_account_json", True), ("x-goog-api-key", True), ("resource_name", False), ("region", False),
    ("vertex_project_id", False),
])
def test_credential_names(name: str, credential: bool) -> None:
    assert is_credential_name(name) is credential
