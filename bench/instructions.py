"""Instructions per request of a gateway, counted by valgrind's callgrind: a figure a busy or
shared machine does not move, for A/B comparisons that CPU time on such a machine cannot settle.

Each variant runs the gateway under callgrind with instrumentation off, sends warm-up requests,
turns instrumentation on, sends ``--requests`` small generations (4 clients, one request at a
time each), waits for the request log to write them, and reads the instruction count (every
thread of the process: the request log's SQLite thread too).  The request log flushes per full
batch (``flush_interval`` raised), as it does at 2,000 requests per second.

    python bench/instructions.py                       # request log on against off
    python bench/instructions.py --requests 4000 --variant on= --variant off=GATEWAY__REQUEST_LOG__ENABLED=false

Needs valgrind (``apt-get install valgrind``).  Each variant takes about a minute.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import processes
from scenarios import SMALL_BODY

_HEADERS = {"Content-Type": "application/json", "x-portkey-provider": "openai", "Authorization": "Bearer sk-bench"}
_CLIENTS = 4
#: Requests before counting (a multiple of the log's batch size, so no partial batch is left).
_WARMUP = 600
#: The log's batch size: counted requests are a multiple of it.
_BATCH = 200


def _send(url: str, count: int) -> None:
    for _ in range(count):
        req = urllib.request.Request(url, data=SMALL_BODY, method="POST", headers=_HEADERS)
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()


def _spread(url: str, total: int) -> None:
    with ThreadPoolExecutor(_CLIENTS) as pool:
        list(pool.map(lambda n: _send(url, n), [total // _CLIENTS] * _CLIENTS))


def count(env: dict[str, str], requests: int, workdir: Path, upstream_port: int) -> int:
    """Instructions the gateway ran for ``requests`` small generations with ``env`` set."""
    port = processes.free_port()
    config = processes.write_config(workdir / "gateway.toml", port, upstream_port)
    out = workdir / f"callgrind.{time.time_ns()}"
    full_env = {**os.environ, "GATEWAY__REQUEST_LOG__PATH": str(workdir / f"log{time.time_ns()}.sqlite3"),
                "GATEWAY__REQUEST_LOG__FLUSH_INTERVAL": "600", "GATEWAY__REQUEST_LOG__BATCH_SIZE": str(_BATCH), **env}
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
           str(processes.gateway_script()), "serve", "--config", str(config)]
    with open(workdir / "stderr", "ab") as err:
        gateway = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        url = f"http://127.0.0.1:{port}"
        processes.wait_ready(url + "/readyz", gateway, timeout=600)
        _spread(url + "/v1/images/generations", _WARMUP)
        time.sleep(2)
        subprocess.run(["callgrind_control", "-i", "on", str(gateway.pid)], check=True, stdout=subprocess.DEVNULL)
        _spread(url + "/v1/images/generations", requests)
        time.sleep(3)  # the last batch reaches SQLite
        subprocess.run(["callgrind_control", "-i", "off", str(gateway.pid)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["callgrind_control", "-d", str(gateway.pid)], check=True, stdout=subprocess.DEVNULL)
    finally:
        processes.stop(gateway, timeout=60)
    total = 0
    for dump in workdir.glob(out.name + "*"):
        m = re.search(r"^totals: (\d+)", dump.read_text(errors="replace"), re.M)
        total += int(m.group(1)) if m else 0
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help=f"requests counted, a multiple of {_BATCH}")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=KEY=VALUE,...",
                   help="a named set of settings (default: on= and off=GATEWAY__REQUEST_LOG__ENABLED=false)")
    args = p.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("bench: valgrind is not installed (apt-get install valgrind)")
    if args.requests <= 0 or args.requests % _BATCH:
        sys.exit(f"bench: --requests must be a positive multiple of {_BATCH}")
    variants = args.variant or ["on=", "off=GATEWAY__REQUEST_LOG__ENABLED=false"]
    workdir = Path(tempfile.mkdtemp(prefix="gateway-instructions-"))
    upstream, upstream_port = processes.start_upstream(None)
    try:
        results = []
        for spec in variants:
            name, _, settings = spec.partition("=")
            env = dict(item.split("=", 1) for item in settings.split(",") if item)
            per_request = count(env, args.requests, workdir, upstream_port) / args.requests
            results.append((name, per_request))
            print(f"{name}: {per_request:,.0f} instructions per request", flush=True)
        base = results[-1][1]
        for name, per_request in results[:-1]:
            print(f"{name} against {results[-1][0]}: {(per_request / base - 1) * 100:+.1f} %")
    finally:
        processes.stop(upstream)


if __name__ == "__main__":
    main()
