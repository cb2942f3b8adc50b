"""Built-in plugin: the request log (:mod:`gateway.requestlog`).

Its ``[request_log]`` and ``[admin]`` settings sections; the log stores (``sqlite`` built
in, others through ``gateway_register_log_stores``); at start-up the store (migrations)
and the writer; per answered request a record handed to the writer (the parameters made
safe and the images kept in the writer's task, off the request path); ``GET /v1/logs``.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pluggy
import structlog
from aiohttp import web
from prometheus_client import Counter, Gauge

from gateway import hookimpl
from gateway.context import ANSWER_BODY, HANDED_ON_URLS, PROXY, RequestContext
from gateway.errors import StartupError
from gateway.registry import Registry
from gateway.requestlog.admin import AdminKey
from gateway.requestlog.api import LogApi
from gateway.requestlog.capture import LOGGED, build_record
from gateway.requestlog.images import ImageKeeper, has_images
from gateway.requestlog.params import passthrough_params, safe_params
from gateway.requestlog.record import LogRecord
from gateway.requestlog.settings import AdminSettings, RequestLogSettings
from gateway.requestlog.sqlite import SQLiteLogStore
from gateway.requestlog.store import LogStore
from gateway.requestlog.writer import LogWriter
from gateway.services import Services
from gateway.settings import Settings, suggest
from gateway.state import GatewayState

_log = structlog.get_logger("gateway")
#: A request body larger than this has its parameters made safe in a thread.
_THREAD_OVER = 64 * 1024
#: Seconds between tries to open a store that could not be opened at start-up.
_REOPEN_INTERVAL = 5.0
#: Bytes of request bodies and answers the writer's queue may hold; past it, a request's
#: parameters are made safe at once and its images are not kept.
_MAX_HELD = 64 * 1024 * 1024
#: Seconds between readings of the writer's queue depth for ``gateway_request_log_queue``.
_DEPTH_INTERVAL = 1.0
#: Seconds the pruning task may take to stop at shutdown.
_STOP_TIMEOUT = 5.0


class Extra:
    """What the writer needs besides the record: the request's parameters and the answer."""

    __slots__ = ("params", "form", "proxy", "body", "content_type", "answer", "large", "held")

    def __init__(self, ctx: RequestContext, answer: bytes | None) -> None:
        inbound = ctx.inbound
        self.params = inbound.params
        self.form = inbound.form
        self.proxy = inbound.endpoint == PROXY
        # A passthrough body read whole (sent more than once, or keyed on); a streamed one is not kept.
        self.body = inbound.body if self.proxy else None
        self.content_type = inbound.headers.get("Content-Type") if self.proxy else None
        self.answer = answer
        self.large = ctx.record.bytes_in > _THREAD_OVER
        #: What the queue holds for it: a large request's body and the answer.
        self.held = (ctx.record.bytes_in if self.large else 0) + (len(answer) if answer is not None else 0)


def log_stores(pm: pluggy.PluginManager) -> dict[str, type[LogStore]]:
    """Every registered log store by name; two of one name is a start-up error."""
    found: dict[str, type[LogStore]] = {}
    owners: dict[str, str] = {}
    for impl in reversed(pm.hook.gateway_register_log_stores.get_hookimpls()):
        for cls in impl.function() or ():
            name = getattr(cls, "name", None)
            if not name:
                raise StartupError(f"plugin {impl.plugin_name!r} registered a log store without a name: {cls!r}")
            if name in found and found[name] is not cls:
                raise StartupError(f"log store {name!r} is registered by both {owners[name]!r} and {impl.plugin_name!r}")
            found[name], owners[name] = cls, impl.plugin_name
    return found


