"""The UI's login session and its CSRF tokens: HMAC-signed, with an expiry, kept in cookies.

A session token is ``v1.<expires>.<nonce>.<signature>``; the signature is an HMAC-SHA256 with
a secret derived from the admin key (:func:`derive_secret`), so every worker process of one
gateway accepts the sessions of the others, a new admin key ends every session, and the key
itself is never in a cookie.  A form's CSRF token is the HMAC of the session token (nothing to
store); the login form, before any session, uses a signed token both in a cookie and in the
form (double submit).  Logging out revokes the session in this process (other workers let it
run to its expiry, at most ``[ui] session_ttl``; the cookie is gone from the browser either way).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

#: The session cookie (``Path=/ui``, ``HttpOnly``, ``SameSite=Strict``).
SESSION_COOKIE = "gateway_ui_session"
#: The login form's CSRF cookie (double submit, before there is a session).
LOGIN_COOKIE = "gateway_ui_login"
#: Seconds a login form stays good.
LOGIN_TTL = 3600
_VERSION = "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def derive_secret(admin_key: str | bytes) -> bytes:
    """The UI's signing secret: an HMAC of a fixed label under the admin key (one-way, so a
    cookie never reveals the key; the same in every process that has the same key)."""
    key = admin_key.encode("utf-8") if isinstance(admin_key, str) else admin_key
    return hmac.new(key, b"gateway ui session secret v1", hashlib.sha256).digest()


class Sessions:
    """Issues and checks session tokens, CSRF tokens and login-form tokens with one secret."""

    def __init__(self, secret: bytes, ttl: float) -> None:
        self._secret = secret
        self.ttl = ttl
        #: Revoked sessions (nonce -> expiry), dropped once expired.
        self._revoked: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Sessions(ttl={self.ttl})"

    def _sign(self, purpose: str, message: str) -> str:
        msg = purpose.encode() + b"\x00" + message.encode("utf-8", "replace")
        return _b64(hmac.new(self._secret, msg, hashlib.sha256).digest())

    # -- sessions -----------------------------------------------------------------------------
    def issue(self, now: float | None = None) -> str:
        """A new session token, good for ``ttl`` seconds."""
        expires = int((time.time() if now is None else now) + self.ttl)
        body = f"{_VERSION}.{expires}.{secrets.token_urlsafe(18)}"
        return f"{body}.{self._sign('session', body)}"

    def valid(self, token: str | None, now: float | None = None) -> bool:
        """Whether ``token`` is a session this secret signed, not expired, not revoked."""
        parsed = self._parse(token, now)
        return parsed is not None and parsed[1] not in self._revoked

    def _parse(self, token: str | None, now: float | None) -> tuple[int, str] | None:
        """``(expires, nonce)`` of a well-signed, unexpired token, else None."""
        if not token or len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
            return None
        body, sig = token.rsplit(".", 1)
        if not hmac.compare_digest(self._sign("session", body).encode(), sig.encode("utf-8", "replace")):
            return None
        expires = int(parts[1])
        if expires <= (time.time() if now is None else now):
            return None
        return expires, parts[2]

    def revoke(self, token: str | None, now: float | None = None) -> None:
        """End a session (in this process): its token is refused from now on."""
        now = time.time() if now is None else now
        self._revoked = {n: e for n, e in self._revoked.items() if e > now}
        parsed = self._parse(token, now)
        if parsed is not None:
            self._revoked[parsed[1]] = parsed[0]

    # -- CSRF -----------------------------------------------------------------------------------
    def csrf(self, session: str) -> str:
        """The CSRF token of the forms shown in ``session``."""
        return self._sign("csrf", session)

    def csrf_ok(self, session: str | None, given: str | None) -> bool:
        """Whether ``given`` is the CSRF token of a valid ``session`` (constant time)."""
        if not given or not self.valid(session):
            return False
        assert session is not None
        return hmac.compare_digest(self.csrf(session).encode(), given.encode("utf-8", "replace"))

    # -- the login form (no session yet) ----------------------------------------------------------
    def login_token(self, now: float | None = None) -> str:
        """A token for the login form: set as :data:`LOGIN_COOKIE` and put in the form."""
        expires = int((time.time() if now is None else now) + LOGIN_TTL)
        body = f"{expires}.{secrets.token_urlsafe(18)}"
        return f"{body}.{self._sign('login', body)}"

    def login_ok(self, cookie: str | None, given: str | None, now: float | None = None) -> bool:
        """Whether the form's token is the cookie's, signed here and unexpired (constant time)."""
        if not cookie or not given or len(cookie) > 200:
            return False
        if not hmac.compare_digest(cookie.encode("utf-8", "replace"), given.encode("utf-8", "replace")):
            return False
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        body, sig = cookie.rsplit(".", 1)
        if not hmac.compare_digest(self._sign("login", body).encode(), sig.encode("utf-8", "replace")):
            return False
        return int(parts[0]) > (time.time() if now is None else now)
