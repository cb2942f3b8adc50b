"""Registries of providers, routing strategies, cache backends and image stores,
filled once per app at start-up."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import msgspec

from gateway.errors import BadRequest, ConfigError, StartupError
from gateway.redact import shown
from gateway.settings import suggest
from gateway.strategy import StrategyConfig, tagged_config

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

    from gateway.provider import Provider
    from gateway.settings import Settings
    from gateway.strategy import RoutingStrategy


class Registry:
    """Everything configs and settings name, by that name."""

    def __init__(self, providers: dict[str, Provider], strategies: dict[str, RoutingStrategy],
                 cache_backends: dict[str, Any] | None = None, image_stores: dict[str, Any] | None = None) -> None:
        self.providers = providers
        self.strategies = strategies
        self.cache_backends = cache_backends or {}
        self.image_stores = image_stores or {}
        self._installed_providers = ", ".join(sorted(providers)) or "none"
        #: ``strategy`` of a config node: each strategy's own Config, tagged by ``mode``.
        configs = tuple(tagged_config(type(s)) for s in strategies.values())
        self.strategy_configs: Any = Union[configs] if configs else StrategyConfig  # noqa: UP007

    def provider(self, name: str) -> Provider:
        """The provider called ``name``, or a 400 listing the installed ones."""
        try:
            return self.providers[name]
        except KeyError:
            raise BadRequest(
                f"Unknown provider {shown(name)}{suggest(name, self.providers)}; installed providers: "
                f"{self._installed_providers}",
                param="x-portkey-provider",
                code="unknown_provider",
            ) from None

    def check_strategy(self, mode: str, where: str) -> None:
        if mode not in self.strategies:
            installed = ", ".join(sorted(self.strategies)) or "none"
            raise ConfigError(
                f"Invalid config in {where}: unknown strategy mode {mode!r}{suggest(mode, self.strategies)}; "
                f"installed routing strategies: {installed}",
                param="x-portkey-config",
            )

    def strategy(self, mode: str) -> RoutingStrategy:
        return self.strategies[mode]


def build_registry(pm: pluggy.PluginManager, settings: Settings) -> Registry:
    """Collect ``gateway_register_*`` results; duplicate names are a start-up error."""
    providers: dict[str, Provider] = {}
    owners: dict[str, str] = {}
    provider_classes = _collect(pm, "gateway_register_providers", owners, kind="provider")
    for name, cls in provider_classes.items():
        raw = settings.providers.get(name, {})
        try:
            provider_settings = msgspec.convert(raw, cls.Settings, strict=False)
        except msgspec.ValidationError as e:
            raise StartupError(f"settings [providers.{name}]: {e}") from None
        providers[name] = cls(provider_settings)
    for name in settings.providers:
        if name not in providers:
            raise StartupError(
                f"settings [providers.{name}]: provider {name!r} is not installed"
                f"{suggest(name, providers)}; installed providers: {', '.join(sorted(providers)) or 'none'}"
            )
    strategies = {name: cls() for name, cls in _collect(pm, "gateway_register_routing_strategies", {}, "routing strategy").items()}
    backends = _collect(pm, "gateway_register_cache_backends", {}, "cache backend")
    if settings.cache.backend not in backends:
        raise StartupError(
            f"settings [cache] backend: {settings.cache.backend!r} is not installed{suggest(settings.cache.backend, backends)}; "
            f"installed cache backends: {', '.join(sorted(backends)) or 'none'}"
        )
    stores = _collect(pm, "gateway_register_image_stores", {}, "image store")
    if settings.images.store not in stores:
        raise StartupError(
            f"settings [images] store: {settings.images.store!r} is not installed{suggest(settings.images.store, stores)}; "
            f"installed image stores: {', '.join(sorted(stores)) or 'none'}"
        )
    return Registry(providers, strategies, backends, stores)


def _collect(pm: pluggy.PluginManager, hook: str, owners: dict[str, str], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    caller = getattr(pm.hook, hook)
    for impl in reversed(caller.get_hookimpls()):
        for cls in impl.function() or ():
            name = getattr(cls, "name", None)
            if not name:
                raise StartupError(f"plugin {impl.plugin_name!r} registered a {kind} without a name: {cls!r}")
            if name in found and found[name] is not cls:
                raise StartupError(
                    f"{kind} {name!r} is registered by both {owners[name]!r} and {impl.plugin_name!r}"
                )
            found[name] = cls
            owners[name] = impl.plugin_name
    return found
