"""Starting, pinning, checking and stopping the fake upstream and the gateway."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """``cmd`` run with ``taskset -c cpu`` (taskset execs it: the pid stays the command's)."""
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_upstream(cpu: int | None) -> tuple[subprocess.Popen, int]:
    """The fake upstream, and the port it listens on."""
    cmd = pinned([sys.executable, str(HERE / "fake_upstream.py"), "--host", HOST], cpu)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        stop(proc)
        raise RuntimeError(f"the fake upstream did not start (said {line!r})")
    return proc, int(line)


def start_redis(cpu: int | None) -> tuple[subprocess.Popen, int]:
    """A throwaway redis-server (no persistence), and its port."""
    port = free_port()
    cmd = pinned(["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"], cpu)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("redis-server did not start (is it installed? apt-get install redis-server)")


def gateway_script() -> Path:
    """The ``gateway`` console script of the running interpreter's environment."""
    path = Path(sys.executable).parent / "gateway"
    if not path.exists():
        sys.exit(f"bench: {path} not found; run the bench with the project's venv python (make bench)")
    return path


def write_config(path: Path, port: int, upstream_port: int) -> Path:
    """A settings file: the gateway on ``port``, OpenAI pointed at the fake upstream, JSON logs."""
    path.write_text(
        "[server]\n"
        f'host = "{HOST}"\n'
        f"port = {port}\n"
        "workers = 1\n"
        "shutdown_timeout = 2.0\n"
        "\n[providers.openai]\n"
        f'base_url = "http://{HOST}:{upstream_port}/v1"\n'
        "\n[logging]\n"
        'format = "json"\n'
        'level = "info"\n'
    )
    return path


def start_gateway(config: Path, cpu: int | None, stderr: IO[bytes],
                  env: dict[str, str] | None = None) -> subprocess.Popen:
    """``gateway serve --config FILE`` pinned to ``cpu``; its request log goes to /dev/null."""
    cmd = pinned([str(gateway_script()), "serve", "--config", str(config)], cpu)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=_env(env))


def start_forwarder(upstream_url: str, port: int, cpu: int | None, stderr: IO[bytes],
                    env: dict[str, str] | None = None) -> subprocess.Popen:
    """The reference forwarder (``reference_forwarder.py``) pinned to ``cpu``."""
    cmd = pinned([sys.executable, str(HERE / "reference_forwarder.py"), "--upstream", upstream_url,
                  "--host", HOST, "--port", str(port)], cpu)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=_env(env))


def _env(extra: dict[str, str] | None) -> dict[str, str] | None:
    return {**os.environ, **extra} if extra else None


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with status {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s")


def fetch(url: str, method: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    """One request: (status, content type, body)."""
    req = urllib.request.Request(url, data=body or None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def usable_cpus() -> list[int]:
    """The cores this process may run on (and so may pin children to)."""
    return sorted(os.sched_getaffinity(0))
