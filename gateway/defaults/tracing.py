"""Built-in plugin: OpenTelemetry traces (:mod:`gateway.tracing`), made from the request hooks
like any plugin could; off unless ``[tracing] endpoint`` (or ``OTEL_EXPORTER_OTLP_*``) is set."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from aiohttp import web

from gateway import __version__, hookimpl
from gateway.context import RequestContext
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings
from gateway.tracing import Tracing, TracingSettings, exporter_url, shown_url

SECTION = "tracing"
_log = structlog.get_logger("gateway")


class Plugin:
    """Per app: the settings read by ``gateway_configure``; the tracer provider (and its
    exporter thread) exists only while the app runs, from its lifespan."""

    settings: TracingSettings | None = None
    url: str | None = None
    tracing: Tracing | None = None

    @hookimpl
    def gateway_register_config_sections(self) -> dict[str, type]:
        return {SECTION: TracingSettings}

    @hookimpl(trylast=True)
    def gateway_configure(self, settings: Settings, registry: Registry, services: Services) -> None:
        self.settings = settings.sections[SECTION]
        self.url = exporter_url(self.settings)

    @hookimpl(trylast=True)
    def gateway_lifespan(self, app: web.Application) -> AbstractAsyncContextManager[None] | None:
        if self.url is None or self.settings is None:
            return None
        return self._running(self.settings, self.url)

    @asynccontextmanager
    async def _running(self, settings: TracingSettings, url: str) -> AsyncIterator[None]:
        self.tracing = Tracing(settings, url, __version__)
        # Where and as what, never the headers (they carry the collector's credentials).
        _log.info("tracing.started", endpoint=shown_url(url), service=self.tracing.service_name,
                  sample_ratio=settings.sample_ratio)
        try:
            yield
        finally:
            tracing, self.tracing = self.tracing, None
            await tracing.close()

    @hookimpl(trylast=True)
    def gateway_request_started(self, ctx: RequestContext) -> None:
        if self.tracing is not None:
            self.tracing.started(ctx)

    @hookimpl(trylast=True)
    def gateway_log_fields(self, ctx: RequestContext) -> dict[str, Any] | None:
        if self.tracing is None:
            return None
        trace_id = self.tracing.trace_id(ctx)
        return None if trace_id is None else {"otel_trace_id": trace_id}

    @hookimpl(trylast=True)
    def gateway_request_finished(self, ctx: RequestContext, fields: dict[str, Any]) -> None:
        if self.tracing is not None:
            self.tracing.finished(ctx)
