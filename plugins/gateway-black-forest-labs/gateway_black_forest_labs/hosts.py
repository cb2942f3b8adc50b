"""Which hosts the gateway talks to for Black Forest Labs, and with which credential.

- Tasks are created on the API base: the settings' ``base_url`` (``https://api.bfl.ai``), a
  region's URL (``region = "eu"`` -> ``https://api.eu.bfl.ai``), or a custom host.
- BFL answers a task with a ``polling_url`` that may name another cluster of its own
  (``https://api.us1.bfl.ai/v1/get_result?id=...``), and asks clients to poll that URL.  The
  gateway follows it only when it is on the API base's own origin, or, with no custom host in
  play, an https URL of a ``*.bfl.ai`` host; any other URL is not followed (the poll is built
  as ``{base}/v1/get_result?id=...``), so the key in ``x-key`` goes nowhere else.
- Result images are fetched (without the key) from the API base's origin or the declared
  delivery hosts, https on port 443 only.
"""
from __future__ import annotations

from urllib.parse import SplitResult, urlencode, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


def _parts(url: str) -> tuple[SplitResult, str, int] | None:
    """The URL split, its host (lower case) and port; None for anything but a plain http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if (parts.scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None
            or not set(host) <= _HOST_CHARS):
        return None
    return parts, host, port or _DEFAULT_PORTS[parts.scheme]


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base_url``."""
    a, b = _parts(url), _parts(base_url)
    return a is not None and b is not None and (a[0].scheme, a[1], a[2]) == (b[0].scheme, b[1], b[2])


def follows_polling_url(url: str, base_url: str, custom_host: bool) -> bool:
    """Whether a task's ``polling_url`` may be polled (with the key): on the API base's origin,
    or, with no custom host, an https URL of a ``*.bfl.ai`` host on port 443."""
    if same_origin(url, base_url):
        return True
    found = _parts(url)
    if custom_host or found is None:
        return False
    parts, host, port = found
    return parts.scheme == "https" and port == 443 and host.endswith(".bfl.ai") and not parts.fragment


def poll_url(polling_url: str | None, task_id: str, base_url: str, custom_host: bool) -> str:
    """Where to poll task ``task_id``: its ``polling_url`` when it may be followed, else
    ``{base_url}/v1/get_result?id=...``."""
    if polling_url and follows_polling_url(polling_url, base_url, custom_host):
        return polling_url
    return f"{base_url}/v1/get_result?{urlencode({'id': task_id})}"
