"""Malformed requests of every kind (``gateway.testing.fuzz``) against a running gateway:
every answer comes within the time limit, below 500, and every error in the gateway's JSON
shape; no request's log line fails.  Bounded here; ``make fuzz`` (``bench/fuzz.py``) runs
10,000 by default, and as many as asked (figures in docs/security.md)."""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.testing import fuzz


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_any_drawn_request_gets_a_well_formed_answer(fuzz_servers: fuzz.Servers, seed: int) -> None:
    sent = fuzz.draw(random.Random(seed))
    found = fuzz.problem(sent, fuzz.send(fuzz_servers.port, sent, fuzz.TIMEOUT))
    assert found is None, f"{found}\n{sent!r}"


def test_a_run_of_two_thousand_has_no_problem_and_every_log_line(fuzz_servers: fuzz.Servers) -> None:
    summary = fuzz.run(fuzz_servers, 2000, seed=20261205)
    assert summary.sent == 2000 and summary.hangs == 0 and summary.server_errors == 0
    assert [f"{found}: {sent!r}" for sent, found in summary.problems] == []
    assert fuzz_servers.log_problems() == []
    # The run reached the providers too, not only the gateway's refusals.
    assert summary.by_status.get("2xx", 0) > 10
