"""Where the gateway may connect on a caller's behalf: the custom-host check and the
address guard every such connection goes through.

Two layers, both driven by one :class:`AddressPolicy`:

* :func:`check_custom_host` refuses, before anything is sent, a custom host whose URL
  names a private, loopback, link-local, metadata or special-use host;
* :class:`GuardedResolver` is the resolver of the connection pool that carries every
  connection a caller can influence (custom hosts, image URLs and result URLs a provider
  answered with).  It resolves the name, checks every address it resolves to, and hands
  the connector only checked addresses, so a name that resolves to an internal address,
  or changes its answer between the check and the connection (DNS rebinding), never
  gets through.
"""
from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from gateway.errors import BadRequest

_METADATA_HOSTS = frozenset(
    {"169.254.169.254", "metadata.google.internal", "metadata", "metadata.azure.com", "instance-data", "fd00:ec2::254"}
)
_SPECIAL_TLDS = (".local", ".internal", ".lan", ".localhost", ".home", ".corp", ".intranet", ".test", ".onion", ".arpa")
# Numeric host forms browsers and libc accept (2130706433, 0x7f.1, 017700000001)
# but ipaddress does not: refuse rather than guess what they resolve to.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*$", re.I)
#: What the default ``security.trusted_hosts`` allows while the gateway listens on loopback.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

# IPv6 ranges whose last 32 bits are an IPv4 address that traffic may end up at:
# IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), well-known NAT64.
_EMBEDS_IPV4 = tuple(ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
# Ranges ``is_global`` lets through that no provider lives in: multicast, and the metadata
# services of clouds that answer on a global-looking address (Alibaba's 100.100.100.200 is
# in CGNAT space, already not global; AWS's IPv6 one is unique-local, already not global).
_NEVER = tuple(ipaddress.ip_network(n) for n in ("224.0.0.0/4", "ff00::/8"))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, -compatible, -translated, NAT64 or 6to4 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _EMBEDS_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_loopback_bind(host: str) -> bool:
    """Whether a listening address (``server.host``) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AddressPolicy:
    """Which hosts and addresses a caller-influenced connection may reach: public
    addresses, plus the names and ranges the operator trusts (``security.trusted_hosts``).
    Immutable and hashable (the custom-host check is memoized on it)."""

    __slots__ = ("names", "networks", "_key")

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        names: set[str] = set()
        networks: list[Network] = []
        for entry in trusted:
            entry = entry.strip().lower()
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.rstrip("."))
        #: Host names allowed whatever they resolve to.
        self.names = frozenset(names)
        #: Address ranges allowed although private (a single address is a /32 or /128).
        self.networks = tuple(networks)
        self._key = (self.names, self.networks)

    @classmethod
    def from_settings(cls, trusted_hosts: list[str] | None, server_host: str) -> AddressPolicy:
        """``security.trusted_hosts``; when unset, loopback only while the gateway itself
        listens on loopback (bound to any other address, nothing is trusted by default)."""
        if trusted_hosts is None:
            trusted_hosts = list(LOOPBACK_HOSTS) if is_loopback_bind(server_host) else []
        return cls(trusted_hosts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AddressPolicy) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"AddressPolicy(names={sorted(self.names)}, networks={[str(n) for n in self.networks]})"

    def trusts_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be reached (None when it may)."""
        # Trusted ranges match the address as written: an IPv4 address wrapped in IPv6 is
        # allowed only when that form is listed too.
        if any(ip.version == net.version and ip in net for net in self.networks):
            return None
        return _not_public(ip)


def _not_public(ip: IPAddress) -> str | None:
    if str(ip) in _METADATA_HOSTS:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return _not_public(inner)
    if not ip.is_global or any(ip.version == net.version and ip in net for net in _NEVER):
        return "a private, loopback, link-local or reserved address"
    return None


class BlockedAddress(OSError):
    """A name resolved to an address the policy refuses (raised by the guarded resolver,
    so aiohttp reports it as a resolution failure and never connects)."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"{host} resolves to {why}")
        self.host = host
        self.why = why


class GuardedResolver(AbstractResolver):
    """A resolver that answers only with addresses the policy allows.

    Every address a name resolves to is checked: one refused address refuses the name
    (a name that mixes public and internal answers is the rebinding trick).  The
    connector connects to exactly the addresses returned here."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        found = await self._inner.resolve(host, port, family)
        if self.policy.trusts_name(host):
            return found
        for item in found:
            why = self.policy.refusal(ipaddress.ip_address(item["host"].partition("%")[0]))
            if why is not None:
                raise BlockedAddress(host, why)
        return found

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def literal_refusal(url: str, policy: AddressPolicy) -> str | None:
    """Why the address literal in ``url`` may not be reached (None for a name, which the
    guarded resolver checks, or an allowed address).  The connector skips the resolver
    for address literals, so these are checked before sending."""
    host = URL(url).raw_host or ""
    try:
        ip = ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None
    return policy.refusal(ip)


def without_secrets(value: str) -> str:
    """``value`` with any ``user:password@``, query and fragment dropped: the message
    naming a custom host is answered and logged, and a key may hide in any of them."""
    scheme, sep, rest = value.partition("//")
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return scheme + sep + authority + slash + path


def _bad(value: str, why: str) -> BadRequest:
    return BadRequest(
        f"Invalid custom host {without_secrets(value)!r}: {why}", param="x-portkey-custom-host",
        code="invalid_custom_host",
    )


@functools.lru_cache(maxsize=1024)
def check_custom_host(value: str, policy: AddressPolicy) -> str:
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
    if policy.trusts_name(host) or policy.trusts_name(url.host or ""):  # either form of an IDN may be listed
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
        # A name: what it resolves to is checked when the gateway connects (GuardedResolver).
        return str(url).rstrip("/")
    why = policy.refusal(ip)
    if why is not None:
        if "metadata" in why:
            raise _bad(value, "cloud metadata addresses are refused")
        raise _bad(
            value, "private, loopback, link-local and reserved addresses are refused unless listed in security.trusted_hosts"
        )
    return str(url).rstrip("/")

