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
    """Whether ``url`` is on one of a provider's own hosts: the host its API is called
    on, or (https only) one of its declared ``image_hosts`` patterns."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    host = parts.hostname.lower()
    if host == (urlsplit(api_base_url).hostname or "").lower():
        return True
    return parts.scheme == "https" and any(fnmatch(host, pattern) for pattern in image_hosts)
