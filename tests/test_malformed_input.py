"""Malformed input is a 4xx naming the problem, never a 500: compressed bodies, JSON nested
beyond any stack, configs nested beyond reason, numbers no clock holds, parameters of the
wrong type, and the same from a provider's side (a 502 saying what came back)."""
from __future__ import annotations

import gzip
import zlib

import msgspec
import pytest

from gateway.testing import PNG_1X1, Reply
from gateway.testing import fake_provider

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-test", "Content-Type": "application/json"}
PROMPT = b'{"prompt": "a cat", "response_format": "b64_json"}'


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}, "server": {"max_body_bytes": 1024 * 1024}}


async def error_of(resp, status: int, code: str, param: str | None = None) -> dict:  # noqa: ANN001
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    err = (await resp.json())["error"]
    assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err


@pytest.mark.parametrize(("coding", "encode"), [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b, wbits=-zlib.MAX_WBITS)),  # raw deflate, as some clients send it
    ("gzip, gzip", lambda b: gzip.compress(gzip.compress(b))),
    ("identity", lambda b: b),
])
async def test_a_compressed_json_body_is_decoded(gateway_client, fake_upstream, coding, encode):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post(GEN, data=encode(PROMPT), headers={**H, "Content-Encoding": coding})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json()["prompt"] == "a cat"
    assert "Content-Encoding" not in fake_upstream.last.headers


