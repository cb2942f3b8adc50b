"""Built-in plugin: Prometheus metrics (:mod:`gateway.metrics`), counted from the request
hooks like any plugin could, served at ``GET /metrics``."""
from __future__ import annotations

from typing import Any

from gateway import hookimpl
from gateway.context import RequestContext, StashKey
from gateway.metrics import Metrics
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings

#: Set on a request counted in flight (so only those are counted out).
_IN_FLIGHT: StashKey[bool] = StashKey("metrics.in_flight")


class Plugin:
    """Per app: the metrics, made by ``gateway_configure`` unless ``metrics.enabled`` is off."""

    metrics: Metrics | None = None

    @hookimpl(trylast=True)
    def gateway_configure(self, settings: Settings, registry: Registry, services: Services) -> None:
        if not settings.metrics.enabled:
            return
        models = {name: {*provider.capabilities.models, *provider.capabilities.edit_models}
                  for name, provider in registry.providers.items()}
        self.metrics = services.metrics = Metrics(models)

    @hookimpl(trylast=True)
    def gateway_request_started(self, ctx: RequestContext) -> None:
        if self.metrics is not None:
            self.metrics.started()
            ctx.stash[_IN_FLIGHT] = True

    @hookimpl(trylast=True)
    def gateway_request_finished(self, ctx: RequestContext, fields: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.finished(ctx, started=ctx.stash.get(_IN_FLIGHT, False))
