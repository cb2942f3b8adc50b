"""Gateway keys: who is calling, what that key may use, and the check of a request against it.

Keys come from ``[gateway_keys.<name>]`` (named, with scopes and limits) and the
``security.gateway_keys`` list (unnamed: everything allowed, no limits, named by
a fingerprint in logs).  Only each key's SHA-256 is kept.  A key given by a
caller is hashed once and compared with every slot of a fixed-size table in
constant time, so the time taken says neither which key matched nor how many
exist (beyond the table's size, a multiple of 64).

A scope is checked against the whole resolved config tree before the cache or
any upstream call: every leaf's virtual key and provider, the saved config id,
the provider credentials and custom hosts the caller itself sent.  A refusal is a
403 naming what is not allowed; only names the settings define are echoed.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from gateway import headers as h
from gateway.context import PROXY
from gateway.errors import Forbidden
from gateway.limits import KeyLimits, micros
from gateway.redact import fingerprint, is_credential_name
from gateway.settings import suggest

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.services import Services
    from gateway.settings import GatewayKeySettings, Settings
    from gateway.targets import Target

#: What a key's name may look like: it goes in log lines and counter keys.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Client headers that carry a provider key as they are (passthrough relays them).
CREDENTIAL_HEADERS = ("api-key", "x-api-key", "x-goog-api-key")
_SLOTS = 64


class GatewayKey:
    """The principal of a request made with a gateway key: its name, scope and limits.

    ``str()`` is stable and unique per key (the cache keys on it, so two keys never
    share an entry): ``key:<fingerprint>`` for an unnamed key, as before names
    existed, and ``gk:<name>`` for a named one (the same entries after the key's
    value is rotated).
    """

    __slots__ = ("name", "principal", "virtual_keys", "configs", "providers", "allow_provider_keys",
                 "allow_custom_hosts", "limits", "restricted")

    def __init__(self, name: str, principal: str, *, virtual_keys: frozenset[str] | None = None,
                 configs: frozenset[str] | None = None, providers: frozenset[str] | None = None,
                 allow_provider_keys: bool = True, allow_custom_hosts: bool = True,
                 limits: KeyLimits = KeyLimits()) -> None:
        #: What the log line says: the configured name, or ``key:<fingerprint>``.
        self.name = name
        self.principal = principal
        #: None: every one; an empty set: none.
        self.virtual_keys = virtual_keys
        self.configs = configs
        self.providers = providers
        self.allow_provider_keys = allow_provider_keys
        self.allow_custom_hosts = allow_custom_hosts
        self.limits = limits
        #: Whether a request needs checking against a scope at all.
        self.restricted = (virtual_keys is not None or configs is not None or providers is not None
                           or not allow_provider_keys or not allow_custom_hosts)

    def __str__(self) -> str:
        return self.principal

    def __repr__(self) -> str:
        return f"GatewayKey({self.name!r})"


class KeyTable:
    """Key hashes in a fixed-size table, matched in constant time."""

    def __init__(self, entries: list[tuple[bytes, GatewayKey]]) -> None:
        size = _SLOTS * max(1, -(-len(entries) // _SLOTS))
        # Slots past the keys hold random hashes no key can match.
        self._digests = [d for d, _ in entries] + [os.urandom(32) for _ in range(size - len(entries))]
        self._keys = [k for _, k in entries]

    def __len__(self) -> int:
        return len(self._keys)

    def match(self, given: str) -> GatewayKey | None:
        """The key ``given`` is, or None.  Any string (any bytes a header carried) is fine."""
        digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        found = 0
        for i, stored in enumerate(self._digests):
            # Every slot is compared, and the match is folded in without a branch.
            found |= (i + 1) * hmac.compare_digest(digest, stored)
        return self._keys[found - 1] if 0 < found <= len(self._keys) else None


def _read_key(where: str, spec: GatewayKeySettings, environ: Mapping[str, str], errors: list[str]) -> str | None:
    sources = [k for k in ("key", "key_env", "key_file") if getattr(spec, k) is not None]
    if len(sources) != 1:
        errors.append(f"{where}: set exactly one of key_env, key_file, key")
        return None
    if spec.key is not None:
        value: str | None = spec.key
    elif spec.key_env is not None:
        value = environ.get(spec.key_env)
        if not value:
            errors.append(f"{where}: environment variable {spec.key_env} is not set")
            return None
    else:
        try:
            with open(str(spec.key_file), encoding="utf-8") as f:
                value = f.read()
        except (OSError, UnicodeDecodeError) as e:
            errors.append(f"{where}: cannot read key_file {spec.key_file}: {getattr(e, 'strerror', None) or e}")
            return None
    value = (value or "").strip()
    if not value:
        errors.append(f"{where}: the key is empty")
        return None
    return value


def _names(where: str, field: str, given: list[str] | None, known: Mapping[str, Any], what: str,
           errors: list[str]) -> frozenset[str] | None:
    if given is None:
        return None
    for i, name in enumerate(given):
        if name not in known:
            errors.append(f"{where} {field}[{i}]: unknown {what} {name!r}{suggest(name, known)}")
    return frozenset(given)


def load_keys(settings: Settings, services: Services, environ: Mapping[str, str] | None = None,
              errors: list[str] | None = None) -> KeyTable:
    """The gateway keys of the settings; problems (with their paths) are appended to ``errors``."""
    environ = os.environ if environ is None else environ
    errors = [] if errors is None else errors
    entries: list[tuple[bytes, GatewayKey]] = []
    owner: dict[bytes, str] = {}
    for raw in settings.security.gateway_keys:
        secret = raw.encode("utf-8", "surrogateescape")
        digest = hashlib.sha256(secret).digest()
        if digest not in owner:
            owner[digest] = "security.gateway_keys"
            fp = "key:" + fingerprint(secret)
            entries.append((digest, GatewayKey(fp, fp)))
    default_cost = settings.limits.image_cost
    for name, spec in settings.gateway_keys.items():
        where = f"settings [gateway_keys.{name}]"
        if not NAME.fullmatch(name):
            errors.append(f"{where}: a key's name is letters, digits, '_', '-' and '.' (at most 64), "
                          "starting with a letter or digit")
            continue
        value = _read_key(where, spec, environ, errors)
        image_cost = spec.image_cost if spec.image_cost is not None else default_cost
        if image_cost is None and (spec.cost_per_day is not None or spec.cost_per_month is not None):
            errors.append(f"{where}: a cost budget needs image_cost (here or in [limits])")
        scope = {
            "virtual_keys": _names(where, "virtual_keys", spec.virtual_keys, services.virtual_keys, "virtual key", errors),
            "configs": _names(where, "configs", spec.configs, services.saved_configs, "saved config", errors),
            "providers": _names(where, "providers", spec.providers, services.registry.providers, "provider", errors),
        }
        if value is None:
            continue
        digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
        if digest in owner:
            errors.append(f"{where}: the same key as {owner[digest]}")
            continue
        owner[digest] = f"[gateway_keys.{name}]"
        limits = KeyLimits(spec.requests_per_minute, spec.images_per_minute, spec.images_per_day,
                           micros(spec.cost_per_day), micros(spec.cost_per_month), micros(image_cost) or 0)
        entries.append((digest, GatewayKey(name, "gk:" + name, **scope, allow_provider_keys=spec.allow_provider_keys,
                                           allow_custom_hosts=spec.allow_custom_hosts, limits=limits)))
    return KeyTable(entries)


def _nodes(root: Target) -> Iterator[Target]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.targets))


class Access:
    """Checks a request's resolved config against its key's scope (one per app)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        # Each installed provider's ``x-portkey-*`` option headers whose option is a credential
        # (``x-portkey-aws-secret-access-key``): the caller's value wins over a virtual key's.
        names = set()
        for provider in services.registry.providers.values():
            names.update(header.lower() for header, option in provider.header_options.items()
                         if is_credential_name(option))
        self.option_headers = tuple(sorted(names))

    def check(self, key: GatewayKey, ctx: RequestContext) -> None:
        """Raise a 403 naming the first thing ``key`` may not use in this request."""
        assert ctx.config is not None
        services = self.services
        headers = ctx.headers
        raw = headers.get(h.CONFIG)
        saved_id = raw.strip() if raw is not None and raw.strip() in services.saved_configs else None
        saved = services.saved_configs.get(saved_id) if saved_id is not None else None
        if saved_id is not None and key.configs is not None and saved_id not in key.configs:
            raise Forbidden(f"Gateway key {key.name!r} may not use saved config {saved_id!r}",
                            param=h.CONFIG, code="config_not_allowed")
        by_header = headers.get(h.VIRTUAL_KEY)
        for node in _nodes(ctx.config):
            if node.targets:
                continue
            vk = node.virtual_key
            if vk is not None and key.virtual_keys is not None and vk not in key.virtual_keys:
                param = h.VIRTUAL_KEY if vk == by_header and saved is None else h.CONFIG
                # Only a name the settings define is echoed (a resolver plugin may pass others on).
                named = f"virtual key {vk!r}" if vk in services.virtual_keys else "that virtual key"
                raise Forbidden(f"Gateway key {key.name!r} may not use {named}", param=param,
                                code="virtual_key_not_allowed")
            provider = node.provider
            if provider is None and vk is not None and vk in services.virtual_keys:
                provider = services.virtual_keys[vk].provider
            if provider is not None and key.providers is not None and provider not in key.providers:
                # A provider name that is not installed is the caller's string: not echoed.
                named = f"provider {provider!r}" if provider in services.registry.providers else "that provider"
                raise Forbidden(f"Gateway key {key.name!r} may not use {named}", param=h.PROVIDER,
                                code="provider_not_allowed")
        if not key.allow_provider_keys:
            self._no_caller_credentials(key, ctx, saved)
        if not key.allow_custom_hosts:
            self._no_custom_host(key, ctx, saved)

    def _no_caller_credentials(self, key: GatewayKey, ctx: RequestContext, saved: Target | None) -> None:
        headers = ctx.headers
        assert ctx.config is not None
        for name in (*self.option_headers, *self._relayed_key_headers(ctx)):
            if name in headers:
                raise Forbidden(f"Gateway key {key.name!r} may not send provider credentials (header {name})",
                                param=name, code="provider_keys_not_allowed")
        if saved is not None:
            # A saved config's keys are the operator's; only a root the headers filled in
            # (``Authorization`` with ``x-portkey-provider``) carries the caller's.
            root = ctx.config
            if root is not saved and root.api_key is not None and root.api_key != saved.api_key:
                raise Forbidden(f"Gateway key {key.name!r} may not send provider credentials (Authorization)",
                                param="Authorization", code="provider_keys_not_allowed")
            return
        for node in _nodes(ctx.config):
            if node.api_key is not None or any(is_credential_name(o) for o in node.options):
                sent = h.bearer(headers.get("Authorization"))
                where = "Authorization" if node is ctx.config and node.api_key == sent else h.CONFIG
                raise Forbidden(f"Gateway key {key.name!r} may not send provider credentials ({where})",
                                param=where, code="provider_keys_not_allowed")

    @staticmethod
    def _relayed_key_headers(ctx: RequestContext) -> tuple[str, ...]:
        """The key headers (``api-key``, ``x-api-key``, ...) that would reach a provider as the
        caller sent them: relayed on passthrough or forwarded on request, to a leaf without a
        virtual key (a virtual key's own credential replaces the caller's)."""
        assert ctx.config is not None
        leaves = [n for n in _nodes(ctx.config) if not n.targets]
        if all(n.virtual_key is not None for n in leaves):
            return ()
        if ctx.endpoint == PROXY:
            return CREDENTIAL_HEADERS
        asked = ctx.headers.get(h.FORWARD_HEADERS)
        wanted = {n.strip().lower() for n in asked.split(",")} if asked else set()
        for leaf in leaves:
            wanted.update(n.lower() for n in leaf.forward_headers or ())
        return tuple(n for n in CREDENTIAL_HEADERS if n in wanted)

    def _no_custom_host(self, key: GatewayKey, ctx: RequestContext, saved: Target | None) -> None:
        if ctx.inbound.custom_host is not None:
            raise Forbidden(f"Gateway key {key.name!r} may not name a custom host", param=h.CUSTOM_HOST,
                            code="custom_hosts_not_allowed")
        if saved is not None:
            return  # a saved config's custom hosts are the operator's
        assert ctx.config is not None
        if any(node.custom_host for node in _nodes(ctx.config)):
            raise Forbidden(f"Gateway key {key.name!r} may not name a custom host (custom_host in the config)",
                            param=h.CONFIG, code="custom_hosts_not_allowed")
