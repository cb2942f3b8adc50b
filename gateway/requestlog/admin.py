"""The admin key: what ``GET /v1/logs`` and the web UI ask for.

It comes from ``[admin]`` (``key_env``, ``key_file`` or ``key``, one of them).  Only its
SHA-256 is kept; a key given is compared in constant time.  With no admin key set, the
admin routes answer 403 ``admin_key_not_set`` naming the setting.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from gateway import headers as h
from gateway.errors import AuthError, Forbidden
from gateway.requestlog.settings import AdminSettings

#: Shortest admin key accepted (a short one is guessed).
MIN_LENGTH = 16
SETTING = "[admin] key_env (or key_file, key)"


class AdminKey:
    """The admin key's digest, or none when ``[admin]`` sets no key."""

    __slots__ = ("_digest",)

    def __init__(self, key: str | None) -> None:
        self._digest = None if key is None else hashlib.sha256(key.encode()).digest()

    @property
    def configured(self) -> bool:
        return self._digest is not None

    @classmethod
    def from_settings(cls, settings: AdminSettings, errors: list[str],
                      environ: Mapping[str, str] | None = None) -> AdminKey:
        """The key ``settings`` name; each problem (two sources, an unset variable, an
        unreadable file, a short key) is appended to ``errors``."""
        environ = os.environ if environ is None else environ
        given = [name for name in ("key_env", "key_file", "key") if getattr(settings, name) is not None]
        if len(given) > 1:
            errors.append(f"settings [admin]: set one of key_env, key_file, key (not {', '.join(given)})")
            return cls(None)
        key: str | None = None
        if settings.key_env is not None:
            key = environ.get(settings.key_env)
            if not key:
                errors.append(f"settings [admin] key_env: the environment variable {settings.key_env} is not set")
                return cls(None)
        elif settings.key_file is not None:
            try:
                with open(settings.key_file, encoding="utf-8") as f:
                    key = f.read().strip()
            except (OSError, UnicodeDecodeError) as e:
                errors.append(f"settings [admin] key_file: cannot read {settings.key_file}: {e}")
                return cls(None)
        elif settings.key is not None:
            key = settings.key
        if key is not None and len(key) < MIN_LENGTH:
            errors.append(f"settings [admin]: the admin key must be at least {MIN_LENGTH} characters")
            return cls(None)
        return cls(key)

    def check(self, given: str | None) -> bool:
        """Whether ``given`` is the admin key (constant time; False when none is set)."""
        if self._digest is None or not given:
            return False
        return hmac.compare_digest(hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest(), self._digest)

    def allows(self, headers: Mapping[str, str]) -> bool:
        """Whether a request carries the admin key, in ``Authorization: Bearer <key>`` or in
        ``x-portkey-api-key`` (either one: the other may hold another key)."""
        return self.check(h.bearer(headers.get("Authorization"))) or self.check(headers.get(h.API_KEY))

    def require(self, headers: Mapping[str, str]) -> None:
        """Nothing when ``headers`` carry the admin key; else 403 ``admin_key_not_set`` (no key
        configured) or 401 ``invalid_admin_key``."""
        if self._digest is None:
            raise Forbidden(f"The admin API is off: no admin key is set; set {SETTING}", code="admin_key_not_set")
        if not self.allows(headers):
            raise AuthError("This needs the admin key in `Authorization: Bearer <admin key>` or x-portkey-api-key",
                            code="invalid_admin_key")
