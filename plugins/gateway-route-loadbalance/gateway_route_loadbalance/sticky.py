"""Sticky load balancing: its settings, and the key a request's choice is remembered under.

The key is ``st:`` and a SHA-256 of the caller (``ctx.principal``), the config (its whole
tree, as the cache keys it) and the node's place in it, and the values of ``hash_fields``:
no field value, caller name or credential is stored in clear.
"""
from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from gateway.sdk import RequestContext, Target

#: Where a hash field's value is read: ``metadata.<key>`` (x-portkey-metadata),
#: ``params.<name>[.<name>...]`` (the request body as sent), ``headers.<name>``.
SOURCES = ("metadata", "params", "headers")
MAX_TTL = 30 * 86400
_canonical = msgspec.json.Encoder(order="sorted", enc_hook=str).encode
_MISSING = "\0missing"


class StickyConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``strategy.sticky`` / ``strategy.sticky_session`` of a loadbalance node."""

    #: Off: the node draws by weight as if the field were absent.
    enabled: bool = True
    #: Dotted names of the request values that make requests "the same" (``metadata.user``).
    hash_fields: list[str] = msgspec.field(default_factory=list)
    #: Seconds a choice holds, from the request that made it (default: 300 for ``sticky``,
    #: 3600 for ``sticky_session``).
    ttl: int | None = None

    def problem(self) -> tuple[str, str] | None:
        """What is wrong with these settings and where below the field, or None."""
        if self.ttl is not None and not 0 < self.ttl <= MAX_TTL:
            return f"`ttl` is in seconds and must be between 1 and {MAX_TTL}", ".ttl"
        if not self.enabled:
            return None
        if not self.hash_fields:
            return "sticky routing needs `hash_fields` (such as [\"metadata.user\"])", ".hash_fields"
        for i, name in enumerate(self.hash_fields):
            source, _, rest = name.partition(".")
            if source not in SOURCES or not rest or "" in rest.split("."):
                return (f"a hash field is `metadata.<key>`, `params.<name>` or `headers.<name>`, not {name!r}",
                        f".hash_fields[{i}]")
        return None


def field_value(ctx: RequestContext, name: str) -> Any:
    """The request's value of one hash field (``_MISSING`` when it has none)."""
    source, _, rest = name.partition(".")
    inbound = ctx.inbound
    if source == "headers":
        return inbound.headers.get(rest, _MISSING)
    node: Any = inbound.metadata if source == "metadata" else inbound.params
    for part in rest.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def config_identity(config: Target | None) -> bytes:
    """A digest of the whole config tree (memoized on its root)."""
    if config is None:
        return b""
    digest = getattr(config, "_sticky_identity", None)
    if digest is None:
        digest = hashlib.sha256(_canonical(config)).digest()
        config._sticky_identity = digest  # type: ignore[attr-defined]
    return digest


def sticky_key(ctx: RequestContext, node: Target, hash_fields: list[str]) -> str | None:
    """The key of this request's choice at ``node``; None when the request has none of the
    fields (such requests are not "the same": each draws)."""
    values = [field_value(ctx, name) for name in hash_fields]
    if all(v is _MISSING for v in values):
        return None
    digest = hashlib.sha256()
    digest.update(str(ctx.principal).encode() + b"\0")
    digest.update(config_identity(ctx.config) + node.path.encode() + b"\0")
    digest.update(_canonical(values))
    return "st:" + digest.hexdigest()
