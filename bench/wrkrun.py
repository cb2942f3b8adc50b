"""Driving wrk: install it when missing, script POST requests, read exact results.

Results come from a Lua ``done()`` hook that prints one JSON line, so nothing
depends on parsing wrk's human-readable (rounded) summary.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

_MARK = "@@BENCH "

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '@@BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"mean_us":%.1f,"max_us":%.1f,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class WrkResult:
    """One wrk run.  Latencies in milliseconds."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    bytes_read: int
    errors: dict[str, int]

    @property
    def failed(self) -> int:
        """Requests that errored or answered non-2xx/3xx."""
        return sum(self.errors.values())


def ensure_wrk() -> str:
    """The wrk binary, installed with apt-get when it is not on PATH yet."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("bench: wrk is not installed; install it (e.g. `apt-get install -y wrk`) and retry")
    print("bench: wrk not found, installing it with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        # A fresh container has no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True)
    path = shutil.which("wrk")
    if not path:
        sys.exit("bench: apt-get installed wrk but it is not on PATH")
    return path


def _lua_string(value: str) -> str:
    level = "="
    while f"]{level}]" in value:
        level += "="
    return f"[{level}[{value}]{level}]"


def write_script(directory: Path, name: str, method: str, headers: Mapping[str, str], body: bytes) -> Path:
    """A wrk Lua script sending ``method`` with ``headers`` and ``body``, reporting JSON at the end.

    The body goes in a file next to the script, read as raw bytes when wrk starts: a Lua
    string literal cannot carry every byte (a long bracket turns ``\\r\\n`` into ``\\n``,
    and a multipart upload is binary and full of ``\\r\\n``)."""
    lines = [f"wrk.method = {_lua_string(method)}"]
    if body:
        body_path = directory / f"{name}.body"
        body_path.write_bytes(body)
        lines += [f"local f = assert(io.open({_lua_string(str(body_path))}, 'rb'))",
                  "wrk.body = f:read('*a')", "f:close()"]
    for key, value in headers.items():
        lines.append(f"wrk.headers[ {_lua_string(key)} ] = {_lua_string(value)}")
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


def run(
    wrk: str,
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: float,
    cpu: int | None,
    sample: Callable[[], None] | None = None,
) -> WrkResult:
    """Run wrk (one thread, pinned to ``cpu``) against ``url``; ``sample`` is called twice a second meanwhile."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "--latency", "-s", str(script), url]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        try:
            # Returns as soon as wrk exits, so the caller's clock stops with the load.
            out, err = proc.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if sample is not None:
                sample()
    line = next((ln for ln in out.splitlines() if ln.startswith(_MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    d = json.loads(line[len(_MARK):])
    secs = d["duration_us"] / 1e6
    return WrkResult(
        requests=d["requests"], seconds=secs, rps=d["requests"] / secs if secs else 0.0,
        p50_ms=d["p50_us"] / 1000, p90_ms=d["p90_us"] / 1000, p99_ms=d["p99_us"] / 1000,
        mean_ms=d["mean_us"] / 1000, max_ms=d["max_us"] / 1000, bytes_read=d["bytes"],
        errors={k: d[k] for k in ("connect", "read", "write", "status", "timeout")},
    )


def version(wrk: str) -> str:
    """The version line of wrk (``wrk -v`` prints it and exits non-zero)."""
    res = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    text = (res.stdout + res.stderr).strip().splitlines()
    return text[0] if text else "unknown"
