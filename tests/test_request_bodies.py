"""Bodies follow the method: a passthrough body is relayed whatever the method, and a
``Content-Length`` never goes upstream without its bytes (a provider waiting for them held a
pooled connection until ``upstream.read_timeout``)."""
from __future__ import annotations

import asyncio

import pytest

from gateway.testing import Reply
from gateway.testing.fuzz import Sent, exchange

H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-client"}


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}, "upstream": {"max_connections": 4}}


@pytest.mark.parametrize("method", ["GET", "OPTIONS", "TRACE", "DELETE", "PROPFIND", "POST"])
async def test_a_body_goes_upstream_with_any_method(gateway_client, fake_upstream, method):  # noqa: ANN001
    fake_upstream.on(method, "/v1/search", Reply(json={"ok": True}))
    resp = await asyncio.wait_for(gateway_client.request(method, "/v1/search", data=b'{"q": "cats"}', headers=H), 5)
    assert resp.status == 200
    sent = fake_upstream.last
    assert (sent.method, sent.body) == (method, b'{"q": "cats"}')
    assert sent.headers["Content-Length"] == "13"


async def test_a_chunked_body_on_get_goes_upstream(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/search", Reply(json={"ok": True}))

    async def chunks():  # noqa: ANN202
        yield b'{"q": '
        yield b'"cats"}'

    resp = await asyncio.wait_for(gateway_client.get("/v1/search", data=chunks(), headers=H), 5)
    assert resp.status == 200
    assert fake_upstream.last.body == b'{"q": "cats"}'


async def test_no_content_length_upstream_without_a_body(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    resp = await gateway_client.get("/v1/models", headers={**H, "Content-Length": "0"})
    assert resp.status == 200
    assert fake_upstream.last.headers.get("Content-Length", "0") == "0"


async def test_bodies_on_get_do_not_starve_the_pool(gateway_client, fake_upstream):  # noqa: ANN001
    # upstream.max_connections = 4: four requests the provider never finished reading held every
    # connection, and the next caller waited for one.
    fake_upstream.on("GET", "/v1/search", Reply(json={"ok": True}))
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    first = [asyncio.create_task(gateway_client.get("/v1/search", data=b'{"q": "x"}', headers=H)) for _ in range(4)]
    try:
        resp = await asyncio.wait_for(gateway_client.get("/v1/models", headers=H), 5)
        assert resp.status == 200
        done = await asyncio.wait_for(asyncio.gather(*first), 5)
        assert [r.status for r in done] == [200] * 4
    finally:
        for task in first:
            task.cancel()


async def test_a_trace_id_that_is_not_utf8_is_a_400_and_the_request_is_logged(gateway_server, fake_upstream,
                                                                               log_capture):  # noqa: ANN001
    sent = Sent("POST", "/v1/images/generations", "trace id")
    for name, value in {**H, "Content-Type": "application/json"}.items():
        sent.header(name, value)
    sent.header("x-portkey-trace-id", b"trace-\xff\xfe")
    sent.body = b'{"prompt": "a cat"}'
    answer = await exchange(gateway_server.port, sent, timeout=5)
    assert answer is not None and answer.status == 400, answer and answer.body
    assert answer.headers["content-type"] == "application/json"
    err = answer.json()["error"]
    assert (err["code"], err["param"]) == ("invalid_header_value", "x-portkey-trace-id")
    # The answer carries a trace id of the gateway's own, and the request has its log line.
    trace_id = answer.headers["x-portkey-trace-id"]
    assert trace_id.isascii() and "trace-" not in trace_id
    lines = log_capture.events("request.finished")
    assert [(line["trace_id"], line["status"]) for line in lines] == [(trace_id, 400)]
    assert fake_upstream.requests == []


@pytest.mark.parametrize("value", [b"t" * 257, b"tab\there", "caf\u00e9".encode()])
async def test_a_trace_id_that_is_not_printable_ascii_is_refused(gateway_server, fake_upstream, value):  # noqa: ANN001
    sent = Sent("GET", "/v1/models", "trace id")
    for name, header in H.items():
        sent.header(name, header)
    sent.header("x-portkey-trace-id", value)
    answer = await exchange(gateway_server.port, sent, timeout=5)
    assert answer is not None and answer.status == 400
    assert answer.json()["error"]["param"] == "x-portkey-trace-id"
    assert fake_upstream.requests == []


async def test_a_printable_trace_id_is_echoed(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    resp = await gateway_client.get("/v1/models", headers={**H, "x-portkey-trace-id": "run-42/step 7"})
    assert resp.status == 200
    assert resp.headers["x-portkey-trace-id"] == "run-42/step 7"
    assert log_capture.events("request.finished")[0]["trace_id"] == "run-42/step 7"


@pytest.mark.parametrize("header", ["x-portkey-metadata", "x-portkey-provider", "Authorization", "X-Client-Header"])
async def test_a_header_that_is_not_utf8_is_a_400_naming_it(gateway_server, fake_upstream, log_capture, header):  # noqa: ANN001
    fake_upstream.on("GET", "/v1/models", Reply(json={"data": []}))
    sent = Sent("GET", "/v1/models", "header bytes")
    for name, value in H.items():
        if name.lower() != header.lower():
            sent.header(name, value)
    sent.header(header, b'{"team": "caf\xe9"}')
    answer = await exchange(gateway_server.port, sent, timeout=5)
    assert answer is not None and answer.status == 400, answer and answer.body
    err = answer.json()["error"]
    assert (err["code"], err["param"]) == ("invalid_header_value", header.lower())
    assert log_capture.events("request.finished")[0]["status"] == 400
    assert fake_upstream.requests == []
