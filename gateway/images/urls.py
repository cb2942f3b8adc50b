"""The URLs of stored images, and which image URLs the gateway may fetch.

An answer (and the cache entry made of it) holds a stored image as a host-free, unsigned
path, ``/v1/images/files/<id>?expires=<unix s>`` (:func:`stored_path`); each delivery
renders it for its own caller (:meth:`ImageUrls.render`): the base the operator allows
for that request, and a signature.  So a cache hit never carries the Host of the caller
that filled the entry, and a URL always expires with its image.

The base (:meth:`ImageUrls.base`), first that applies:

1. ``images.public_url``;
2. with ``images.forwarded_headers``, ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` (else
   ``Host``), checked against ``images.url_hosts`` when it lists any;
3. the request's ``Host`` when ``images.url_hosts`` lists it;
4. the gateway's own address: the local address and port of the connection the request
   came in on (``server.host`` / ``server.port`` when there is none).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
import structlog

from gateway.images.signing import SigningKeys, configured_secret

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from gateway.images.store import ImageStore
    from gateway.settings import Settings

_log = structlog.get_logger("gateway.images")
_encode = msgspec.json.Encoder().encode

#: Where stored images are served, below the gateway's base URL.
FILES_PATH = "/v1/images/files/"
_FILES_BYTES = FILES_PATH.encode()
#: Addresses that mean "every interface": not one a client can reach.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*", "[::]"})
#: A stored image's signed path in an answer body (a JSON ``url`` string), as
#: :meth:`ImageUrls.signed` makes it (the signature is 43 characters of URL-safe base64).
_STORED = re.compile(rb'"url":"(/v1/images/files/[A-Za-z0-9_-]{32}\?expires=[0-9]{1,12}&sig=[A-Za-z0-9_-]{43})"')
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: ``host[:port]`` as a Host header carries it: a DNS name, an IPv4 address or a bracketed IPv6 one.
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?", re.ASCII | re.IGNORECASE)


def stored_path(image_id: str, expires: int) -> str:
    """A stored image's path, host-free and unsigned (:meth:`ImageUrls.signed` signs it)."""
    return f"{FILES_PATH}{image_id}?expires={expires}"


