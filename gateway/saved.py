"""Virtual keys and saved configs from the settings file, resolved once at start-up.

``[virtual_keys.<name>]`` holds a provider, its secret (from an environment
variable or a file; an inline ``api_key`` works but is discouraged) and
provider options.  ``[configs.<id>]`` holds a Config object callers select
with ``x-portkey-config: <id>``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from yarl import URL

from gateway import targets
from gateway.errors import GatewayError
from gateway.settings import suggest
from gateway.targets import Secret, StoredSecret, Target

if TYPE_CHECKING:  # pragma: no cover
    from gateway.registry import Registry

_KEY_FIELDS = frozenset({"provider", "api_key", "api_key_env", "api_key_file", "allowed_custom_hosts"})


class VirtualKey(msgspec.Struct, frozen=True):
    """A named provider credential."""

    name: str
    provider: str
    api_key: Secret | None
    options: dict[str, Any]
    #: Custom hosts a request may send this credential to besides the provider's own base
    #: URL: base URLs (``https://proxy.example.com/v1``, matched as a prefix) or host names.
    allowed_custom_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"VirtualKey({self.name!r}, provider={self.provider!r})"

    def allows_host(self, custom_host: str) -> bool:
        """Whether ``custom_host`` (as checked by the custom-host guard) is listed."""
        host = (URL(custom_host).raw_host or "").lower()
        for allowed in self.allowed_custom_hosts:
            if "://" in allowed:
                base = allowed.rstrip("/")
                if custom_host == base or custom_host.startswith(base + "/"):
                    return True
            elif host == allowed.lower().rstrip("."):
                return True
        return False


def load_virtual_keys(raw: Mapping[str, Any], registry: Registry, environ: Mapping[str, str] | None = None,
                      errors: list[str] | None = None) -> dict[str, VirtualKey]:
    """Validate ``[virtual_keys.*]``; problems are appended to ``errors``."""
    environ = os.environ if environ is None else environ
    errors = [] if errors is None else errors
    out = {}
    for name, spec in raw.items():
        where = f"settings [virtual_keys.{name}]"
        if not isinstance(spec, dict):
            errors.append(f"{where}: expected a table")
            continue
        provider_name = spec.get("provider")
        if not isinstance(provider_name, str):
            errors.append(f"{where}: `provider` is required")
            continue
        provider = registry.providers.get(provider_name)
        if provider is None:
            errors.append(f"{where}: provider {provider_name!r} is not installed{suggest(provider_name, registry.providers)}")
            continue
        sources = [k for k in ("api_key", "api_key_env", "api_key_file") if spec.get(k) is not None]
        if len(sources) > 1:
            errors.append(f"{where}: set only one of api_key, api_key_env, api_key_file")
            continue
        key: str | None = None
        if sources == ["api_key"]:
            key = str(spec["api_key"])
        elif sources == ["api_key_env"]:
            key = environ.get(str(spec["api_key_env"]))
            if not key:
                errors.append(f"{where}: environment variable {spec['api_key_env']} is not set")
                continue
        elif sources == ["api_key_file"]:
            try:
                with open(spec["api_key_file"], encoding="utf-8") as f:
                    key = f.read().strip()
            except OSError as e:
                errors.append(f"{where}: cannot read api_key_file {spec['api_key_file']}: {e.strerror}")
                continue
        allowed = spec.get("allowed_custom_hosts", [])
        if not isinstance(allowed, list) or not all(isinstance(x, str) and x for x in allowed):
            errors.append(f"{where}: `allowed_custom_hosts` must be a list of base URLs or host names")
            continue
        options = {k: v for k, v in spec.items() if k not in _KEY_FIELDS}
        try:
            provider.parse_options(Target(path="config", options=options))
        except GatewayError as e:
            errors.append(f"{where}: {e.message.split(' - at ')[0]}")
            continue
        out[name] = VirtualKey(name, provider_name, Secret(key) if key else None, options,
                               tuple(x.rstrip("/") if "://" in x else x for x in allowed))
    return out


def load_saved_configs(raw: Mapping[str, Any], registry: Registry, virtual_keys: Mapping[str, VirtualKey],
                       errors: list[str] | None = None) -> dict[str, Target]:
    """Validate ``[configs.*]`` with the same rules as an inline config."""
    errors = [] if errors is None else errors
    out = {}
    for cid, cfg in raw.items():
        try:
            node = targets.parse(cfg, registry, source=f"saved config {cid!r}", virtual_keys=virtual_keys)
        except GatewayError as e:
            errors.append(f"settings [configs.{cid}]: {e.message}")
            continue
        problem = _check_options(node, registry, virtual_keys)
        if problem is not None:
            errors.append(f"settings [configs.{cid}]: {problem}")
            continue
        _mark_saved(node)
        out[cid] = node
    return out


def _check_options(node: Target, registry: Registry, virtual_keys: Mapping[str, VirtualKey]) -> str | None:
    """The first provider option of a saved config its provider refuses (with its path), else None.

    Each target whose provider is known here (named, or its virtual key's) is checked as a
    request through it would check it, its virtual key's options under its own; a root that
    leaves the provider to the request's header is the request's to check.
    """
    if node.targets:
        for child in node.targets:
            problem = _check_options(child, registry, virtual_keys)
            if problem is not None:
                return problem
        return None
    vk = virtual_keys.get(node.virtual_key) if node.virtual_key is not None else None
    provider = registry.providers.get(node.provider or (vk.provider if vk is not None else ""))
    if provider is None:
        return None  # not installed: a request through it is answered so, a fallback may skip it
    options = {**vk.options, **node.options} if vk is not None else node.options
    try:
        provider.parse_options(Target(path=node.path, options=options))
    except GatewayError as e:
        return e.message
    return None


def _mark_saved(node: Target) -> None:
    node.saved = True
    if node.api_key is not None:
        node.api_key = StoredSecret(node.api_key)
    for child in node.targets:
        _mark_saved(child)
