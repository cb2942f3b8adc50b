"""Built-in plugin: the web UI at ``/ui`` (:mod:`gateway.ui`), its ``[ui]`` settings section,
its routes added with ``gateway_add_routes``."""
from __future__ import annotations

from aiohttp import web

from gateway import hookimpl
from gateway.services import Services
from gateway.ui.settings import UiSettings
from gateway.ui.views import UI


@hookimpl
def gateway_register_config_sections() -> dict[str, type]:
    return {"ui": UiSettings}


@hookimpl(trylast=True)
def gateway_add_routes(router: web.UrlDispatcher, services: Services) -> None:
    cfg = services.settings.sections.get("ui") or UiSettings()
    if cfg.enabled:
        UI(services, cfg).add_routes(router)
