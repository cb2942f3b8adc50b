"""The admin key: what ``GET /v1/logs`` and the web UI ask for.

It comes from ``[admin]`` (``key_env``, ``key_file`` or ``key``, one of them).  With none
of them set and the gateway listening on loopback only, the gateway makes one and keeps it in
``[admin] local_key_file`` (mode 0600, reused at the next start; never logged, never shown:
whoever may read that file is the operator).  Only its SHA-256 is kept in memory; a key given
is compared in constant time.  With no admin key at all, the admin routes answer 403
``admin_key_not_set`` naming the setting.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping

from gateway import headers as h
from gateway.errors import AuthError, Forbidden
from gateway.ssrf import is_loopback_bind
from gateway.requestlog.settings import AdminSettings

#: Shortest admin key accepted (a short one is guessed).
MIN_LENGTH = 16
SETTING = "[admin] key_env (or key_file, key)"


class AdminKey:
    """The admin key's digest, or none when ``[admin]`` sets no key."""

    __slots__ = ("_digest", "local_file")

    def __init__(self, key: str | None, local_file: str | None = None) -> None:
        self._digest = None if key is None else hashlib.sha256(key.encode()).digest()
        #: The file holding a key the gateway made itself (None: the key comes from the settings).
        self.local_file = local_file

    @property
    def configured(self) -> bool:
        return self._digest is not None

    @classmethod
    def from_settings(cls, settings: AdminSettings, errors: list[str],
                      environ: Mapping[str, str] | None = None, server_host: str | None = None) -> AdminKey:
        """The key ``settings`` name; each problem (two sources, an unset variable, an
        unreadable file, a short key) is appended to ``errors``.  With no key named and
        ``server_host`` a loopback address, the key kept in ``local_key_file`` (made now if
        there is none)."""
        environ = os.environ if environ is None else environ
        given = [name for name in ("key_env", "key_file", "key") if getattr(settings, name) is not None]
        if not given and settings.local_key and server_host is not None and is_loopback_bind(server_host):
            try:
                return cls(local_key(settings.local_key_file), settings.local_key_file)
            except (OSError, UnicodeDecodeError, ValueError) as e:
                errors.append(f"settings [admin] local_key_file: cannot keep the gateway's own admin key in "
                              f"{settings.local_key_file}: {e} (set local_key = false, or one of key_env, "
                              f"key_file, key)")
                return cls(None)
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


def local_key(path: str) -> str:
    """The admin key kept in ``path``; made (random, 32 bytes) and written there, readable by
    its owner only, when the file does not exist.  Processes starting together (``--workers``)
    agree: the file appears whole, once (a hard link of a finished temporary file)."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: its key is the one
    finally:
        os.unlink(tmp)
    return _read_key(path)


def _read_key(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        key = f.read().strip()
    if len(key) < MIN_LENGTH:
        raise ValueError(f"the file holds no admin key of at least {MIN_LENGTH} characters")
    return key
