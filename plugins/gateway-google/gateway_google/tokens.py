"""OAuth 2.0 access tokens for a service account, fetched without blocking and cached.

The service account signs a JWT assertion (``iss`` its email, ``scope`` cloud-platform, ``aud``
Google's token endpoint, an hour's ``exp``) with google-auth's RSA signer, and the gateway POSTs it
to the key's ``token_uri`` (RFC 7523's JWT bearer grant) through an aiohttp client: google-auth's
own refresh runs ``requests`` synchronously and must not run on the event loop.  The token is
kept per service account until five minutes before it expires; requests that need it meanwhile
share one fetch.  It is never logged, and never put in an error message.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NamedTuple, NoReturn
from urllib.parse import urlencode

import msgspec
from google.auth import jwt
from google.auth.crypt import RSASigner

from gateway.sdk import Answer, AuthError, BadRequest, GatewayError, ProviderError, UpstreamError, UpstreamRequest

from gateway_google.service_account import GOOGLE_TOKEN_URI, ServiceAccount

__all__ = ["ASSERTION_LIFETIME", "JWT_GRANT", "REFRESH_BEFORE", "SCOPE", "TokenCache", "read_token_answer"]

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Seconds a signed assertion is valid (Google takes at most an hour).
ASSERTION_LIFETIME = 3600
#: A cached token is replaced this many seconds before it expires.
REFRESH_BEFORE = 300
#: Tokens (and signers) kept at most: one per service account in use.
MAX_ACCOUNTS = 1024
_json = msgspec.json.Decoder()

Send = Callable[[UpstreamRequest], Awaitable[Answer]]
Spawn = Callable[[Coroutine[Any, Any, str]], "asyncio.Future[str]"]


class _Token(NamedTuple):
    value: str
    #: On the cache's clock: when to fetch a new one.
    refresh_at: float


class _Fetch:
    """A token fetch under way, and how many requests wait for it."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Future[str]) -> None:
        self.task = task
        self.waiters = 0


