"""The URLs of stored images, and which image URLs the gateway may fetch."""
from __future__ import annotations

from fnmatch import fnmatch
from urllib.parse import urlsplit

#: Where stored images are served, below the gateway's base URL.
FILES_PATH = "/v1/images/files/"


def image_url(public_url: str | None, origin: str, image_id: str) -> str:
    """The absolute URL of a stored image: below ``images.public_url`` when set, else
    below the ``scheme://host`` the client reached the gateway at."""
    return f"{(public_url or origin).rstrip('/')}{FILES_PATH}{image_id}"


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