async def test_a_compressed_edit_form_is_decoded(gateway_client, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    boundary = "b0undary"
    form = (f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na hat\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + PNG_1X1 + f"\r\n--{boundary}--\r\n".encode()
    resp = await gateway_client.post("/v1/images/edits", data=gzip.compress(form), headers={
        "x-portkey-provider": "fake", "Authorization": "Bearer sk-test", "Content-Encoding": "gzip",
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status == 200, await resp.text()
    parts = {part.name: part for part in await fake_upstream.last.form()}
    assert parts["prompt"].data == b"a hat" and parts["image"].data == PNG_1X1


@pytest.mark.parametrize(("ctype", "body"), [
    # A part header line aiohttp's reader refuses (InvalidHeader is not a ValueError).
    ("multipart/form-data; boundary=a b", b'--a b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n'
                                           b"--a b\r\nContent-D"),
    ('multipart/form-data; boundary=""', b"--\r\nContent-Disposit"),
])
async def test_a_malformed_form_is_a_400(gateway_client, fake_upstream, ctype, body):  # noqa: ANN001
    resp = await gateway_client.post("/v1/images/edits", data=body, headers={
        "x-portkey-provider": "fake", "Authorization": "Bearer sk-test", "Content-Type": ctype})
    await error_of(resp, 400, "invalid_multipart")
    assert fake_upstream.requests == []


@pytest.mark.parametrize(("coding", "body", "status", "code"), [
    ("br", b"\x0b\x02\x80{}\x03", 415, "unsupported_content_encoding"),
    ("zstd", b"(\xb5/\xfd", 415, "unsupported_content_encoding"),
    ("gzip", b'{"prompt": "not gzip at all"}', 400, "invalid_content_encoding"),
    ("gzip", gzip.compress(PROMPT)[:-6], 400, "invalid_content_encoding"),  # cut short
    ("gzip, gzip, gzip", PROMPT, 400, "invalid_content_encoding"),
])
async def test_a_body_that_is_not_what_its_encoding_says_is_refused(gateway_client, fake_upstream, coding, body,
                                                                    status, code):  # noqa: ANN001
    resp = await gateway_client.post(GEN, data=body, headers={**H, "Content-Encoding": coding})
    await error_of(resp, status, code, "content-encoding")
    assert fake_upstream.requests == []


async def test_a_compressed_body_stops_at_the_body_limit(gateway_client, fake_upstream):  # noqa: ANN001
    # 4 MiB of prompt in 4 KiB of gzip: decoding stops at server.max_body_bytes (1 MiB here).
    bomb = gzip.compress(b'{"prompt": "' + b"a" * (4 * 1024 * 1024) + b'"}')
    assert len(bomb) < 16 * 1024
    resp = await gateway_client.post(GEN, data=bomb, headers={**H, "Content-Encoding": "gzip"})
    err = await error_of(resp, 413, "payload_too_large")
    assert "once decoded" in err["message"]
    assert fake_upstream.requests == []


async def test_a_passthrough_body_keeps_its_encoding(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/files", Reply(json={"id": "file-1"}))
    body = zlib.compress(b'{"purpose": "vision"}')
    resp = await gateway_client.post("/v1/files", data=body, headers={**H, "Content-Encoding": "deflate"})
    assert resp.status == 200, await resp.text()
    # The fake's server decodes what it receives: the compressed bytes, with their coding, arrived.
    sent = fake_upstream.last
    assert sent.headers["Content-Encoding"] == "deflate" and sent.headers["Content-Length"] == str(len(body))
    assert sent.body == b'{"purpose": "vision"}'


@pytest.mark.parametrize("body", [
    b'{"prompt": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    b'{"prompt": "a cat", "extra": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
])
async def test_json_nested_beyond_the_stack_is_a_400(gateway_client, fake_upstream, body):  # noqa: ANN001
    resp = await gateway_client.post(GEN, data=body, headers=H)
    err = await error_of(resp, 400, "invalid_json")
    assert "nested too deeply" in err["message"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize("body", [b'{"prompt": "\xff\xfe caf\xe9"}', b'{"prom\xffpt": "a cat"}'])
async def test_json_strings_that_are_not_utf8_are_a_400(gateway_client, fake_upstream, body):  # noqa: ANN001
    resp = await gateway_client.post(GEN, data=body, headers=H)
    err = await error_of(resp, 400, "invalid_json")
    assert "not UTF-8" in err["message"]


def _deep_config(depth: int) -> str:
    leaf = '{"provider": "fake", "api_key": "sk-x"}'
    return '{"strategy": {"mode": "fallback"}, "targets": [' * depth + leaf + "]}" * depth


@pytest.mark.parametrize("depth", [33, 900, 1300])
async def test_a_config_nested_too_deep_is_a_400(gateway_client, fake_upstream, depth):  # noqa: ANN001
    resp = await gateway_client.post(GEN, data=PROMPT, headers={"x-portkey-config": _deep_config(depth),
                                                                  "Content-Type": "application/json"})
    err = await error_of(resp, 400, "invalid_config", "x-portkey-config")
    assert "nested" in err["message"]
    assert fake_upstream.requests == []


async def test_a_config_32_deep_still_routes(gateway_client, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post(GEN, data=PROMPT, headers={"x-portkey-config": _deep_config(32),
                                                                  "Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("size", ["\u00b9\u2070\u00b2\u2074x1024", "1" * 5000 + "x1", "1024x" + "9" * 5000,
                                  "\u0661\u0660\u0662\u0664x\u0661\u0660\u0662\u0664", "0x1024", "1024x", "-5x5"])
async def test_a_size_that_is_not_ascii_digits_is_a_400(gateway_client, fake_upstream, size):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    body = msgspec.json.encode({"prompt": "a cat", "model": "no-such-model", "size": size})
    resp = await gateway_client.post(GEN, data=body, headers=H)
    err = await error_of(resp, 400, "unsupported_parameter_value", "size")
    assert len(err["message"]) < 200
    assert fake_upstream.requests == []


@pytest.mark.parametrize(("param", "value"), [("quality", {"a": 1}), ("quality", ["hd"]), ("style", 5),
                                              ("quality", True)])
async def test_quality_and_style_must_be_strings(gateway_client, fake_upstream, param, value):  # noqa: ANN001
    fake_provider.install(fake_upstream)
    for model in ("fake-hd", "no-such-model"):
        body = msgspec.json.encode({"prompt": "a cat", "model": model, param: value})
        resp = await gateway_client.post(GEN, data=body, headers=H)
        await error_of(resp, 400, "unsupported_parameter_value", param)
    assert fake_upstream.requests == []


@pytest.mark.parametrize("value", ["9" * 400, "100000000000000000000", "86400001", "\u00b9\u00b2", "\u0661\u0660"])
async def test_a_request_timeout_header_out_of_range_is_a_400(gateway_client, fake_upstream, value):  # noqa: ANN001
    resp = await gateway_client.post(GEN, data=PROMPT, headers={**H, "x-portkey-request-timeout": value})
    await error_of(resp, 400, "invalid_request_timeout", "x-portkey-request-timeout")


@pytest.mark.parametrize("value", [10**20, 86_400_001, 0])
async def test_a_config_request_timeout_out_of_range_is_a_400(gateway_client, fake_upstream, value):  # noqa: ANN001
    cfg = msgspec.json.encode({"provider": "fake", "api_key": "sk-x", "request_timeout": value}).decode()
    resp = await gateway_client.post(GEN, data=PROMPT, headers={"x-portkey-config": cfg, "Content-Type": "application/json"})
    err = await error_of(resp, 400, "invalid_config", "x-portkey-config")
    assert "request_timeout" in err["message"]


@pytest.mark.parametrize("body", [b"[" * 10_000 + b"]" * 10_000, b'{"data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
                                  b'{"data": [{"url": "\xff"}]}'])
async def test_a_provider_answer_nested_beyond_the_stack_is_a_502(gateway_client, fake_upstream, body):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(body=body, content_type="application/json"))
    resp = await gateway_client.post(GEN, data=PROMPT, headers=H)
    await error_of(resp, 502, "invalid_provider_response")


async def test_a_provider_error_nested_beyond_the_stack_keeps_its_status(gateway_client, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(status=429, body=b"[" * 10_000 + b"]" * 10_000, content_type="application/json"))
    resp = await gateway_client.post(GEN, data=PROMPT, headers=H)
    assert resp.status == 429, await resp.text()
