"""Building the plugin manager: built-in defaults, entry points, checks.

There is no module-level plugin manager: :func:`get_plugin_manager` builds a
fresh one for every app (and every test).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Iterable
from typing import Any

import pluggy

from gateway import __version__, hookspecs
from gateway.errors import StartupError
from gateway.settings import suggest

ENTRYPOINT_GROUP = "gateway"

#: Built-in behaviour, registered exactly like third-party plugins.  Each one is
#: overridable (``trylast``) unless it is essential.
DEFAULT_PLUGINS = (
    "gateway.defaults.auth_keys",
    "gateway.defaults.config_headers",
    "gateway.defaults.routing",
    "gateway.defaults.cache",
    "gateway.defaults.images",
    "gateway.defaults.errors_json",
    "gateway.defaults.log_canonical",
    "gateway.defaults.metrics",
    "gateway.defaults.costs",
    "gateway.defaults.ui",
    "gateway.defaults.tracing",
    "gateway.defaults.request_log",
)
#: Without these the gateway cannot answer at all, so they cannot be disabled.
ESSENTIAL_PLUGINS = frozenset({"gateway.defaults.routing", "gateway.defaults.errors_json"})


def default_plugin(modname: str) -> Any:
    """A built-in plugin: the module, or, when it keeps per-app state (services it is
    handed by ``gateway_configure``), a fresh instance of its ``Plugin`` class."""
    module = importlib.import_module(modname)
    factory = getattr(module, "Plugin", None)
    return factory() if factory is not None else module


class GatewayPluginManager(pluggy.PluginManager):
    """A pluggy manager that also treats unmarked ``gateway_*`` functions as hook
    implementations (so a misspelled one fails ``check_pending``) and tells
    listeners when its plugin set changes."""

    def __init__(self) -> None:
        super().__init__("gateway")
        self._listeners: list[Any] = []

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("gateway_"):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return {}  # type: ignore[typeddict-item]
        return opts

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        ret = super().register(plugin, name)
        self._changed()
        return ret

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        ret = super().unregister(plugin, name)
        self._changed()
        return ret

    def on_change(self, listener: Any) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()


def _duplicate_entrypoints() -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for ep in importlib.metadata.entry_points(group=ENTRYPOINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        if ep.name in seen and seen[ep.name] != dist:
            problems.append(f"plugin name {ep.name!r} is used by both {seen[ep.name]} and {dist}")
        seen.setdefault(ep.name, dist)
    return problems


def get_plugin_manager(
    *,
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
    extra: Iterable[Any] = (),
) -> GatewayPluginManager:
    """A new plugin manager: defaults, then entry points, then ``extra`` plugins.

    Later registrations run first (pluggy is LIFO), so a third-party plugin
    overrides a default, and an explicitly passed plugin overrides both.
    """
    pm = GatewayPluginManager()
    pm.add_hookspecs(hookspecs)
    block = list(block)
    if block:
        known = {*DEFAULT_PLUGINS, *(ep.name for ep in importlib.metadata.entry_points(group=ENTRYPOINT_GROUP))}
        for name in block:
            if name not in known:
                raise StartupError(
                    f"plugins.disable names {name!r}, which is not an installed plugin{suggest(name, known)}"
                )
    for name in block:
        if name in ESSENTIAL_PLUGINS:
            raise StartupError(f"plugin {name!r} is essential and cannot be disabled")
        pm.set_blocked(name)
    try:
        for modname in DEFAULT_PLUGINS:
            if not pm.is_blocked(modname):
                pm.register(default_plugin(modname), name=modname)
        if load_entrypoints:
            problems = _duplicate_entrypoints()
            if problems:
                raise StartupError("duplicate plugin names: " + "; ".join(problems))
            try:
                pm.load_setuptools_entrypoints(ENTRYPOINT_GROUP)
            except StartupError:
                raise
            except Exception as e:
                raise StartupError(f"a plugin failed to load: {e.__class__.__name__}: {e}") from e
        for plugin in extra:
            if not pm.is_registered(plugin):  # already loaded through its entry point
                pm.register(plugin, name=_plugin_name(pm, plugin))
        pm.hook.gateway_addhooks.call_historic(kwargs={"pm": pm})
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        # pluggy's message spans several lines; a start-up error is one line.
        detail = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise StartupError(f"plugin {_registered_name(pm, e.plugin)!r}: {detail}") from None
    return pm


def _plugin_name(pm: pluggy.PluginManager, plugin: Any) -> str:
    """A readable unique name for a plugin passed in directly (module or object)."""
    base = getattr(plugin, "__name__", None) or f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    name, n = base, 1
    while pm.has_plugin(name):
        n += 1
        name = f"{base}#{n}"
    return name


def _registered_name(pm: pluggy.PluginManager, plugin: Any) -> str:
    """The name a plugin is registered under, for an error message."""
    name = pm.get_name(plugin)
    if name is None or name == str(id(plugin)):  # not registered, or pluggy's id-based name
        name = getattr(plugin, "__name__", None) or repr(plugin)
    return name


#: What a registration hook adds, as a user writes it in a config or the settings.
_PROVIDES = {
    "gateway_register_providers": "providers",
    "gateway_register_routing_strategies": "strategy modes",
    "gateway_register_cache_backends": "cache backends",
    "gateway_register_image_stores": "image stores",
    "gateway_register_log_stores": "log stores",
    "gateway_register_config_sections": "settings sections",
}
#: The kinds of names a settings file or a config can use (settings sections are not names).
NAMEABLE = ("providers", "strategy modes", "cache backends", "image stores", "log stores")


def nameable(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Every name a config or the settings can use, by kind, from :func:`describe_plugins`'s
    rows (the built-in plugins' included)."""
    out: dict[str, set[str]] = {kind: set() for kind in NAMEABLE}
    for row in rows:
        for kind, names in row["provides"].items():
            if kind in out:
                out[kind].update(names)
    return {kind: sorted(names) for kind, names in out.items() if names}


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Name, distribution, version, what it provides (provider slugs, strategy modes, cache
    backends, image stores, settings sections) and hooks of every registered plugin."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(c.name for c in (pm.get_hookcallers(plugin) or []))
        out.append(
            {
                "name": name,
                "distribution": dist.project_name if dist else ("gateway" if name.startswith("gateway.") else None),
                "version": dist.version if dist else (_core_version() if name.startswith("gateway.") else None),
                "provides": _provides(pm, plugin),
                "hooks": hooks,
            }
        )
    return out


def _provides(pm: pluggy.PluginManager, plugin: object) -> dict[str, list[str]]:
    """The names a plugin's registration hooks add, by kind."""
    out: dict[str, list[str]] = {}
    for caller in pm.get_hookcallers(plugin) or []:
        kind = _PROVIDES.get(caller.name)
        if kind is None:
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                added = impl.function() or ()
                names = list(added) if isinstance(added, dict) else [getattr(c, "name", repr(c)) for c in added]
                out[kind] = sorted(names)
    return out


def _core_version() -> str:
    return __version__
