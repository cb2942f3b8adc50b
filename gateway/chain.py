"""The async driver for request-chain hooks.

pluggy calls hooks synchronously, and its first-result mode cannot await a
coroutine.  The driver walks the same implementation lists pluggy keeps (so
registration order, ``tryfirst``/``trylast`` and blocking still come from
pluggy), awaits results that are awaitable, and stops at the first non-None
result for first-result hooks.  The lists are rebuilt whenever a plugin is
registered or unregistered.
"""
from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from gateway import hookspecs
from gateway.errors import GatewayError, StartupError

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

#: The request-chain hooks: every spec whose first parameter is ``ctx``.
REQUEST_HOOKS = tuple(
    name for name, spec in vars(hookspecs).items()
    if name.startswith("gateway_") and callable(spec) and next(iter(inspect.signature(spec).parameters), "") == "ctx"
)

_log = structlog.get_logger("gateway.chain")


class PluginError(Exception):
    """A request hook implementation raised; names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, exc: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in {hook}: {exc.__class__.__name__}: {exc}")
        self.plugin = plugin
        self.hook = hook
        self.__cause__ = exc


class _Impl:
    __slots__ = ("plugin_name", "function", "argnames", "is_async")

    def __init__(self, impl: pluggy.HookImpl) -> None:
        self.plugin_name = impl.plugin_name
        self.function = impl.function
        self.argnames = tuple(impl.argnames)
        self.is_async = inspect.iscoroutinefunction(impl.function)


class HookDriver:
    """Calls one request hook: ``await driver(ctx=..., ...)``."""

    __slots__ = ("name", "firstresult", "impls", "trace")

    def __init__(self, name: str, firstresult: bool, impls: list[_Impl], trace: bool) -> None:
        self.name = name
        self.firstresult = firstresult
        self.impls = impls
        self.trace = trace

    async def __call__(self, **kwargs: Any) -> Any:
        results = []
        for impl in self.impls:
            t0 = time.perf_counter() if self.trace else 0.0
            try:
                res = impl.function(*[kwargs[a] for a in impl.argnames])
                if impl.is_async:
                    res = await res
            except (GatewayError, PluginError):
                raise
            except Exception as e:
                raise PluginError(impl.plugin_name, self.name, e) from e
            if self.trace:
                _log.debug(
                    "hook.called", plugin=impl.plugin_name, hook=self.name,
                    ms=round((time.perf_counter() - t0) * 1000, 3), result=type(res).__name__,
                )
            if res is not None:
                if self.firstresult:
                    return res
                results.append(res)
        return None if self.firstresult else results

    async def notify(self, **kwargs: Any) -> None:
        """Call every implementation; one that raises is logged and the rest still run."""
        for impl in self.impls:
            try:
                res = impl.function(*[kwargs[a] for a in impl.argnames])
                # Most observers return None: no abstract-class check for it.
                if impl.is_async or (res is not None and inspect.isawaitable(res)):
                    await res
            except Exception as e:
                _log.error("plugin.error", plugin=impl.plugin_name, hook=self.name,
                           error=f"{e.__class__.__name__}: {e}")

    def call_sync(self, **kwargs: Any) -> list[Any]:
        """Collect results of sync-only implementations (used by ``gateway_log_fields``)."""
        results = []
        for impl in self.impls:
            try:
                res = impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as e:
                raise PluginError(impl.plugin_name, self.name, e) from e
            if res is not None:
                results.append(res)
        return results


class Chain:
    """The request hooks of one plugin manager, as attributes: ``chain.gateway_route``."""

    def __init__(self, pm: pluggy.PluginManager, trace: bool | None = None) -> None:
        self._pm = pm
        self._trace = os.environ.get("GATEWAY_TRACE_HOOKS") == "1" if trace is None else trace
        self.rebuild()

    def rebuild(self) -> None:
        for name in REQUEST_HOOKS:
            caller = getattr(self._pm.hook, name)
            opts = self._pm.parse_hookspec_opts(hookspecs, name) or {}
            impls = []
            # pluggy keeps implementations in reverse call order.
            for impl in reversed(caller.get_hookimpls()):
                if impl.hookwrapper or impl.wrapper:
                    raise StartupError(
                        f"plugin {impl.plugin_name!r}: {name} is a request-chain hook and cannot be a "
                        "wrapper; use gateway_lifespan or a tryfirst implementation instead"
                    )
                impls.append(_Impl(impl))
            setattr(self, name, HookDriver(name, bool(opts.get("firstresult")), impls, self._trace))

    async def route(self, ctx: Any) -> Any:
        """The ``gateway_route`` stage (what an endpoint's ``handle`` runs the tree with)."""
        return await self.gateway_route(ctx=ctx)

    def has_impls(self, name: str) -> bool:
        driver: HookDriver = getattr(self, name)
        return bool(driver.impls)

    # Typed attribute stubs for readers and type checkers.
    gateway_request_started: HookDriver
    gateway_authenticate: Callable[..., Any]
    gateway_resolve_config: Callable[..., Any]
    gateway_admit: Callable[..., Any]
    gateway_route: Callable[..., Any]
    gateway_cache_lookup: Callable[..., Any]
    gateway_transform_request: Callable[..., Any]
    gateway_log_fields: HookDriver
    gateway_request_finished: HookDriver
    gateway_handle_error: Callable[..., Any]
