"""CPU time and memory of a process, read from /proc (Linux only)."""
from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (all threads), in seconds.

    Resolution is one clock tick (usually 10 ms), so read it around runs that
    last seconds, not around single requests.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        text = f.read()
    # The command name (field 2) may contain spaces or parentheses: split after it.
    fields = text[text.rfind(b")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def memory_kb(pid: int) -> dict[str, int]:
    """``rss`` (resident now) and ``hwm`` (peak resident) in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                out["hwm"] = int(line.split()[1])
    return out


def rss_kb(pid: int) -> int:
    """Resident set size now, in KiB."""
    return memory_kb(pid)["rss"]


def core_seconds(cpu: int) -> tuple[float, float]:
    """(busy, total) seconds of one core since boot, from /proc/stat.

    Busy is everything but idle and iowait: user, system, irq, softirq and
    steal, whoever they were spent for.
    """
    prefix = f"cpu{cpu} "
    with open("/proc/stat") as f:
        line = next(ln for ln in f if ln.startswith(prefix))
    ticks = [int(v) for v in line.split()[1:]]
    idle = ticks[3] + ticks[4]
    total = sum(ticks[:8])  # guest time is already counted in user
    return (total - idle) / _TICKS, total / _TICKS


def softirq_thread(cpu: int) -> int | None:
    """The pid of ``ksoftirqd/<cpu>``: the kernel thread that takes over network
    receive work on that core under load (its time is not charged to the process
    whose packets it handles)."""
    name = f"ksoftirqd/{cpu}"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        return int(entry)
            except OSError:
                continue
    return None
