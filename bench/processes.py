"""Starting, pinning, checking and stopping the fake upstream and the gateway."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
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
    """A settings file: the gateway on ``port``, OpenAI pointed at the fake upstream, JSON logs.

    The fake's loopback address is listed in ``security.trusted_hosts`` (the custom-host
    scenario names it in ``x-portkey-custom-host``, which the SSRF guard refuses for
    loopback addresses not listed there), and the image store lives next to this file,
    so it goes with the session's temporary directory.
    """
    images = path.parent / "images"
    path.write_text(
        "[server]\n"
        f'host = "{HOST}"\n'
        f"port = {port}\n"
        "workers = 1\n"
        "shutdown_timeout = 2.0\n"
        "\n[providers.openai]\n"
        f'base_url = "http://{HOST}:{upstream_port}/v1"\n'
        "\n[security]\n"
        f'trusted_hosts = ["{HOST}"]\n'
        "\n[images]\n"
        f"directory = {json.dumps(str(images))}\n"
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


@dataclass(frozen=True)
class Answer:
    """One answer: status, headers (lower-cased names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def request(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes = b"",
            timeout: float = 30.0) -> Answer:
    """One request, whatever its status."""
    req = urllib.request.Request(url, data=body or None, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise RuntimeError(f"{method} {url}: {e}") from None


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
