"""The gateway benchmark: ``python bench/run.py`` (or ``make bench``).

Starts a fast fake OpenAI upstream and the gateway (``gateway serve``, full
hook chain and the per-request JSON log on, log sent to /dev/null), pins the
gateway to one core and the upstream plus wrk to another, then for every
scenario in :mod:`scenarios` measures through the gateway and straight to the
upstream: requests/s, p50/p99 latency, the gateway's CPU time per request
(utime + stime from /proc/<pid>/stat around the run, divided by the requests
wrk completed) and the gateway's RSS before, during and after the run.

Before a scenario is measured, its own check (``Scenario.check``, see
:mod:`checks`) makes sure each server gives the answer that scenario should
give; a wrong answer stops the bench with a message naming the scenario.

A scenario whose answer is a stream of events (``Scenario.first_event``) is
also timed to its first event (:mod:`firstevent`, one request at a time, on the
load core), through each server and straight to the upstream, since wrk only
sees whole answers.

Each gateway run is repeated (``--repeat``) and the run with the median CPU
per request is reported.  Each run waits for both cores to be idle first, and
a run during which other processes took a share of the gateway's core is
measured again.  ``--reference`` also measures a minimal
aiohttp forwarder (``reference_forwarder.py``) on the same core, the floor the
gateway is compared with.  ``--variant KEY=VALUE`` also measures a second gateway
whose environment adds those settings (``GATEWAY__METRICS__ENABLED=false``),
interleaved with the first on the same core, so that one setting's cost is read
within one session; ``--request-log on|off|both`` turns the request log on or
off for the gateway (``both``: on for the gateway, off for the variant).
Prints markdown tables and writes ``bench/results/latest.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import checks
import firstevent
import processes
import procstat
import report
import wrkrun
from scenarios import SCENARIOS, Scenario

HERE = Path(__file__).resolve().parent
#: Share of the gateway's core used by other processes above which a run is retried.
INTERFERENCE_MAX = 0.10
RETRIES = 1
#: Busy share of an idle core below which the machine counts as quiet enough to start a run.
QUIET_MAX = 0.05


@dataclass
class Served:
    """A server under test (the gateway, or the reference forwarder), pinned to the measured core."""

    name: str
    proc: subprocess.Popen
    url: str


class Bench:
    """One benchmark session: the processes, the wrk scripts, the settings."""

    def __init__(self, args: argparse.Namespace, workdir: Path, wrk: str) -> None:
        self.args = args
        self.workdir = workdir
        self.wrk = wrk
        cpus = processes.usable_cpus()
        if len(cpus) >= 2:
            self.gateway_cpu, self.load_cpu = cpus[0], cpus[1]
            self.softirq_pid = procstat.softirq_thread(self.gateway_cpu)
        else:
            print("bench: fewer than 2 usable cores: nothing is pinned, figures are not comparable",
                  file=sys.stderr)
            self.gateway_cpu = self.load_cpu = self.softirq_pid = None
        self.upstream: subprocess.Popen | None = None
        self.upstream_url = ""
        self.served: list[Served] = []
        self.redis: subprocess.Popen | None = None

    # -- processes ---------------------------------------------------------------
    def start(self) -> None:
        """Start the upstream and the servers under test; wait until they are ready."""
        self.upstream, up_port = processes.start_upstream(self.load_cpu)
        self.upstream_url = f"http://{processes.HOST}:{up_port}"
        if self.args.redis:
            # The cache scenarios then hit Redis instead of the memory backend.
            self.redis, redis_port = processes.start_redis(self.load_cpu)
            self.args.env.update({"GATEWAY__CACHE__BACKEND": "redis",
                                  "GATEWAY__REDIS__URL": f"redis://{processes.HOST}:{redis_port}/0"})
        self.start_gateway("gateway", self.args.env)
        if self.args.variant:
            self.start_gateway("variant", {**self.args.env, **self.args.variant})
        if self.args.reference:
            port = processes.free_port()
            with open(self.workdir / "reference.stderr", "wb") as stderr:
                fwd = processes.start_forwarder(self.upstream_url, port, self.gateway_cpu, stderr, self.args.env)
            self.served.append(Served("reference", fwd, f"http://{processes.HOST}:{port}"))
        for s in self.served:
            processes.wait_ready(s.url + "/readyz", s.proc)

    def start_gateway(self, name: str, env: dict[str, str]) -> None:
        """``gateway serve`` pinned to the measured core, with its own settings file and port;
        its request log (when it has one) in a file of its own in the session's directory."""
        port = processes.free_port()
        config = processes.write_config(self.workdir / f"{name}.toml", port, int(self.upstream_url.rsplit(":", 1)[1]))
        if self.args.has_request_log:
            env = {"GATEWAY__REQUEST_LOG__PATH": str(self.workdir / f"{name}-requests.sqlite3"), **env}
        with open(self.workdir / f"{name}.stderr", "wb") as stderr:
            proc = processes.start_gateway(config, self.gateway_cpu, stderr, env)
        self.served.append(Served(name, proc, f"http://{processes.HOST}:{port}"))

    def stop(self) -> None:
        """Stop everything this session started."""
        for proc in [s.proc for s in self.served] + [self.upstream, self.redis]:
            if proc is not None:
                processes.stop(proc)

    def stderr_tails(self) -> str:
        """The end of each server's stderr, for error reports."""
        out = []
        for name in ("gateway", "variant", "reference"):
            path = self.workdir / f"{name}.stderr"
            text = path.read_text(errors="replace")[-4000:] if path.exists() else ""
            if text.strip():
                out.append(f"{name} stderr:\n{text}")
        return "\n".join(out)

    # -- measuring ---------------------------------------------------------------
    def check(self, sc: Scenario, served: Served) -> str:
        """The scenario's own check of what ``served`` answers (see checks.py); the reference
        forwarder, which knows no configs, caches or custom hosts, must relay the upstream's
        bytes.  Raises checks.CheckFailed (a RuntimeError naming the scenario) on a wrong answer."""
        gateway = served.name != "reference"
        check = sc.check if gateway else checks.FORWARDED
        return check.run(sc, checks.Server(served.name, served.url, gateway=gateway), self.upstream_url)

    def _counters(self, pid: int) -> dict[str, float]:
        """Cumulative CPU seconds of everything a run is judged by."""
        assert self.upstream is not None
        out = {"server": procstat.cpu_seconds(pid), "upstream": procstat.cpu_seconds(self.upstream.pid),
               "wall": time.monotonic()}
        if self.gateway_cpu is not None:
            out["core_busy"], out["core_total"] = procstat.core_seconds(self.gateway_cpu)
            out["load_busy"], out["load_total"] = procstat.core_seconds(self.load_cpu)
        if self.softirq_pid is not None:
            out["softirq"] = procstat.cpu_seconds(self.softirq_pid)
        return out

    def run_once(self, sc: Scenario, script: Path, served: Served) -> dict[str, Any]:
        """One measured run through ``served``."""
        pid = served.proc.pid
        rss_before = procstat.rss_kb(pid)
        samples = [rss_before]
        c0 = self._counters(pid)
        res = wrkrun.run(self.wrk, served.url + sc.path, script, connections=sc.connections,
                         seconds=self.args.duration, cpu=self.load_cpu,
                         sample=lambda: samples.append(procstat.rss_kb(pid)))
        c1 = self._counters(pid)
        mem = procstat.memory_kb(pid)
        samples.append(mem["rss"])
        if res.requests == 0 or res.failed:
            raise RuntimeError(f"{sc.name}: {served.name}: {res.requests} requests, errors {res.errors}")
        d = {k: c1[k] - c0[k] for k in c0}
        wall, n = d["wall"], res.requests
        cpu_ms = d["server"] * 1000 / n
        run = {
            **_latency(res),
            "cpu_ms_per_req": cpu_ms,
            "capacity_rps": 1000 / cpu_ms if cpu_ms else 0.0,
            "cpu_util": d["server"] / wall,
            "upstream_cpu_util": d["upstream"] / wall,
            "rss_before_kb": rss_before, "rss_after_kb": mem["rss"], "rss_max_kb": max(samples),
            "hwm_kb": mem["hwm"],
        }
        if "core_total" in d:
            softirq = d.get("softirq", 0.0)
            run["gateway_core_busy"] = d["core_busy"] / d["core_total"]
            run["load_core_busy"] = d["load_busy"] / d["load_total"]
            run["softirq_ms_per_req"] = softirq * 1000 / n
            run["interference"] = max(0.0, (d["core_busy"] - d["server"] - softirq) / d["core_total"])
        return run

    def warm_up(self, sc: Scenario, script: Path, served: Served) -> str:
        """Check the answer, then load ``served`` unmeasured for ``--warmup`` seconds; what was checked."""
        checked = self.check(sc, served)
        if self.args.warmup > 0:
            wrkrun.run(self.wrk, served.url + sc.path, script, connections=sc.connections,
                       seconds=self.args.warmup, cpu=self.load_cpu)
        return checked

    def wait_for_quiet(self) -> None:
        """Between runs nothing of ours works, so busy cores mean other processes:
        wait (up to ``--quiet-wait`` seconds) until both cores are nearly idle."""
        if self.gateway_cpu is None or self.args.quiet_wait <= 0:
            return
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            before = [procstat.core_seconds(c) for c in (self.gateway_cpu, self.load_cpu)]
            time.sleep(0.5)
            after = [procstat.core_seconds(c) for c in (self.gateway_cpu, self.load_cpu)]
            busy = max((b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
                       for (b0, t0), (b1, t1) in zip(before, after, strict=True))
            if busy <= QUIET_MAX or time.monotonic() >= deadline:
                return

    def run_clean(self, sc: Scenario, script: Path, served: Served) -> dict[str, Any]:
        """A measured run, measured again (once) if other processes crowded the core meanwhile."""
        for attempt in range(RETRIES + 1):
            self.wait_for_quiet()
            run = self.run_once(sc, script, served)
            if run.get("interference", 0.0) <= INTERFERENCE_MAX:
                break
            print(f"bench: {sc.name}/{served.name}: other processes took {run['interference']:.0%} of the "
                  "measured core" + ("; measuring again" if attempt < RETRIES else "; keeping it"), file=sys.stderr)
        return run

    def measure(self, sc: Scenario) -> dict[str, Any]:
        """A scenario: warm-up, then ``--repeat`` rounds of one run per server under test
        (interleaved, so drift hits them alike), then one run straight to the upstream."""
        sc = sc.bound(self.upstream_url)
        script = wrkrun.write_script(self.workdir, sc.name, sc.method, sc.headers, sc.body)
        row: dict[str, Any] = {
            "name": sc.name, "title": sc.title, "connections": sc.connections,
            "cpu_ms_target": sc.cpu_ms_target, "added_p50_ms_target": sc.added_p50_ms_target,
            "compare_with": sc.compare_with, "compare_max": sc.compare_max,
            "gateway": None, "variant": None, "reference": None, "direct": None, "added_p50_ms": None, "checked": {},
            "added_first_event_ms_target": sc.added_first_event_ms_target, "first_event": None,
        }
        for served in self.served:
            row["checked"][served.name] = self.warm_up(sc, script, served)
            print(f"bench:   {served.name}: {row['checked'][served.name]}", file=sys.stderr, flush=True)
        runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in self.served}
        for _ in range(self.args.repeat):
            for served in self.served:
                runs[served.name].append(self.run_clean(sc, script, served))
        for name, done in runs.items():
            row[name] = _summary(done)
        if not self.args.no_direct:
            direct = wrkrun.run(self.wrk, self.upstream_url + sc.path, script, connections=sc.connections,
                                seconds=self.args.duration, cpu=self.load_cpu)
            row["direct"] = _latency(direct)
            row["added_p50_ms"] = row["gateway"]["p50_ms"] - direct.p50_ms
        if sc.first_event and self.args.first_events > 0:
            row["first_event"] = self.first_events(sc)
        if self.args.profile:
            self.profile(sc, script)
        return row

    def first_events(self, sc: Scenario) -> dict[str, Any]:
        """Time to the first event, one request at a time, through each server and straight to
        the upstream; what the gateway adds to its median and 99th percentile."""
        targets = [(s.name, s.url) for s in self.served]
        if not self.args.no_direct:
            targets.append(("direct", self.upstream_url))
        out: dict[str, Any] = {}
        for name, url in targets:
            self.wait_for_quiet()
            out[name] = firstevent.run(url + sc.path, sc.method, sc.headers, sc.body, cpu=self.load_cpu,
                                       count=self.args.first_events)
        if "direct" in out:
            out["added_p50_ms"] = out["gateway"]["p50_ms"] - out["direct"]["p50_ms"]
            out["added_p99_ms"] = out["gateway"]["p99_ms"] - out["direct"]["p99_ms"]
        return out

    def profile(self, sc: Scenario, script: Path) -> None:
        """An extra, unmeasured run with py-spy sampling the gateway (collapsed stacks)."""
        gateway = self.served[0]
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(py_spy).exists():
            print("bench: --profile needs py-spy (pip install py-spy into the venv); skipped", file=sys.stderr)
            return
        out = self.args.profile / f"{sc.name}.txt"
        self.args.profile.mkdir(parents=True, exist_ok=True)
        cmd = processes.pinned([py_spy, "record", "--pid", str(gateway.proc.pid), "--rate", "250",
                                "--nonblocking", "--format", "raw", "-o", str(out),
                                "-d", str(max(1, round(self.args.duration)))], self.load_cpu)
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wrkrun.run(self.wrk, gateway.url + sc.path, script, connections=sc.connections,
                   seconds=self.args.duration, cpu=self.load_cpu)
        spy.wait()
        print(f"bench: profile of {sc.name} in {out} (python bench/hotspots.py {out})", file=sys.stderr)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median CPU per request, with memory over all runs and every run kept."""
    median = sorted(runs, key=lambda r: r["cpu_ms_per_req"])[len(runs) // 2]
    return {
        **median,
        "rss_before_kb": runs[0]["rss_before_kb"], "rss_after_kb": runs[-1]["rss_after_kb"],
        "rss_max_kb": max(r["rss_max_kb"] for r in runs), "hwm_kb": runs[-1]["hwm_kb"],
        "cpu_ms_per_req_runs": [r["cpu_ms_per_req"] for r in runs],
        "runs": runs,
    }


def _latency(res: wrkrun.WrkResult) -> dict[str, Any]:
    return {
        "requests": res.requests, "seconds": round(res.seconds, 3), "rps": res.rps,
        "p50_ms": res.p50_ms, "p90_ms": res.p90_ms, "p99_ms": res.p99_ms, "mean_ms": res.mean_ms,
        "max_ms": res.max_ms, "mb_per_s": res.bytes_read / res.seconds / 1e6 if res.seconds else 0.0,
        "errors": res.errors,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    names = [s.name for s in SCENARIOS]
    p = argparse.ArgumentParser(description="Benchmark the gateway against a fake upstream with wrk.")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    p.add_argument("--repeat", type=int, default=3,
                   help="measured runs per scenario and server; the median is reported (default 3)")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="seconds of unmeasured load before each scenario (default 2)")
    p.add_argument("--only", action="append", choices=names, metavar="NAME",
                   help=f"run only this scenario (repeatable): {', '.join(names)}")
    p.add_argument("--quiet-wait", type=float, default=30.0, metavar="SECONDS",
                   help="before each run, wait up to this long for other processes to leave both cores (default 30)")
    p.add_argument("--no-direct", action="store_true", help="skip the straight-to-upstream baseline runs")
    p.add_argument("--first-events", type=int, default=firstevent.COUNT, metavar="N",
                   help="streamed scenarios: requests timed to their first event, per server and direct "
                        f"(default {firstevent.COUNT}, at most {firstevent.SECONDS:g} s each; 0 skips)")
    p.add_argument("--reference", action="store_true",
                   help="also measure the minimal aiohttp forwarder (reference_forwarder.py) on the same core")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="after each scenario, one more run under py-spy; collapsed stacks go to DIR/<scenario>.txt")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the servers under test (repeatable), e.g. "
                        "GATEWAY__UPSTREAM__MAX_CONNECTIONS=64 or MALLOC_ARENA_MAX=2")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE",
                   help="also measure a second gateway with this environment variable added (repeatable), "
                        "interleaved with the first on the same core, e.g. GATEWAY__METRICS__ENABLED=false")
    p.add_argument("--request-log", choices=("on", "off", "both"),
                   help="[request_log] enabled for the gateway (both: on for the gateway, off for the variant); "
                        "default: as the settings' default")
    p.add_argument("--redis", action="store_true",
                   help="start a redis-server (on the load core) and give the gateway the Redis cache backend")
    p.add_argument("--out", type=Path, default=HERE / "results" / "latest.json", help="JSON results file")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if any("=" not in e for e in args.env + args.variant):
        p.error("--env and --variant take KEY=VALUE")
    args.env = dict(e.split("=", 1) for e in args.env)
    args.variant = dict(e.split("=", 1) for e in args.variant)
    args.has_request_log = "request_log" in settings_sections()
    if args.request_log is not None:
        if not args.has_request_log:
            p.error("--request-log: this gateway has no [request_log] settings section")
        args.env[REQUEST_LOG_ENABLED] = "false" if args.request_log == "off" else "true"
        if args.request_log == "both":
            args.variant[REQUEST_LOG_ENABLED] = "false"
    return args


#: The environment variable of the ``[request_log] enabled`` setting.
REQUEST_LOG_ENABLED = "GATEWAY__REQUEST_LOG__ENABLED"


def settings_sections() -> set[str]:
    """The settings sections the installed gateway knows (from ``gateway config schema``)."""
    proc = subprocess.run([str(processes.gateway_script()), "config", "schema"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: gateway config schema failed: {proc.stderr.strip()}")
    return set(json.loads(proc.stdout)["$defs"]["Settings"]["properties"])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 when a server or a run failed."""
    args = parse_args(argv)
    wrk = wrkrun.ensure_wrk()
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    started = time.monotonic()
    # Before the servers start: the code they load is the code this records.
    environment = report.environment(wrkrun.version(wrk), HERE.parent)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        bench = Bench(args, Path(tmp), wrk)
        try:
            bench.start()
            idle = procstat.memory_kb(bench.served[0].proc.pid)
            rows = []
            for sc in chosen:
                print(f"bench: {sc.title} ...", file=sys.stderr, flush=True)
                rows.append(bench.measure(sc))
        except RuntimeError as e:
            print(f"bench: {e}", file=sys.stderr)
            tails = bench.stderr_tails()
            if tails:
                print(tails, file=sys.stderr)
            return 1
        finally:
            bench.stop()
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bench_seconds": round(time.monotonic() - started, 1),
        "settings": {"duration_s": args.duration, "repeat": args.repeat, "warmup_s": args.warmup, "env": args.env,
                     "variant_env": args.variant, "request_log": args.request_log,
                     "first_events": args.first_events,
                     "gateway_cpu": bench.gateway_cpu, "load_cpu": bench.load_cpu, "wrk_threads": 1},
        "environment": environment,
        "memory": {"idle_rss_kb": idle["rss"]},
        "scenarios": rows,
    }
    print(report.markdown(results))
    report.write_json(args.out, results)
    print(f"bench: results written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
