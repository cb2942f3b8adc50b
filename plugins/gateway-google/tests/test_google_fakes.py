"""The fakes refuse what Google refuses (so a gateway test passing against them means something)."""
from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from gateway.testing import PNG_1X1, FakeUpstream
from gateway_google.testing import (
    ACCESS_TOKEN,
    KEY,
    _key_pair,
    install,
    install_token_endpoint,
    install_vertex,
    vertex_path,
)

PRO = "/v1beta/models/gemini-3-pro-image:generateContent"
FLASH_25 = "/v1beta/models/gemini-2.5-flash-image:generateContent"
PNG = base64.b64encode(PNG_1X1).decode()


def body(*parts: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "a fox"}, *parts]}],
            "generationConfig": {"responseModalities": ["IMAGE"], **config}}


async def post(url: str, json: Any = None, headers: dict[str, str] | None = None, data: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(url, json=json, data=data,
                                                                headers=headers or {}) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(("path", "doc", "said"), [
    (PRO, body(imageConfig={"aspectRatio": "1:8"}), "Unsupported aspect ratio"),
    (PRO, body(imageConfig={"imageSize": "1k"}), "Unsupported image size"),
    (FLASH_25, body(imageConfig={"imageSize": "1K"}), "does not support image_size"),
    (PRO, body(imageConfig={"personGeneration": "ALLOW_ALL"}), 'Unknown name "personGeneration"'),
    (PRO, body(candidateCount=2), "Multiple candidates"),
    (PRO, body(seed="7"), "seed"),
    (PRO, {**body(), "n": 2}, 'Unknown name "n"'),
    (PRO, body({"inlineData": {"mimeType": "image/png", "data": "not base64!"}}), "Base64 decoding failed"),
    (PRO, body({"inlineData": {"mimeType": "image/jpeg", "data": PNG}}), "not image/jpeg"),
    (PRO, body({"inlineData": {"mimeType": "image/gif", "data": PNG}}), "Unsupported MIME type"),
    (FLASH_25, body(*[{"inlineData": {"mimeType": "image/png", "data": PNG}}] * 4), "Too many images"),
    (PRO, {"contents": []}, "contents is not specified"),
    (PRO, body(responseModalities=["image"]), "response_modalities"),
])
async def test_the_gemini_fake_refuses_bad_bodies(fake_upstream: FakeUpstream, path, doc, said):  # noqa: ANN001
    install(fake_upstream)
    status, answer = await post(fake_upstream.url + path, doc, {"x-goog-api-key": KEY})
    assert status == 400 and said in answer["error"]["message"]
    assert answer["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(("headers", "query", "status"), [
    ({}, "", 403), ({"x-goog-api-key": "wrong"}, "", 400), ({"x-goog-api-key": KEY}, f"?key={KEY}", 400),
    ({"Authorization": f"Bearer {KEY}"}, "", 403),
])
async def test_the_gemini_fake_wants_the_key_in_its_header(fake_upstream: FakeUpstream, headers, query,  # noqa: ANN001
                                                           status):
    install(fake_upstream)
    got, _ = await post(fake_upstream.url + PRO + query, body(), headers)
    assert got == status


async def test_the_vertex_fake_wants_a_token_it_knows_and_takes_vertex_fields(fake_upstream: FakeUpstream):
    install_vertex(fake_upstream)
    url = fake_upstream.url + vertex_path("gemini-3-pro-image")
    doc = body(imageConfig={"personGeneration": "ALLOW_ALL", "imageOutputOptions": {"mimeType": "image/jpeg"}})
    assert (await post(url, doc, {"Authorization": "Bearer ya29.unknown"}))[0] == 401
    assert (await post(url, doc, {"x-goog-api-key": KEY}))[0] == 401
    status, answer = await post(url, doc, {"Authorization": f"Bearer {ACCESS_TOKEN}"})
    assert status == 200 and answer["candidates"][0]["finishReason"] == "STOP"


def assertion(claims: dict[str, Any], key: str | None = None) -> str:
    signer = crypt.RSASigner.from_string(key or _key_pair()[0], "kid")
    return jwt.encode(signer, claims).decode()


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "gateway-test@test-project.iam.gserviceaccount.com", "aud": "https://oauth2.googleapis.com/token",
            "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": now, "exp": now + 3600, **over}


def other_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize(("jwt_claims", "key", "error"), [
    (claims(), "other", "invalid_grant"),
    (claims(aud="https://example.com/token"), None, "invalid_grant"),
    (claims(iss="someone@else.iam.gserviceaccount.com"), None, "invalid_grant"),
    (claims(scope="https://www.googleapis.com/auth/devstorage.read_only"), None, "invalid_scope"),
    (claims(exp=int(time.time()) + 7200), None, "invalid_grant"),
    (claims(exp=int(time.time()) - 60, iat=int(time.time()) - 3660), None, "invalid_grant"),
])
async def test_the_token_endpoint_verifies_the_assertion(fake_upstream: FakeUpstream, jwt_claims, key,  # noqa: ANN001
                                                         error):
    endpoint = install_token_endpoint(fake_upstream)
    signed = assertion(jwt_claims, other_key() if key == "other" else None)
    form = urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": signed})
    status, answer = await post(fake_upstream.url + "/token", data=form,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, answer["error"]) == (400, error)
    assert endpoint.issued == []
    form = urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion(claims())})
    status, answer = await post(fake_upstream.url + "/token", data=form,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and answer["access_token"] == endpoint.issued[0]
