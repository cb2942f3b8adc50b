"""Summarise a py-spy profile (``--format raw``, collapsed stacks): top functions.

``python bench/hotspots.py PROFILE.txt [--top 25] [--lines] [--match TEXT]`` prints,
for every function (``name (file)``; per line with ``--lines``), its share of
samples as the running frame (self) and anywhere on the stack (total), then self
time per package.  ``run.py --profile DIR`` writes such profiles, one per scenario.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def _frame(raw: str, lines: bool = False) -> str:
    frame = raw.strip() if lines else _LINE.sub(")", raw.strip())
    # Shorten site-packages paths to the package-relative part.
    return re.sub(r"\(.*?(?:site-packages|lib/python3\.\d+)/", "(", frame)


def summarise(path: Path, lines: bool = False) -> tuple[int, Counter, Counter]:
    """(samples, self counts, total counts) per function."""
    self_c: Counter = Counter()
    total_c: Counter = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f, lines) for f in stack.split(";") if f]
        samples += n
        if frames:
            self_c[frames[-1]] += n
        for f in set(frames):
            total_c[f] += n
    return samples, self_c, total_c


def by_package(self_c: Counter) -> Counter:
    """Self samples per top-level package.  Time in ``run_app`` itself is the
    event loop's own C code (uvloop, epoll, socket reads), not aiohttp's Python."""
    out: Counter = Counter()
    for name, n in self_c.items():
        if name.startswith("run_app ("):
            out["event loop (uvloop C code, syscalls)"] += n
            continue
        where = name[name.rfind("(") + 1:].rstrip(")")
        out[where.split("/", 1)[0] if "/" in where else where] += n
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--lines", action="store_true", help="keep line numbers (one row per line, not per function)")
    p.add_argument("--match", help="only rows whose function or file contains this text")
    args = p.parse_args(argv)
    samples, self_c, total_c = summarise(args.profile, args.lines)
    if args.match:
        self_c = Counter({k: v for k, v in self_c.items() if args.match in k})
        total_c = Counter({k: v for k, v in total_c.items() if args.match in k})
    if not samples:
        raise SystemExit(f"{args.profile}: no samples")
    print(f"{samples} samples\n\n  self%  total%  function")
    for name, n in self_c.most_common(args.top):
        print(f"{n * 100 / samples:6.1f}  {total_c[name] * 100 / samples:6.1f}  {name}")
    print("\n  self%  package")
    for name, n in by_package(self_c).most_common():
        print(f"{n * 100 / samples:6.1f}  {name}")
    print("\n total%  function (inclusive)")
    for name, n in total_c.most_common(args.top):
        print(f"{n * 100 / samples:6.1f}  {name}")


if __name__ == "__main__":
    main()
