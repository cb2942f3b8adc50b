"""Running the gateway: one process, or N worker processes sharing the port."""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.app import create_app
from gateway.logging import configure_logging


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional off Linux
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_worker(raw: Mapping[str, Any], reuse_port: bool) -> None:
    """Run one gateway process until SIGTERM/SIGINT; in-flight requests get
    ``server.shutdown_timeout`` seconds to finish."""
    app = create_app(raw)
    from gateway.keys import GATEWAY

    settings = app[GATEWAY].settings
    configure_logging(settings.logging.format, settings.logging.level)
    import structlog

    log = structlog.get_logger("gateway")
    host, port = settings.server.host, settings.server.port
    log.info("gateway.started", host=host, port=port, pid=os.getpid(),
             providers=sorted(app[GATEWAY].registry.providers))
    web.run_app(
        app, host=host, port=port, reuse_port=reuse_port or None, handler_cancellation=True,
        shutdown_timeout=settings.server.shutdown_timeout, access_log=None, print=None,
        loop=_new_loop(), handle_signals=True,
    )
    log.info("gateway.stopped", pid=os.getpid())


def serve(raw: Mapping[str, Any], workers: int) -> int:
    """Serve in this process (workers == 1) or supervise ``workers`` processes."""
    if workers <= 1:
        run_worker(raw, reuse_port=False)
        return 0
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover
        print("gateway: --workers needs SO_REUSEPORT, which this platform lacks", file=sys.stderr)
        return 2
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(dict(raw), True), daemon=False) for _ in range(workers)]
    for p in procs:
        p.start()

    def forward(signum: int, _frame: Any) -> None:
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    for p in procs:
        p.join()
        code = code or (p.exitcode or 0)
    return code