class ImageUrls:
    """Where the image URLs of one app point, and the secret that signs them."""

    def __init__(self, public_url: str | None = None, url_hosts: tuple[str, ...] = (), forwarded: bool = False,
                 listen: tuple[str, int] = ("127.0.0.1", 8787), secret: bytes | None = None) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self.url_hosts = frozenset(h.lower() for h in url_hosts)
        self.forwarded = forwarded
        self.listen = listen
        #: The secret that signs (and those it replaced, still accepted).
        self.keys = SigningKeys(secret)

    @classmethod
    def from_settings(cls, settings: Settings, errors: list[str], environ: Mapping[str, str] | None = None) -> ImageUrls:
        """Checked ``[images]`` URL settings; problems are appended to ``errors``."""
        cfg = settings.images
        public_url = cfg.public_url
        if public_url is not None and not _valid_base(public_url):
            errors.append(f"settings: images.public_url {public_url!r} must be an http(s) URL with a host and "
                          "nothing after its path (`https://gateway.example.com`, `https://example.com/gateway`)")
            public_url = None
        hosts = []
        for host in cfg.url_hosts:
            if _HOST.fullmatch(host) and len(host) <= 261:
                hosts.append(host)
            else:
                errors.append(f"settings: images.url_hosts: {host!r} is not a host[:port] as clients send it in "
                              "Host (`gateway.internal:8787`)")
        secret = configured_secret(cfg, errors, environ)
        return cls(public_url, tuple(hosts), cfg.forwarded_headers, (settings.server.host, settings.server.port), secret)

    async def start(self, store: ImageStore) -> None:
        """Settle the signing secret (the configured one, else one the store shares between the
        processes serving its images, else this process's own) and say what the base will be."""
        await self.keys.start(store)
        if self.public_url is None and not self.url_hosts and not self.forwarded \
                and self.listen[0] in WILDCARD_HOSTS:
            _log.warning("images.public_url_unset", host=self.listen[0],
                         hint="image URLs point at the address each request came in on; set images.public_url "
                              "(https://gateway.example.com) to the address clients reach the gateway at")

    async def close(self) -> None:
        await self.keys.close()

    # -- where URLs point ---------------------------------------------------------------
    def base(self, request: web.BaseRequest) -> str:
        """The base of the image URLs answered to ``request`` (no trailing slash)."""
        if self.public_url is not None:
            return self.public_url
        headers = request.headers
        if self.forwarded:
            host = _first(headers.get("X-Forwarded-Host")) or headers.get("Host", "")
            proto = _first(headers.get("X-Forwarded-Proto")).lower()
            if self._allowed(host):
                return f"{proto if proto in ('http', 'https') else request.scheme}://{host.lower()}"
        elif self.url_hosts:
            host = headers.get("Host", "")
            if self._allowed(host):
                return f"{request.scheme}://{host.lower()}"
        return self._own(request)

    def _allowed(self, host: str) -> bool:
        if not host or len(host) > 261 or not _HOST.fullmatch(host):
            return False
        return not self.url_hosts or host.lower() in self.url_hosts

    def _own(self, request: web.BaseRequest) -> str:
        transport = request.transport
        sock: Any = transport.get_extra_info("sockname") if transport is not None else None
        if isinstance(sock, tuple) and len(sock) >= 2:
            host, port = str(sock[0]), int(sock[1])
        else:
            host, port = self.listen
            host = "127.0.0.1" if host in WILDCARD_HOSTS else host
        host = host.split("%", 1)[0]  # an IPv6 zone is no part of a URL
        if host.startswith("::ffff:") and "." in host:  # IPv4 on a dual-stack socket
            host = host[len("::ffff:"):]
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        scheme = request.scheme
        default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
        return f"{scheme}://{host}" if default else f"{scheme}://{host}:{port}"

    # -- signing ------------------------------------------------------------------------
    def signed(self, path: str) -> str:
        """``path`` (:func:`stored_path`) with its signature: what an answer holds for an image
        the gateway stored.  Signed when stored, so a path a provider's answer carries (a
        caller's custom host can answer anything) never gets the gateway's signature."""
        head, _, expires = path.partition("?expires=")
        return f"{path}&sig={self.keys.current.signature(head[len(FILES_PATH):], expires)}"

    def absolute(self, path: str, base: str) -> str:
        """The URL a caller gets for a signed ``path``: below ``base``."""
        return base + path

    def render(self, body: bytes, base: str) -> bytes:
        """``body`` (an answer or an event) with every stored image's signed path made the URL
        the caller gets.  Paths are found as the gateway encodes them
        (``"url":"/v1/images/files/...&sig=..."``); a body without one is returned as it is, unparsed."""
        # find(), not `in`: `in` on bytes first tries the needle as a byte value (a TypeError
        # raised and swallowed each time).
        if body.find(_FILES_BYTES) < 0:
            return body

        def one(m: re.Match[bytes]) -> bytes:
            return b'"url":' + _encode(self.absolute(m.group(1).decode(), base))

        return _STORED.sub(one, body)

    def check(self, image_id: str, query: Mapping[str, str]) -> int:
        """The expiry of a signed URL of ``image_id`` that holds; else a 403."""
        return self.keys.check(image_id, query.get("expires"), query.get("sig"))


def _first(value: str | None) -> str:
    """The first of a proxy header's comma-separated values (the one the client's side set)."""
    return value.split(",", 1)[0].strip() if value else ""


def _valid_base(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.username
            and not parts.password and not parts.query and not parts.fragment and "?" not in url
            and "#" not in url and bool(_HOST.fullmatch(parts.netloc))
            and all(c.isascii() and (c.isalnum() or c in "/-._~%") for c in parts.path))


def host_allowed(url: str, api_base_url: str, image_hosts: tuple[str, ...]) -> bool:
    """Whether ``url`` is on one of a provider's own hosts: the scheme, host and port its
    API is called on, or (https on port 443 only) one of its declared ``image_hosts``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    host = parts.hostname.lower()
    port = port or _DEFAULT_PORTS[parts.scheme]
    api = urlsplit(api_base_url)
    if (parts.scheme, host, port) == (api.scheme, (api.hostname or "").lower(), api.port or _DEFAULT_PORTS.get(api.scheme)):
        return True
    return parts.scheme == "https" and port == 443 and any(fnmatch(host, pattern) for pattern in image_hosts)


_DEFAULT_PORTS = {"http": 80, "https": 443}
