"""The custom-host guard: where a caller may point the gateway."""
from __future__ import annotations

import functools
import ipaddress
import re

from yarl import URL

from gateway.errors import BadRequest

_METADATA_HOSTS = frozenset(
    {"169.254.169.254", "metadata.google.internal", "metadata", "metadata.azure.com", "instance-data", "fd00:ec2::254"}
)
_SPECIAL_TLDS = (".local", ".internal", ".lan", ".localhost", ".home", ".corp", ".intranet", ".test", ".onion", ".arpa")
# Numeric host forms browsers and libc accept (2130706433, 0x7f.1, 017700000001)
# but ipaddress does not: refuse rather than guess what they resolve to.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*$", re.I)


def _bad(value: str, why: str) -> BadRequest:
    return BadRequest(f"Invalid custom host {value!r}: {why}", param="x-portkey-custom-host", code="invalid_custom_host")


@functools.lru_cache(maxsize=1024)
def check_custom_host(value: str, trusted: frozenset[str]) -> str:
    """Return the custom host without a trailing slash, or raise a 400 saying why not."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise _bad(value, "control characters or spaces")
    try:
        url = URL(value)
    except ValueError:
        raise _bad(value, "not a URL") from None
    if url.scheme not in ("http", "https"):
        raise _bad(value, "only http and https are allowed")
    if url.user is not None or url.password is not None or "@" in (url.raw_authority or ""):
        raise _bad(value, "credentials in the URL are not allowed")
    host = (url.host or "").lower()
    if not host:
        raise _bad(value, "no host")
    if url.query_string or url.fragment:
        raise _bad(value, "a query or fragment is not allowed")
    if host in trusted:
        return str(url).rstrip("/")
    if host in _METADATA_HOSTS:
        raise _bad(value, "cloud metadata addresses are refused")
    if host == "localhost" or host.endswith(_SPECIAL_TLDS) or host.endswith("."):
        raise _bad(value, "local and special-use names are refused unless listed in security.trusted_hosts")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if _NUMERIC_HOST.match(host):
            raise _bad(value, "numeric host forms are refused; write the address in dotted form") from None
        if not host.isascii():
            raise _bad(value, "non-ASCII host names are refused; use the punycode form")
        return str(url).rstrip("/")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        raise _bad(
            value, "private, loopback, link-local and reserved addresses are refused unless listed in security.trusted_hosts"
        )
    return str(url).rstrip("/")
