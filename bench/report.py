"""Turning measurements into the markdown tables and the JSON results file."""
from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from scenarios import REFERENCES


def environment(wrk_version: str, repo: Path) -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for dist in ("gateway", "gateway-openai", "aiohttp", "uvloop", "msgspec", "structlog", "pluggy", "multidict",
                 "yarl"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": wrk_version,
        "git": _git(repo),
    }


def _git(repo: Path) -> str | None:
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "gateway", "plugins"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}" if v < 1 else f"{v:.2f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def _mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f}"


def _verdict(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return "-"
    return "ok" if value <= target else f"MISS (+{(value / target - 1) * 100:.0f}%)"


def markdown(results: dict[str, Any]) -> str:
    """The results as markdown tables (latency/throughput, CPU vs targets, memory)."""
    rows = results["scenarios"]
    out = [
        "### Throughput and latency (gateway vs the same requests straight to the upstream)",
        "",
        "| scenario | gateway req/s | gateway p50 ms | gateway p99 ms | direct req/s | direct p50 ms "
        "| direct p99 ms | added p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        g, d = r["gateway"], r.get("direct") or {}
        out.append(
            f"| {r['title']} | {g['rps']:,.0f} | {_ms(g['p50_ms'])} | {_ms(g['p99_ms'])} | "
            f"{d.get('rps', 0):,.0f} | {_ms(d.get('p50_ms'))} | {_ms(d.get('p99_ms'))} | {_ms(r.get('added_p50_ms'))} |"
        )
    out += [
        "",
        "### Gateway CPU per request (one core) against the targets",
        "",
        "| scenario | CPU ms/req | runs (min-max) | req/s per core | forwarder ms/req | gateway busy "
        "| load core busy | target ms/req | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        g, ref = r["gateway"], r.get("reference") or {}
        spread = g.get("cpu_ms_per_req_runs") or [g["cpu_ms_per_req"]]
        out.append(
            f"| {r['title']} | {_ms(g['cpu_ms_per_req'])} | {_ms(min(spread))}-{_ms(max(spread))} | "
            f"{g['capacity_rps']:,.0f} | {_ms(ref.get('cpu_ms_per_req'))} | {_pct(g['cpu_util'])} | "
            f"{_pct(g.get('load_core_busy'))} | {_ms(r['cpu_ms_target'])} | "
            f"{_verdict(g['cpu_ms_per_req'], r['cpu_ms_target'])} |"
        )
    for r in rows:
        if r.get("added_p50_ms_target") is not None:
            out.append(
                f"| added p50 latency, {r['title']} | {_ms(r.get('added_p50_ms'))} ms | | | | | | "
                f"{_ms(r['added_p50_ms_target'])} ms | {_verdict(r.get('added_p50_ms'), r['added_p50_ms_target'])} |"
            )
    out += _compared(rows)
    out += _variant(rows, results.get("settings", {}).get("variant_env") or {})
    out += _first_events(rows)
    out += [
        "",
        "### Gateway memory (RSS, MiB)",
        "",
        "| scenario | before run | after run | max during run | peak since start |",
        "|---|---:|---:|---:|---:|",
        f"| idle, after start-up | {_mb(results['memory']['idle_rss_kb'])} | | | |",
    ]
    for r in rows:
        g = r["gateway"]
        out.append(
            f"| {r['title']} | {_mb(g['rss_before_kb'])} | {_mb(g['rss_after_kb'])} | "
            f"{_mb(g['rss_max_kb'])} | {_mb(g['hwm_kb'])} |"
        )
    out += ["", "### Reference points (CPU ms/req, one core: small / b64 / png)", ""]
    for name, (small, b64, png) in REFERENCES.items():
        out.append(f"- {name}: {small} / {b64} / {png}")
    return "\n".join(out) + "\n"


def _compared(rows: list[dict[str, Any]]) -> list[str]:
    """Scenarios that are another one's request plus one feature, against that one.

    With ``--reference``, the forwarder's own difference between the two scenarios (it does
    the same work in both) shows how far the session drifted between them."""
    by_name = {r["name"]: r for r in rows}
    pairs = [(r, by_name[r["compare_with"]]) for r in rows if r.get("compare_with") in by_name]
    if not pairs:
        return []
    out = [
        "",
        "### With a feature against the same request without it (gateway CPU ms/req)",
        "",
        "| scenario | CPU ms/req | without it | CPU ms/req | difference | allowed | verdict | forwarder difference |",
        "|---|---:|---|---:|---:|---:|---|---:|",
    ]
    for r, base in pairs:
        mine, theirs = r["gateway"]["cpu_ms_per_req"], base["gateway"]["cpu_ms_per_req"]
        diff = _rel(mine, theirs)
        allowed = r.get("compare_max")
        verdict = "-" if diff is None or allowed is None else "ok" if diff <= allowed else "MISS"
        fwd = _rel((r.get("reference") or {}).get("cpu_ms_per_req"),
                   (base.get("reference") or {}).get("cpu_ms_per_req"))
        out.append(
            f"| {r['title']} | {_ms(mine)} | {base['title']} | {_ms(theirs)} | {_signed_pct(diff)} | "
            f"{'-' if allowed is None else f'+{allowed * 100:.0f}%'} | {verdict} | {_signed_pct(fwd)} |"
        )
    return out


def _variant(rows: list[dict[str, Any]], env: dict[str, str]) -> list[str]:
    """``--variant``: the gateway against the second gateway (the same one with ``env`` added),
    measured interleaved on the same core; the difference is the variant's against the gateway's."""
    measured = [r for r in rows if r.get("variant")]
    if not measured:
        return []
    what = ", ".join(f"{k}={v}" for k, v in env.items())
    out = [
        "",
        f"### The gateway against the variant ({what}), interleaved on the same core",
        "",
        "| scenario | gateway CPU ms/req (runs) | variant CPU ms/req (runs) | variant against gateway "
        "| gateway p50 / p99 ms | variant p50 / p99 ms | gateway req/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in measured:
        g, v = r["gateway"], r["variant"]
        out.append(
            f"| {r['title']} | {_ms(g['cpu_ms_per_req'])} ({_runs(g)}) | {_ms(v['cpu_ms_per_req'])} ({_runs(v)}) | "
            f"{_signed_pct(_rel(v['cpu_ms_per_req'], g['cpu_ms_per_req']))} | "
            f"{_ms(g['p50_ms'])} / {_ms(g['p99_ms'])} | {_ms(v['p50_ms'])} / {_ms(v['p99_ms'])} | {g['rps']:,.0f} |"
        )
    return out


def _runs(summary: dict[str, Any]) -> str:
    return " ".join(_ms(v) for v in summary.get("cpu_ms_per_req_runs") or [summary["cpu_ms_per_req"]])


def _first_events(rows: list[dict[str, Any]]) -> list[str]:
    """Streamed scenarios: the time to the first event, held to the added-p50 target."""
    timed = [r for r in rows if r.get("first_event")]
    if not timed:
        return []
    out = [
        "",
        "### Time to the first event of a stream (one request at a time, ms)",
        "",
        "| scenario | requests | gateway p50 | gateway p99 | forwarder p50 | direct p50 | direct p99 "
        "| added p50 | added p99 | target (added p50) | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in timed:
        fe = r["first_event"]
        g, ref, d = fe["gateway"], fe.get("reference") or {}, fe.get("direct") or {}
        target = r.get("added_first_event_ms_target")
        out.append(
            f"| {r['title']} | {g['requests']} | {_ms(g['p50_ms'])} | {_ms(g['p99_ms'])} | "
            f"{_ms(ref.get('p50_ms'))} | {_ms(d.get('p50_ms'))} | {_ms(d.get('p99_ms'))} | "
            f"{_ms(fe.get('added_p50_ms'))} | {_ms(fe.get('added_p99_ms'))} | {_ms(target)} | "
            f"{_verdict(fe.get('added_p50_ms'), target)} |"
        )
    return out


def _rel(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base - 1


def _signed_pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.1f}%"


def write_json(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` as indented JSON, creating the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
