"""The app factory: wires settings, plugins, registries and routes together."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from gateway import handlers, saved
from gateway import settings as settings_mod
from gateway.cache.service import CacheService
from gateway.chain import Chain
from gateway.endpoints.edits import Edits
from gateway.endpoints.generations import Generations
from gateway.endpoints.passthrough import Passthrough
from gateway.errors import StartupError
from gateway.images.urls import ImageUrls
from gateway.keys import GATEWAY
from gateway.plugins import GatewayPluginManager, get_plugin_manager
from gateway.registry import build_registry
from gateway.router import Router
from gateway.settings import Settings
from gateway.state import GatewayState


def load_settings(raw: Mapping[str, Any], pm: GatewayPluginManager) -> Settings:
    """Validate raw settings with the config sections the plugins register."""
    sections: dict[str, type] = {}
    for contributed in pm.hook.gateway_register_config_sections():
        sections.update(contributed)
    try:
        return settings_mod.build(raw, sections)
    except settings_mod.SettingsError as e:
        raise StartupError(str(e)) from None


def build_plugin_manager(raw: Mapping[str, Any], *, load_entrypoints: bool | None = None,
                         plugins: Iterable[Any] = ()) -> GatewayPluginManager:
    """The plugin manager the raw settings ask for."""
    plugin_settings = settings_mod.build({"plugins": raw.get("plugins", {})}).plugins
    return get_plugin_manager(
        load_entrypoints=plugin_settings.entrypoints if load_entrypoints is None else load_entrypoints,
        block=plugin_settings.disable,
        extra=plugins,
    )


def create_app(
    raw_settings: Mapping[str, Any] | None = None,
    *,
    pm: GatewayPluginManager | None = None,
    plugins: Iterable[Any] = (),
    load_entrypoints: bool | None = None,
) -> web.Application:
    """A ready-to-run gateway app.  Raises StartupError with a readable message."""
    raw = dict(raw_settings or {})
    if pm is None:
        pm = build_plugin_manager(raw, load_entrypoints=load_entrypoints, plugins=plugins)
    settings = load_settings(raw, pm)
    registry = build_registry(pm, settings)
    chain = Chain(pm)
    pm.on_change(chain.rebuild)
    state = GatewayState(settings, pm, registry, chain)
    state.endpoints = {e.name: e for e in (Generations(state, chain), Edits(state, chain), Passthrough(state, chain))}
    state.router = Router(state, state.endpoints)
    errors: list[str] = []
    state.virtual_keys = saved.load_virtual_keys(settings.virtual_keys, registry, errors=errors)
    state.saved_configs = saved.load_saved_configs(settings.configs, registry, state.virtual_keys, errors=errors)
    state.image_urls = ImageUrls.from_settings(settings, errors)
    if errors:
        raise StartupError("\n".join(errors))
    pm.hook.gateway_configure.call_historic(kwargs={"settings": settings, "registry": registry, "services": state})

    # auto_decompress off: a passthrough body goes upstream as the client encoded it, and the
    # unified routes decode one themselves within the body limit (gateway/compression.py).
    app = web.Application(client_max_size=settings.server.max_body_bytes,
                          handler_args={"max_field_size": 65536, "auto_decompress": False})
    app[GATEWAY] = state
    app.cleanup_ctx.append(_lifespan(state))
    for cm in pm.hook.gateway_lifespan(app=app):
        if cm is not None:
            app.cleanup_ctx.append(_wrap(cm))
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_post("/v1/images/generations", handlers.images_generations)
    app.router.add_post("/v1/images/edits", handlers.images_edits)
    app.router.add_get("/v1/images/files/{image_id}", handlers.image_file)
    app.router.add_get("/v1/models", handlers.models)
    if state.metrics is not None:  # set by the metrics plugin unless metrics.enabled = false
        app.router.add_get("/metrics", handlers.metrics)
    pm.hook.gateway_add_routes(router=app.router, services=state)
    # [\s\S]: a path with an encoded line break is the passthrough's to refuse, not a 404.
    app.router.add_route("*", r"/v1/{tail:[\s\S]*}", handlers.passthrough)
    app.router.add_route("*", r"/{tail:[\s\S]*}", handlers.unrouted)
    app.on_shutdown.append(_not_ready)
    return app


def _lifespan(state: GatewayState):  # noqa: ANN202
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        state.open_session()
        state.cache = _open_cache(state)
        state.images = state.registry.image_stores[state.settings.images.store].from_services(state)
        await state.images.start()
        await state.image_urls.start(state.images)
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            await state.drain()
            await state.image_urls.close()
            await state.images.close()
            if state.cache is not None:
                await state.cache.close()
            await state.close_session()

    return ctx


def _open_cache(state: GatewayState) -> CacheService:
    cfg = state.settings.cache
    backend = state.registry.cache_backends[cfg.backend].from_settings(state.settings)
    return CacheService(backend, op_timeout=cfg.op_timeout, lock_timeout=cfg.lock_timeout)


def _wrap(cm: Any):  # noqa: ANN202
    @asynccontextmanager
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with cm:
            yield

    return ctx


async def _not_ready(app: web.Application) -> None:
    # Shutdown started: load balancers should stop sending new requests.
    app[GATEWAY].ready = False
