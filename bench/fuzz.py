"""The long fuzz run: ``python bench/fuzz.py [--requests 10000] [--seed 0]`` (or ``make fuzz``).

Sends malformed requests (:mod:`gateway.testing.fuzz`) one at a time to a gateway whose
provider answers every request with a 200, and counts what the gateway got wrong:
answers of 500 or more, requests without an answer within the time limit, errors not
in the gateway's JSON shape, and log lines that failed.  Prints the figures and the
first few problems with the request that caused each; exits 1 when there was any.
The test suite runs the same requests, bounded (``tests/test_fuzz.py``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from first_party import FIRST_PARTY  # noqa: E402

from gateway.testing import fuzz  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests to send (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random source (default 0)")
    parser.add_argument("--show", type=int, default=10, help="problems to print in full (default 10)")
    args = parser.parse_args(argv)

    servers = fuzz.Servers(FIRST_PARTY)
    try:
        summary = fuzz.run(servers, args.requests, args.seed)
        log_problems = servers.log_problems()
    finally:
        servers.close()
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(summary.by_status.items()))
    print(f"{summary.sent} requests in {summary.seconds:.1f} s (seed {args.seed}): {statuses}")
    print(f"answers >= 500: {summary.server_errors}; without an answer within {fuzz.TIMEOUT:g} s: {summary.hangs}; "
          f"problems in all: {len(summary.problems)}; log problems: {len(log_problems)}")
    for sent, found in summary.problems[: args.show]:
        print(f"- {found}\n  {sent!r}")
    for line in log_problems[: args.show]:
        print(f"- log: {line}")
    return 1 if summary.problems or log_problems else 0


if __name__ == "__main__":
    sys.exit(main())
