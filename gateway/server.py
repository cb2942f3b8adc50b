"""Running the gateway: one process, or N worker processes sharing the port."""
from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from gateway.app import create_app
from gateway.errors import StartupError
from gateway.logging import configure_logging
from gateway.keys import GATEWAY


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
    settings = app[GATEWAY].settings
    configure_logging(settings.logging.format, settings.logging.level)
    log = structlog.get_logger("gateway")
    host, port = settings.server.host, settings.server.port
    log.info("gateway.started", host=host, port=port, pid=os.getpid(),
             providers=sorted(app[GATEWAY].registry.providers))
    # Everything built so far (modules, plugins, settings) lives as long as the
    # process: take it out of the cycle collector's view, so collections stay short.
    gc.collect()
    gc.freeze()
    try:
        web.run_app(
            app, host=host, port=port, reuse_port=reuse_port or None, handler_cancellation=True,
            shutdown_timeout=settings.server.shutdown_timeout, access_log=None, print=None,
            loop=_new_loop(), handle_signals=True,
        )
    except OSError as e:  # address in use, not permitted, unknown host name
        raise StartupError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    log.info("gateway.stopped", pid=os.getpid())


def _worker_main(raw: Mapping[str, Any], reuse_port: bool) -> None:
    """A worker process: a start-up error is one line on stderr and exit code 2."""
    try:
        run_worker(raw, reuse_port)
    except StartupError as e:
        print(f"gateway: {e}", file=sys.stderr)
        sys.exit(2)


def serve(raw: Mapping[str, Any], workers: int) -> int:
    """Serve in this process (workers == 1) or supervise ``workers`` processes."""
    if workers <= 1:
        run_worker(raw, reuse_port=False)
        return 0
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover
        print("gateway: --workers needs SO_REUSEPORT, which this platform lacks", file=sys.stderr)
        return 2
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(dict(raw), True), daemon=False) for _ in range(workers)]

    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.pid and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    # Before the workers start, so a SIGTERM during start-up cannot orphan them.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        if stopping:
            break
        p.start()
    if stopping:  # a signal that came while a worker was being started may have missed it
        forward(signal.SIGTERM, None)
    code = 0
    for p in procs:
        if p.pid is None:  # never started: stopped during start-up
            continue
        p.join()
        code = code or (p.exitcode or 0)
    return code
