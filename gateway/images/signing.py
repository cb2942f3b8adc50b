"""Signed image URLs: an HMAC-SHA256 over the image id and the expiry.

A signed URL needs no header, so an ``<img src>`` or a notebook's ``Image(url=...)``
loads it with gateway keys on, until it expires; changing the id, the expiry or the
signature makes it a 403.  The secret is ``images.url_secret`` (or its ``_env`` /
``_file`` form); without one the image store shares a generated one between the
processes that serve its images (:meth:`gateway.images.store.ImageStore.shared_secret`),
and :class:`SigningKeys` keeps it shared while the app runs.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from gateway.errors import Forbidden
from gateway.images.store import SECRET_BYTES

if TYPE_CHECKING:  # pragma: no cover
    from gateway.images.store import ImageStore
    from gateway.settings import ImagesSettings

_log = structlog.get_logger("gateway.images")
#: Seconds between two checks that a shared secret is still where the other processes find it.
REFRESH_INTERVAL = 60.0
#: Secrets replaced while running that still verify the URLs made with them.
KEPT_SECRETS = 3

#: Characters a configured secret needs at least (``openssl rand -hex 32`` gives 64).
MIN_SECRET_CHARS = 32
#: Keeps these signatures apart from any other use of the same secret.
_DOMAIN = b"gateway image url v1\x00"
_EXPIRES = re.compile(r"[0-9]{1,12}", re.ASCII)


class UrlSigner:
    """Signs and checks ``(image id, expiry)`` pairs with one secret."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "UrlSigner(***)"

    def signature(self, image_id: str, expires: str) -> str:
        """The URL-safe base64 HMAC of ``image_id`` and ``expires`` (unix seconds, as in the URL)."""
        msg = _DOMAIN + image_id.encode("utf-8", "replace") + b"\x00" + expires.encode("ascii", "replace")
        return base64.urlsafe_b64encode(hmac.new(self._key, msg, hashlib.sha256).digest()).rstrip(b"=").decode()

    def check(self, image_id: str, expires: str | None, sig: str | None, now: float | None = None) -> int:
        """The expiry of a URL whose signature holds and that has not expired; otherwise a 403
        (``invalid_signature``: unsigned, changed, or signed with another secret;
        ``url_expired``).  The signature is compared in constant time."""
        if not expires or not sig:
            raise Forbidden("This image URL is not signed: use the URL the answer gave, with its `expires` and "
                            "`sig`", code="invalid_signature")
        expected = self.signature(image_id, expires).encode()
        if not _EXPIRES.fullmatch(expires) or not hmac.compare_digest(expected, sig.encode("utf-8", "replace")):
            raise Forbidden("This image URL's signature is not valid (the URL was changed, or made by a gateway "
                            "with another images.url_secret)", code="invalid_signature")
        at = int(expires)
        if at <= (time.time() if now is None else now):
            when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise Forbidden(f"This image URL expired at {when} (the image is gone too)", code="url_expired")
        return at


def configured_secret(cfg: ImagesSettings, errors: list[str], environ: Mapping[str, str] | None = None) -> bytes | None:
    """``images.url_secret``, ``url_secret_env`` or ``url_secret_file`` (at most one), else None;
    problems are appended to ``errors`` (never with the secret in them)."""
    environ = os.environ if environ is None else environ
    sources = [name for name in ("url_secret", "url_secret_env", "url_secret_file") if getattr(cfg, name)]
    if not sources:
        return None
    if len(sources) > 1:
        errors.append("settings: set only one of images.url_secret, images.url_secret_env, images.url_secret_file")
        return None
    where = f"settings: images.{sources[0]}"
    if cfg.url_secret:
        secret = cfg.url_secret
    elif cfg.url_secret_env:
        secret = environ.get(cfg.url_secret_env, "")
        if not secret:
            errors.append(f"{where}: environment variable {cfg.url_secret_env} is not set")
            return None
    else:
        assert cfg.url_secret_file
        try:
            with open(cfg.url_secret_file, encoding="utf-8") as f:
                secret = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            errors.append(f"{where}: cannot read {cfg.url_secret_file}: {getattr(e, 'strerror', None) or e}")
            return None
    if len(secret) < MIN_SECRET_CHARS:
        errors.append(f"{where}: the secret must be at least {MIN_SECRET_CHARS} characters "
                      "(`openssl rand -hex 32` makes one)")
        return None
    return secret.encode("utf-8")


class SigningKeys:
    """The secret that signs image URLs now, and the shared ones it replaced (still accepted).

    A configured secret is used as it is.  Otherwise the store settles one at start-up and
    every :data:`REFRESH_INTERVAL` seconds it is asserted again (set if absent, read back):
    a key evicted from Redis (the shipped Redis evicts the least recently used keys) or a
    file a temp cleaner removed is put back as it was, so an instance starting later still
    agrees; and should another secret have won meanwhile, this process adopts it and keeps
    accepting the URLs it signed before.
    """

    def __init__(self, configured: bytes | None) -> None:
        self.configured = configured is not None
        self._current: UrlSigner | None = UrlSigner(configured) if configured is not None else None
        self._key = configured
        self._replaced: list[UrlSigner] = []
        self._store: ImageStore | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> UrlSigner:
        if self._current is None:
            raise RuntimeError("image URLs are signed only while the app runs")
        return self._current

    async def start(self, store: ImageStore) -> None:
        if self.configured:
            return
        self._key = secrets.token_bytes(SECRET_BYTES)
        self._current = UrlSigner(self._key)
        self._store = store
        try:
            shared = await store.shared_secret(self._key)
        except Exception as e:  # a backend or disk problem: sign alone, and say so
            _log.warning("images.url_secret_not_shared", error=f"{e.__class__.__name__}: {e}"[:300],
                         hint="image URLs made here load only here until the store is back; set "
                              "images.url_secret when several processes serve images")
            shared = None
        if shared is None:
            return
        self._key, self._current = shared, UrlSigner(shared)
        self._task = asyncio.get_running_loop().create_task(self._keep_shared())

    async def _keep_shared(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            await self.refresh()

    async def refresh(self) -> None:
        """Assert the shared secret again; adopt another one that won meanwhile."""
        if self._store is None or self._key is None:
            return
        try:
            shared = await self._store.shared_secret(self._key)
        except Exception as e:  # the next round tries again
            _log.debug("images.url_secret_refresh_failed", error=f"{e.__class__.__name__}: {e}"[:300])
            return
        if shared is not None and shared != self._key:
            _log.info("images.url_secret_changed", hint="another process set the shared secret; URLs made "
                                                       "with the one before still load here")
            self._replaced = [self.current, *self._replaced][:KEPT_SECRETS]
            self._key, self._current = shared, UrlSigner(shared)

    def check(self, image_id: str, expires: str | None, sig: str | None) -> int:
        """:meth:`UrlSigner.check` with the current secret, then with the ones it replaced."""
        try:
            return self.current.check(image_id, expires, sig)
        except Forbidden as e:
            if e.code != "invalid_signature" or not self._replaced:
                raise
            for old in self._replaced:
                with contextlib.suppress(Forbidden):
                    return old.check(image_id, expires, sig)
            raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
