"""AWS authentication for Bedrock: SigV4 signing (botocore) and the gateway's own credentials.

A request is signed over exactly what goes on the wire: the method, the URL as
aiohttp will send it, the ``Host`` header (set explicitly, so the signed and the
sent value cannot differ), the content headers and the body bytes.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError
from multidict import CIMultiDict
from yarl import URL

__all__ = ["AUTH_HEADERS", "SERVICE", "CredentialsUnavailable", "EnvironmentCredentials", "host_header", "sign", "wire_url"]

#: The SigV4 signing name of bedrock-runtime.
SERVICE = "bedrock"
#: Headers the signature sets; a client's own values are dropped before signing.
AUTH_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def wire_url(url: str) -> str:
    """``url`` exactly as aiohttp puts it on the wire (yarl's normalised form)."""
    return str(URL(url))


def host_header(url: str) -> str:
    """The ``Host`` value for ``url``: lower-case host, port only when not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _signed(name: str) -> bool:
    low = name.lower()
    return low in ("content-type", "accept") or low.startswith(("x-amz-", "x-amzn-"))


def sign(method: str, url: str, headers: CIMultiDict[str], body: bytes | None, credentials: Any,
         region: str, service: str = SERVICE) -> None:
    """Add SigV4 ``Authorization``, ``X-Amz-Date`` (and ``X-Amz-Security-Token``) to ``headers``.

    ``body`` must be the exact bytes sent; ``url`` is signed in the form aiohttp sends it;
    ``service`` is the signing name (``bedrock``, ``sts``).
    """
    url = wire_url(url)
    for name in AUTH_HEADERS:
        headers.popall(name, None)
    host = host_header(url)
    headers["Host"] = host
    to_sign = {"Host": host}
    for name, value in headers.items():
        if _signed(name) and name not in to_sign:
            to_sign[name] = value
    request = AWSRequest(method=method, url=url, headers=to_sign, data=body or b"")
    SigV4Auth(credentials, service, region).add_auth(request)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
        value = request.headers.get(name)
        if value is not None:
            headers[name] = value


class CredentialsUnavailable(Exception):
    """The gateway's own credentials exist but could not be refreshed (STS, IMDS unreachable)."""


class EnvironmentCredentials:
    """The gateway's own AWS credentials, found by botocore's provider chain
    (environment variables, shared credentials and config files, web identity,
    container and instance roles) in a worker thread, never on the event loop.

    Found once and kept; when nothing was found the chain is asked again after
    ``RETRY_AFTER`` seconds (an instance role may have been unreachable for a moment).
    """

    RETRY_AFTER = 60.0

    def __init__(self, environ: Any = None) -> None:
        environ = os.environ if environ is None else environ
        #: A Bedrock API key from the environment (preferred, as botocore does).
        self.bearer: str | None = environ.get("AWS_BEARER_TOKEN_BEDROCK") or None
        self.region: str | None = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
        self._found: asyncio.Future[Any] | None = None
        self._looked_at = 0.0
        #: Why no credentials were found (a broken profile, ...), for the error message.
        self.problem: str | None = None

    async def get(self) -> ReadOnlyCredentials | None:
        """Frozen credentials, refreshed (in a thread) when botocore says they are due."""
        loop = asyncio.get_running_loop()
        stale = (self._found is not None and self._found.done() and self._found.result() is None
                 and loop.time() - self._looked_at > self.RETRY_AFTER)
        if self._found is None or stale:
            self._looked_at = loop.time()
            self._found = asyncio.ensure_future(asyncio.to_thread(self._resolve))
        # Shielded: a cancelled first caller must not cancel the lookup for everyone.
        found = await asyncio.shield(self._found)
        if found is None:
            return None
        try:
            refresh_needed = getattr(found, "refresh_needed", None)
            if refresh_needed is not None and refresh_needed():
                return await asyncio.to_thread(found.get_frozen_credentials)
            return found.get_frozen_credentials()
        except BotoCoreError as e:
            raise CredentialsUnavailable(str(e)) from None

    def _resolve(self) -> Any:
        import botocore.session

        try:
            found = botocore.session.get_session().get_credentials()
        except BotoCoreError as e:
            self.problem = str(e)
            return None
        self.problem = None
        return found
