"""Stage 2 default: the routing config from ``x-portkey-config`` or the provider headers.

An inline config is parsed and validated once per distinct header value; the
parsed tree is reused for every later request carrying the same bytes.
"""
from __future__ import annotations

import re

import msgspec

from gateway import headers as h
from gateway import hookimpl, targets
from gateway.context import RequestContext
from gateway.errors import ConfigError
from gateway.settings import suggest
from gateway.targets import Secret, Target

#: What a saved config id looks like (``pc-abc123``); anything else is parsed as JSON.
_SAVED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def _inline(ctx: RequestContext, raw: str) -> Target:
    cache = ctx.gateway.config_cache
    node = cache.get(raw)
    if node is None:
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError as e:
            raise ConfigError(f"Invalid config in x-portkey-config: not valid JSON ({e})", param=h.CONFIG) from None
        node = targets.parse(data, ctx.gateway.registry, virtual_keys=ctx.gateway.virtual_keys)
        cache.put(raw, node)
    return node


def _from_headers(ctx: RequestContext, base: Target | None) -> Target:
    """A leaf built from ``x-portkey-provider``, ``Authorization`` and the provider's header group."""
    headers = ctx.headers
    name = headers.get(h.PROVIDER)
    base = base or Target()
    vk_name = headers.get(h.VIRTUAL_KEY)
    if vk_name is not None and base.provider is None and base.virtual_key is None:
        if vk_name not in ctx.gateway.virtual_keys:
            raise ConfigError(
                f"Unknown virtual key {vk_name!r} in x-portkey-virtual-key"
                f"{suggest(vk_name, ctx.gateway.virtual_keys)}",
                param=h.VIRTUAL_KEY, code="unknown_virtual_key",
            )
        # The provider's own headers (an Azure deployment, an AWS region) still choose per request.
        provider = ctx.gateway.registry.providers.get(ctx.gateway.virtual_keys[vk_name].provider)
        options = dict(base.options)
        if provider is not None:
            options.update(provider.options_from_headers(headers))
        return msgspec.structs.replace(base, virtual_key=vk_name, options=options)
    if name is None and base.provider is None:
        raise ConfigError(
            "Either x-portkey-provider or x-portkey-config (with a provider or targets) is required; "
            f"installed providers: {', '.join(sorted(ctx.gateway.registry.providers)) or 'none'}",
            param=h.PROVIDER, code="missing_provider",
        )
    options = dict(base.options)
    provider = ctx.gateway.registry.providers.get(name or base.provider)
    if provider is not None:
        options.update(provider.options_from_headers(headers))
    key = base.api_key or h.bearer(headers.get("Authorization"))
    return msgspec.structs.replace(
        base, provider=base.provider or name, api_key=Secret(key) if key else None, options=options,
    )


def _apply_header_overrides(ctx: RequestContext, node: Target) -> Target:
    host = ctx.headers.get(h.CUSTOM_HOST)
    if host is None:
        return node
    return _with_custom_host(node, host)


def _with_custom_host(node: Target, host: str) -> Target:
    # The header wins over the config's custom_host at every level of the tree.
    children = tuple(_with_custom_host(c, host) for c in node.targets)
    return msgspec.structs.replace(node, custom_host=host, targets=children)


@hookimpl(trylast=True)
def gateway_resolve_config(ctx: RequestContext) -> Target:
    raw = ctx.headers.get(h.CONFIG)
    if raw is not None:
        raw = raw.strip()
        if _SAVED_ID.match(raw):
            node = ctx.gateway.saved_configs.get(raw)
            if node is None:
                known = ctx.gateway.saved_configs
                # The value is not echoed: a key pasted into the wrong header must not reach logs.
                raise ConfigError(
                    "Unknown saved config id in x-portkey-config (not JSON, and no saved config has that id)"
                    f"{suggest(raw, known)}; saved configs: {', '.join(sorted(known)) or 'none'}",
                    param=h.CONFIG, code="unknown_config",
                )
        else:
            node = _inline(ctx, raw)
        if not node.targets and not node.provider and not node.virtual_key:
            node = _from_headers(ctx, node)
    else:
        node = _from_headers(ctx, None)
    return _apply_header_overrides(ctx, node)
