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


# IPv6 ranges whose last 32 bits are an IPv4 address that traffic may end up at:
# IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), well-known NAT64.
_EMBEDS_IPV4 = tuple(ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, -compatible, -translated, NAT64 or 6to4 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _EMBEDS_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _without_userinfo(value: str) -> str:
    """``value`` with any ``user:password@`` masked: the message is answered and logged."""
    scheme, sep, rest = value.partition("//")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return scheme + sep + authority + slash + path


def _bad(value: str, why: str) -> BadRequest:
    return BadRequest(
        f"Invalid custom host {_without_userinfo(value)!r}: {why}", param="x-portkey-custom-host",
        code="invalid_custom_host",
    )


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
    # raw_host: the IDNA-encoded form (url.host decodes punycode back to Unicode).
    host = (url.raw_host or "").lower()
    if not host:
        raise _bad(value, "no host")
    if url.query_string or url.fragment:
        raise _bad(value, "a query or fragment is not allowed")
    if host in trusted or (url.host or "").lower() in trusted:  # either form of an IDN may be listed
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
        if not value.partition("//")[2].partition("/")[0].isascii():
            raise _bad(value, "non-ASCII host names are refused; use the punycode form")
        return str(url).rstrip("/")
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _embedded_ipv4(ip) or ip
    if not ip.is_global or ip.is_multicast:
        raise _bad(
            value, "private, loopback, link-local and reserved addresses are refused unless listed in security.trusted_hosts"
        )
    return str(url).rstrip("/")
