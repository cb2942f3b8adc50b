"""Running the gateway: one process, or N worker processes sharing the port."""
from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from gateway import metrics
from gateway.app import create_app
from gateway.errors import StartupError
from gateway.logging import configure_logging
from gateway.keys import GATEWAY
from gateway.settings import ServerSettings


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
    # Bound before "started" is said: a port in use is one line and exit 2, never
    # "started" followed by the error.
    sock = bind(host, port, reuse_port)
    port = sock.getsockname()[1]
    log.info("gateway.started", host=host, port=port, url=f"http://{_url_host(host)}:{port}", pid=os.getpid(),
             providers=sorted(app[GATEWAY].registry.providers))
    # Everything built so far (modules, plugins, settings) lives as long as the
    # process: take it out of the cycle collector's view, so collections stay short.
    gc.collect()
    gc.freeze()
    web.run_app(
        app, sock=sock, handler_cancellation=True, shutdown_timeout=settings.server.shutdown_timeout,
        access_log=None, print=None, loop=_new_loop(), handle_signals=True,
    )
    log.info("gateway.stopped", pid=os.getpid())


def bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` (the first address the name resolves to), or a
    StartupError naming the address and why (in use, not permitted, unknown host)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise StartupError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def _url_host(host: str) -> str:
    """How the bound address reads in a URL a person can open (a wildcard as loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _worker_main(raw: Mapping[str, Any], reuse_port: bool) -> None:
    """A worker process: a start-up error is one line on stderr and exit code 2."""
    try:
        run_worker(raw, reuse_port)
    except StartupError as e:
        # One write of the whole line: workers share the stderr pipe, and print() writes the
        # text and its newline separately, so two workers' lines could run together.
        sys.stderr.write(f"gateway: {e}\n")
        sys.stderr.flush()
        sys.exit(2)


def reserve(host: str, port: int) -> socket.socket:
    """The port the workers will share, held for them: bound with SO_REUSEPORT and never
    listening (it takes no connection).  A StartupError naming the address when any other
    socket has the port, with SO_REUSEPORT or not."""
    # Without SO_REUSEPORT first: that bind fails whoever holds the port (another gateway's
    # workers too), where one with it would quietly share the port with them.
    bind(host, port, reuse_port=False).close()
    return bind(host, port, reuse_port=True)


def serve(raw: Mapping[str, Any], server: ServerSettings) -> int:
    """Serve in this process (one worker) or supervise ``server.workers`` processes."""
    if server.workers <= 1:
        run_worker(raw, reuse_port=False)
        return 0
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover
        print("gateway: --workers needs SO_REUSEPORT, which this platform lacks", file=sys.stderr)
        return 2
    # Taken here, before any worker starts: a port in use is one line and exit 2, not one line
    # per worker; and while they start, no other process can take the port (but one of this
    # user's that sets SO_REUSEPORT too, as the workers do).
    held = reserve(server.host, server.port)
    try:
        # Port 0 becomes the port held, so that every worker joins it.
        raw = {**raw, "server": {**(raw.get("server") or {}), "port": held.getsockname()[1]}}
        return _serve_workers(raw, server.workers)
    finally:
        held.close()


def _serve_workers(raw: Mapping[str, Any], workers: int) -> int:
    """Supervise ``workers`` processes, their metrics kept in one directory they share."""
    # The workers' metrics are kept in files in one directory, so a scrape that reaches any
    # worker counts them all (prometheus-client reads the variable when a worker imports it).
    own_dir = None
    if not metrics.multiprocess_dir():
        own_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")
    try:
        return _supervise(raw, workers)
    finally:
        if own_dir is not None:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
            shutil.rmtree(own_dir, ignore_errors=True)


def _supervise(raw: Mapping[str, Any], workers: int) -> int:
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
        metrics.mark_process_dead(p.pid)
        code = code or (p.exitcode or 0)
    return code