class Plugin:
    """Per app: the settings and the store class from ``gateway_configure``; the store, the
    writer and the image keeper while the app runs."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.cfg = RequestLogSettings()
        self.store_cls: type[LogStore] | None = None
        self.keeper: ImageKeeper | None = None
        self.no_images: frozenset[str] = frozenset()
        self._queue_gauge: Any = None
        self._dropped_counter: Any = None

    @hookimpl
    def gateway_register_config_sections(self) -> dict[str, type]:
        return {"request_log": RequestLogSettings, "admin": AdminSettings}

    @hookimpl
    def gateway_register_log_stores(self) -> list[type]:
        return [SQLiteLogStore]

    @hookimpl(trylast=True)
    def gateway_configure(self, settings: Settings, registry: Registry, services: Services) -> None:
        self.services = services
        errors: list[str] = []
        services.admin = AdminKey.from_settings(settings.sections["admin"], errors, server_host=settings.server.host)
        cfg = self.cfg = settings.sections["request_log"]
        if cfg.enabled and isinstance(services, GatewayState):
            stores = log_stores(services.pm)
            if cfg.store in stores:
                self.store_cls = stores[cfg.store]
            else:
                errors.append(f"settings [request_log] store: {cfg.store!r} is not installed{suggest(cfg.store, stores)}"
                              f"; installed log stores: {', '.join(sorted(stores)) or 'none'}")
        if errors:
            raise StartupError("\n".join(errors))
        self.no_images = frozenset(cfg.no_image_keys)
        if self.store_cls is not None and services.metrics is not None:
            metrics = services.metrics
            reg = None if metrics.shared else metrics.registry
            self._queue_gauge = Gauge("gateway_request_log_queue", "Request-log records waiting to be written.",
                                      registry=reg, multiprocess_mode="livesum")
            self._dropped_counter = Counter("gateway_request_log_dropped", "Request-log records dropped (the log "
                                            "store down or slower than the requests).", registry=reg)

    @hookimpl(trylast=True)
    def gateway_lifespan(self, app: web.Application) -> contextlib.AbstractAsyncContextManager[None] | None:
        return self._running() if self.store_cls is not None else None

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        services, cfg, store_cls = self.services, self.cfg, self.store_cls
        assert services is not None and store_cls is not None
        store = store_cls.from_services(services)
        ttl = cfg.retention_days * 86400.0
        self.keeper = ImageKeeper(services.images, ttl, cfg.thumbnail_over_bytes) if cfg.images else None
        writer = LogWriter(store, queue_size=cfg.queue_size, batch_size=cfg.batch_size,
                           flush_interval=cfg.flush_interval, write_timeout=cfg.write_timeout,
                           prepare=self._prepare, observe=self._observe)
        opened = await self._open(store, writer)
        writer.start()
        local_file = getattr(services.admin, "local_file", None)
        if local_file is not None:
            _log.info("admin.local_key", file=local_file,
                      hint=f"no [admin] key is set and the gateway listens on loopback only: sign in to /ui with "
                           f"the admin key the gateway keeps in {local_file}")
        services.log_store, services.request_log = store, writer
        loop = asyncio.get_running_loop()
        background = [loop.create_task(self._maintain(store, writer, opened))]
        if self._queue_gauge is not None:
            background.append(loop.create_task(self._report_depth(writer, self._queue_gauge)))
        try:
            yield
        finally:
            services.request_log = None
            for task in background:
                task.cancel()
            await asyncio.wait(background, timeout=_STOP_TIMEOUT)
            await writer.close()
            try:
                await store.close()
            except Exception as e:  # noqa: BLE001 - closing a store that is down
                _log.warning("request_log.close_failed", error=f"{e.__class__.__name__}: {e}")
            services.log_store = None
            self.keeper = None

    async def _open(self, store: LogStore, writer: LogWriter) -> bool:
        """Start the store (its migrations); a store that cannot start now leaves the gateway
        running without it, dropping and counting records until it can."""
        try:
            await store.start()
            return True
        except Exception as e:  # noqa: BLE001 - whatever the store raises
            writer.mark_down(f"cannot open the store: {e.__class__.__name__}: {e}")
            with contextlib.suppress(Exception):
                await store.close()
            return False

    async def _maintain(self, store: LogStore, writer: LogWriter, opened: bool) -> None:
        """Open the store when start-up could not, then prune every ``prune_interval``."""
        while not opened:
            await asyncio.sleep(_REOPEN_INTERVAL)
            opened = await self._open(store, writer)
        failing = False
        while True:
            try:
                removed = await store.prune(time.time())
                if removed:
                    _log.info("request_log.pruned", removed=removed, store=store.name)
                failing = False
            except Exception as e:  # noqa: BLE001 - prune again next time
                if not failing:
                    _log.warning("request_log.prune_failed", error=f"{e.__class__.__name__}: {e}", store=store.name)
                failing = True
            await asyncio.sleep(self.cfg.prune_interval)

    @staticmethod
    async def _report_depth(writer: LogWriter, gauge: Any) -> None:
        """The queue's depth on the gauge every ``_DEPTH_INTERVAL``: the writer reports it after a
        batch or a drop only, and while a write hangs (a slow store, before the queue fills) the
        gauge would stay where it was.  Not per request: that would cost every request a lock."""
        while True:
            await asyncio.sleep(_DEPTH_INTERVAL)
            gauge.set(writer.depth)

    def _observe(self, depth: int, dropped: int) -> None:
        if self._queue_gauge is not None:
            self._queue_gauge.set(depth)
        if dropped and self._dropped_counter is not None:
            self._dropped_counter.inc(dropped)

    @staticmethod
    def _params(extra: Extra) -> dict[str, Any]:
        if extra.proxy:
            return passthrough_params(extra.body, extra.content_type)
        return safe_params(extra.params, extra.form)

    def _prepare(self, record: LogRecord, extra: Extra) -> Awaitable[None] | None:
        """In the writer's task: the parameters made safe; the images kept, as an awaitable."""
        if extra.large:
            return self._prepare_large(record, extra)
        record.params = self._params(extra)
        if extra.answer is not None and self.keeper is not None:
            return self._keep_images(record, self.keeper, extra.answer)
        return None

    async def _prepare_large(self, record: LogRecord, extra: Extra) -> None:
        record.params = await asyncio.to_thread(self._params, extra)
        if extra.answer is not None and self.keeper is not None:
            await self._keep_images(record, self.keeper, extra.answer)

    @staticmethod
    async def _keep_images(record: LogRecord, keeper: ImageKeeper, answer: bytes) -> None:
        record.images = await keeper.keep(answer)

    @hookimpl(trylast=True)
    def gateway_request_finished(self, ctx: RequestContext, fields: dict[str, Any]) -> None:
        services = self.services
        writer = services.request_log if services is not None else None
        if writer is None or ctx.inbound.endpoint not in LOGGED:
            return
        record = build_record(ctx, fields)
        answer = None
        if self.keeper is not None and 200 <= record.status < 300 and record.key not in self.no_images:
            answer = ctx.stash.get(ANSWER_BODY)
            if answer is not None and not has_images(answer):
                answer = None  # no image the gateway holds (a provider's URLs handed on, say)
            handed = ctx.stash.get(HANDED_ON_URLS)
            if handed:
                # Referred to, not kept: the request's own list, over like the request.
                record.provider_urls = handed
        extra = Extra(ctx, answer)
        if extra.held and writer.held_bytes + extra.held > _MAX_HELD:
            # The writer is backed up: the parameters are made safe now (the body is not kept
            # waiting), and the images are not kept.
            record.params = self._params(extra)
            writer.submit(record)
        else:
            writer.submit(record, extra, extra.held)

    @hookimpl(trylast=True)
    def gateway_add_routes(self, router: web.UrlDispatcher, services: Services) -> None:
        LogApi(services, lambda: services.admin, lambda: services.log_store).add_routes(router)