class TokenCache:
    """Access tokens by service account; one fetch at a time per account."""

    def __init__(self, provider: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        #: The clock expiries are read on (tests move it on).
        self.clock = clock
        self._tokens: OrderedDict[str, _Token] = OrderedDict()
        self._signers: OrderedDict[str, RSASigner] = OrderedDict()
        self._inflight: dict[str, _Fetch] = {}

    async def token(self, account: ServiceAccount, send: Send, spawn: Spawn) -> str:
        """A valid access token for ``account``: the cached one, or a fetched one.  The fetch runs
        as its own task (``spawn``): a caller that goes away does not fail the others waiting, and
        when the last one goes (a client gone, a timeout) the fetch is stopped."""
        key = account.cache_key
        found = self._tokens.get(key)
        if found is not None and self.clock() < found.refresh_at:
            self._tokens.move_to_end(key)
            return found.value
        fetch = self._inflight.get(key)
        if fetch is None:
            fetch = self._inflight[key] = _Fetch(spawn(self._fetch(key, account, send)))
            fetch.task.add_done_callback(lambda _: self._settled(key, fetch))
        fetch.waiters += 1
        try:
            return await asyncio.shield(fetch.task)
        finally:
            fetch.waiters -= 1
            if not fetch.waiters and not fetch.task.done():
                fetch.task.cancel()

    def forget(self, account: ServiceAccount, token: str) -> None:
        """Drop ``token`` (Google refused it: revoked, the key disabled) so the next request fetches anew."""
        found = self._tokens.get(account.cache_key)
        if found is not None and found.value == token:
            del self._tokens[account.cache_key]

    def _settled(self, key: str, fetch: _Fetch) -> None:
        if self._inflight.get(key) is fetch:
            del self._inflight[key]
        if not fetch.task.cancelled():
            fetch.task.exception()  # retrieved: a failure nobody awaited any more is not reported as lost

    async def _fetch(self, key: str, account: ServiceAccount, send: Send) -> str:
        started = self.clock()
        answer = await send(self.token_request(key, account))
        token, lifetime = read_token_answer(self.provider, account, answer)
        self._tokens[key] = _Token(token, started + lifetime - REFRESH_BEFORE)
        self._tokens.move_to_end(key)
        while len(self._tokens) > MAX_ACCOUNTS:
            self._tokens.popitem(last=False)
        return token

    def token_request(self, key: str, account: ServiceAccount) -> UpstreamRequest:
        """``POST token_uri`` with the signed assertion (form-encoded, as RFC 7523 says)."""
        body = urlencode({"grant_type": JWT_GRANT, "assertion": self.assertion(key, account)}).encode()
        return UpstreamRequest("POST", account.token_uri, {"Content-Type": "application/x-www-form-urlencoded",
                                                           "Accept": "application/json"}, body)

    def assertion(self, key: str, account: ServiceAccount) -> str:
        """The JWT the service account signs to ask for a cloud-platform access token."""
        now = int(time.time())
        payload = {"iss": account.client_email, "scope": SCOPE, "aud": GOOGLE_TOKEN_URI, "iat": now,
                   "exp": now + ASSERTION_LIFETIME}
        return jwt.encode(self._signer(key, account), payload).decode("ascii")

    def _signer(self, key: str, account: ServiceAccount) -> RSASigner:
        signer = self._signers.get(key)
        if signer is None:
            try:
                signer = RSASigner.from_service_account_info(
                    {"private_key": account.private_key, "private_key_id": account.private_key_id})
            except (ValueError, TypeError):
                raise BadRequest(f"{self.provider}: the `private_key` of service account {account.client_email} "
                                 "is not an RSA private key in PEM form", param="vertex_service_account_json",
                                 code="invalid_service_account") from None
            self._signers[key] = signer
            while len(self._signers) > MAX_ACCOUNTS:
                self._signers.popitem(last=False)
        return signer


def read_token_answer(provider: str, account: ServiceAccount, answer: Answer) -> tuple[str, int]:
    """``(access_token, expires_in)`` from the token endpoint's answer, or the error it means.
    The answer's body holds the token: it never goes into a message."""
    doc: Any = None
    try:
        doc = _json.decode(answer.body) if answer.body else None
    except msgspec.DecodeError:
        pass
    if answer.ok:
        token = doc.get("access_token") if isinstance(doc, dict) else None
        lifetime = doc.get("expires_in", ASSERTION_LIFETIME) if isinstance(doc, dict) else None
        if isinstance(lifetime, str) and lifetime.isdecimal():
            lifetime = int(lifetime)
        if not isinstance(token, str) or not token or not isinstance(lifetime, int) or isinstance(lifetime, bool):
            raise UpstreamError(f"{provider}: the token endpoint of service account {account.client_email} "
                                "answered without an `access_token` and its `expires_in`",
                                provider=provider, code="invalid_token_response")
        return token, lifetime
    token_error(provider, account, answer.status, doc)


def token_error(provider: str, account: ServiceAccount, status: int, doc: Any) -> NoReturn:
    """The token endpoint's refusal (``{"error", "error_description"}``) as a gateway error: a
    refused key is the caller's credential failing (401); a rate limit keeps its 429; the rest is
    the endpoint failing (502)."""
    said = ""
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        said = doc["error"]
        if isinstance(doc.get("error_description"), str):
            said += f": {doc['error_description']}"
    said = said[:300] or f"HTTP {status}"
    who = f"service account {account.client_email}"
    err: GatewayError
    if status in (400, 401, 403):
        err = AuthError(f"{provider}: the token endpoint refused {who} ({said})", provider=provider,
                        code="invalid_service_account")
    elif status == 429:
        err = ProviderError(f"{provider}: the token endpoint is rate limiting {who} ({said})", status=429,
                            provider=provider, code="rate_limit_exceeded")
    else:
        err = UpstreamError(f"{provider}: the token endpoint failed for {who} ({said})", provider=provider,
                            code="token_endpoint_error")
    raise err
