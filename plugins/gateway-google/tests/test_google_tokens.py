"""Service-account access tokens in process: the signed assertion, the cache, one fetch at a time,
and the token endpoint's refusals, against a token endpoint played by a function."""
from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import pytest
from google.auth import jwt

from gateway.sdk import Answer, AuthError, BadRequest, ProviderError, UpstreamError, UpstreamRequest
from gateway.testing import answer
from gateway_google.service_account import read_service_account
from gateway_google.testing import _key_pair, make_service_account
from gateway_google.tokens import REFRESH_BEFORE, TokenCache

TOKEN_URI = "https://oauth2.googleapis.com/token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    """The token endpoint: checks the assertion with the account's public key, answers tokens."""

    def __init__(self, expires_in: int = 3599, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self.reply: Answer | None = None

    async def __call__(self, request: UpstreamRequest) -> Answer:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        claims = jwt.decode(form["assertion"], certs=_key_pair()[1], audience="https://oauth2.googleapis.com/token")
        self.calls.append({"url": request.url, "form": form, "claims": claims,
                           "content_type": request.headers["Content-Type"]})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reply is not None:
            return self.reply
        return answer(200, {"access_token": f"ya29.t{len(self.calls)}", "expires_in": self.expires_in,
                            "token_type": "Bearer"})


def account(**kw: Any) -> Any:
    return read_service_account(make_service_account(TOKEN_URI, **kw))


async def test_the_assertion_is_a_jwt_bearer_grant_for_cloud_platform():
    endpoint = Endpoint()
    token = await TokenCache("vertex-ai").token(account(), endpoint, asyncio.ensure_future)
    assert token == "ya29.t1"
    [call] = endpoint.calls
    assert call["url"] == TOKEN_URI and call["content_type"] == "application/x-www-form-urlencoded"
    assert call["form"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = call["claims"]
    assert claims["iss"] == "gateway-test@test-project.iam.gserviceaccount.com"
    assert claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.decode_header(call["form"]["assertion"])["kid"] == "0123456789abcdef"


async def test_a_token_is_reused_until_five_minutes_before_it_expires_then_refreshed():
    clock, endpoint = Clock(), Endpoint(expires_in=3600)
    cache = TokenCache("vertex-ai", clock)
    sa = account()
    assert await cache.token(sa, endpoint, asyncio.ensure_future) == "ya29.t1"
    clock.now += 3600 - REFRESH_BEFORE - 1
    assert await cache.token(sa, endpoint, asyncio.ensure_future) == "ya29.t1"
    assert len(endpoint.calls) == 1
    clock.now += 1
    assert await cache.token(sa, endpoint, asyncio.ensure_future) == "ya29.t2"
    assert await cache.token(sa, endpoint, asyncio.ensure_future) == "ya29.t2"
    assert len(endpoint.calls) == 2


async def test_concurrent_requests_share_one_fetch_and_a_leaver_does_not_fail_the_rest():
    endpoint = Endpoint(delay=0.05)
    cache = TokenCache("vertex-ai")
    sa = account()
    waiters = [asyncio.ensure_future(cache.token(sa, endpoint, asyncio.ensure_future)) for _ in range(5)]
    await asyncio.sleep(0.01)
    waiters[0].cancel()
    results = await asyncio.gather(*waiters[1:])
    assert results == ["ya29.t1"] * 4 and len(endpoint.calls) == 1


async def test_a_fetch_nobody_waits_for_any_more_is_stopped():
    endpoint = Endpoint(delay=10)
    cache = TokenCache("vertex-ai")
    fetches: list[asyncio.Future[str]] = []

    def spawn(coro: Any) -> asyncio.Future[str]:
        fetches.append(asyncio.ensure_future(coro))
        return fetches[-1]

    waiter = asyncio.ensure_future(cache.token(account(), endpoint, spawn))
    await asyncio.sleep(0.02)
    waiter.cancel()
    await asyncio.sleep(0.01)
    assert fetches[0].cancelled() and len(endpoint.calls) == 1
    endpoint.delay = 0  # the next request fetches afresh
    assert await cache.token(account(), endpoint, spawn) == "ya29.t2"


async def test_the_cache_key_holds_the_private_key_not_only_the_email_and_key_id():
    endpoint = Endpoint()
    cache = TokenCache("vertex-ai")
    real = account()
    forged = read_service_account({**make_service_account(TOKEN_URI), "private_key": real.private_key + "\n"})
    assert (forged.client_email, forged.private_key_id) == (real.client_email, real.private_key_id)
    assert real.cache_key != forged.cache_key
    await cache.token(real, endpoint, asyncio.ensure_future)
    await cache.token(forged, endpoint, asyncio.ensure_future)
    assert len(endpoint.calls) == 2


async def test_accounts_are_cached_apart():
    endpoint = Endpoint()
    cache = TokenCache("vertex-ai")
    one, two = account(), account(client_email="other@test-project.iam.gserviceaccount.com")
    assert await cache.token(one, endpoint, asyncio.ensure_future) == "ya29.t1"
    assert await cache.token(two, endpoint, asyncio.ensure_future) == "ya29.t2"
    assert await cache.token(one, endpoint, asyncio.ensure_future) == "ya29.t1"


@pytest.mark.parametrize(("status", "body", "error", "code", "expected_status"), [
    (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, AuthError,
     "invalid_service_account", 401),
    (401, {"error": "unauthorized_client"}, AuthError, "invalid_service_account", 401),
    (429, {"error": "rate_limit_exceeded"}, ProviderError, "rate_limit_exceeded", 429),
    (503, b"unavailable", UpstreamError, "token_endpoint_error", 502),
    (200, {"token_type": "Bearer", "note": "ya29.leaked"}, UpstreamError, "invalid_token_response", 502),
])
async def test_token_endpoint_refusals(status, body, error, code, expected_status):  # noqa: ANN001
    endpoint = Endpoint()
    endpoint.reply = answer(status, body)
    cache = TokenCache("vertex-ai")
    with pytest.raises(error) as caught:
        await cache.token(account(), endpoint, asyncio.ensure_future)
    assert (caught.value.code, caught.value.status) == (code, expected_status)
    assert "ya29" not in caught.value.message and "gateway-test@" in caught.value.message
    endpoint.reply = None  # a failure is not cached: the next request tries again
    assert await cache.token(account(), endpoint, asyncio.ensure_future) == "ya29.t2"


async def test_a_private_key_that_is_not_pem_is_a_400():
    bad = read_service_account({**make_service_account(TOKEN_URI), "private_key": "-----BEGIN PRIVATE KEY-----\nx"})
    with pytest.raises(BadRequest) as caught:
        await TokenCache("vertex-ai").token(bad, Endpoint(), asyncio.ensure_future)
    assert caught.value.code == "invalid_service_account" and "BEGIN" not in caught.value.message
