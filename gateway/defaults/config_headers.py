"""Stage 2 default: the routing config from ``x-portkey-config`` or the provider headers.

An inline config is parsed and validated once per distinct header value; the
parsed tree is reused for every later request carrying the same bytes.
``x-portkey-custom-host`` is not folded into the tree: each attempt reads it
(``inbound.custom_host``), so a cached tree serves every host.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

from gateway import json_decode
from gateway import headers as h
from gateway import hookimpl, targets
from gateway.catalog import model_slug, provider_slug
from gateway.context import RequestContext
from gateway.errors import ConfigError
from gateway.redact import shown
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings, suggest
from gateway.lru import LRU
from gateway.targets import Secret, Target

#: What a saved config id looks like (``pc-abc123``); anything else is parsed as JSON.
_SAVED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class Plugin:
    """Per app: the registry, virtual keys and saved configs come from ``gateway_configure``."""

    services: Services

    def __init__(self) -> None:
        self.parsed = LRU(1024)

    @hookimpl(trylast=True)
    def gateway_configure(self, settings: Settings, registry: Registry, services: Services) -> None:
        self.services = services

    @hookimpl(trylast=True)
    def gateway_resolve_config(self, ctx: RequestContext) -> Target:
        slugged = self._model_slug(ctx)
        raw = ctx.headers.get(h.CONFIG)
        if raw is None:
            return self._from_headers(ctx, None, slugged)
        raw = raw.strip()
        if _SAVED_ID.match(raw):
            known = self.services.saved_configs
            node = known.get(raw)
            if node is None:
                # The value is not echoed: a key pasted into the wrong header must not reach logs.
                names = _callers(ctx, "configs", known)
                raise ConfigError(
                    "Unknown saved config id in x-portkey-config (not JSON, and no saved config has that id)"
                    f"{suggest(raw, names)}; saved configs: {', '.join(names) or 'none'}",
                    param=h.CONFIG, code="unknown_config",
                )
        else:
            node = self._inline(ctx, raw)
        if not node.targets and not node.provider and not node.virtual_key:
            node = self._from_headers(ctx, node, slugged)
        elif slugged is not None:
            raise ConfigError(f"`model` names the provider slug @{slugged[0]} and x-portkey-config routes the request "
                              "itself: send the plain model name with a config, or the slug without one",
                              param="model", code="conflicting_provider")
        return node

    def _model_slug(self, ctx: RequestContext) -> tuple[str, str] | None:
        """``(virtual key, model)`` of a body's ``"model": "@slug/model"``, checked; None without one."""
        found = model_slug(ctx.inbound.params.get("model"))
        if found is not None:
            self._known_slug(ctx, found[0], "model")
        return found

    def _known_slug(self, ctx: RequestContext, slug: str, param: str) -> None:
        known = self.services.virtual_keys
        if slug not in known:
            names = _callers(ctx, "virtual_keys", known)
            raise ConfigError(f"Unknown provider slug {shown('@' + slug)} in `{param}`{suggest(slug, names)}; "
                              f"provider slugs you may use: {', '.join('@' + n for n in names) or 'none'}",
                              param=param, code="unknown_provider_slug")

    def _inline(self, ctx: RequestContext, raw: str) -> Target:
        node = self.parsed.get(raw)
        if node is None:
            try:
                data = json_decode.decode(raw)
            except msgspec.DecodeError as e:
                raise ConfigError(f"Invalid config in x-portkey-config: not valid JSON ({e})", param=h.CONFIG) from None
            # Only a tree that parsed is kept (for every caller): an error names the caller's own keys.
            node = targets.parse(data, self.services.registry, virtual_keys=self.services.virtual_keys,
                                 visible=getattr(ctx.principal, "virtual_keys", None))
            self.parsed.put(raw, node)
        return node

    def _from_headers(self, ctx: RequestContext, base: Target | None, slugged: tuple[str, str] | None) -> Target:
        """A leaf built from ``x-portkey-provider``, ``Authorization`` and the provider's header group,
        or from a provider slug (``x-portkey-provider: @openai-prod``, ``"model": "@openai-prod/..."``)."""
        headers = ctx.headers
        services = self.services
        name = headers.get(h.PROVIDER)
        base = base or Target()
        vk_name = headers.get(h.VIRTUAL_KEY)
        slug = provider_slug(name) if name is not None else None
        if slug is not None:
            self._known_slug(ctx, slug, h.PROVIDER)
            name = None
        for chosen in (slug, slugged[0] if slugged else None):
            if chosen is None:
                continue
            if vk_name is not None and vk_name != chosen:
                raise ConfigError(f"The provider slug @{chosen} and x-portkey-virtual-key name different "
                                  "virtual keys: send one of them", param=h.VIRTUAL_KEY, code="conflicting_provider")
            vk_name = chosen
        if slugged is not None:
            # The model after the slash is what goes upstream (a rebuilt body, never the slug).
            base = msgspec.structs.replace(base, override_params={**(base.override_params or {}), "model": slugged[1]})
            ctx.inbound.params["model"] = slugged[1]
        if (vk_name is not None and name is not None and headers.get(h.VIRTUAL_KEY) is None
                and services.virtual_keys[vk_name].provider != name):
            raise ConfigError(f"`model` names the provider slug @{vk_name} and x-portkey-provider names {shown(name)}: "
                              "send one of them", param=h.PROVIDER, code="conflicting_provider")
        if vk_name is not None and base.provider is None and base.virtual_key is None:
            if vk_name not in services.virtual_keys:
                raise ConfigError(
                    f"Unknown virtual key {shown(vk_name)} in x-portkey-virtual-key{suggest(vk_name, services.virtual_keys)}",
                    param=h.VIRTUAL_KEY, code="unknown_virtual_key",
                )
            # The provider's own headers (an Azure deployment, an AWS region) still choose per request.
            provider = services.registry.providers.get(services.virtual_keys[vk_name].provider)
            options = dict(base.options)
            if provider is not None:
                options.update(provider.options_from_headers(headers))
            return msgspec.structs.replace(base, virtual_key=vk_name, options=options)
        if name is None and base.provider is None:
            raise ConfigError(
                "Either x-portkey-provider or x-portkey-config (with a provider or targets) is required; "
                f"installed providers: {', '.join(sorted(services.registry.providers)) or 'none'}",
                param=h.PROVIDER, code="missing_provider",
            )
        options = dict(base.options)
        provider = services.registry.providers.get(name or base.provider)
        if provider is not None:
            options.update(provider.options_from_headers(headers))
        key = base.api_key or h.bearer(headers.get("Authorization"))
        return msgspec.structs.replace(
            base, provider=base.provider or name, api_key=Secret(key) if key else None, options=options,
        )


def _callers(ctx: RequestContext, scope: str, known: Iterable[str]) -> list[str]:
    """The names in ``known`` an error may show the caller: those its gateway key's ``scope``
    (``virtual_keys``, ``configs``) allows, or all of them without a scope."""
    allowed = getattr(ctx.principal, scope, None)
    return sorted(n for n in known if allowed is None or n in allowed)
