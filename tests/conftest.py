"""Shared fixtures: the fake provider and the routing strategies registered, the provider's base URL
on the fake upstream.  Tests of the unified API through real provider plugins name them themselves."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from first_party import FIRST_PARTY

from gateway.testing import fuzz

# The gateway's default files ($TMPDIR/gateway-data: the request log, the admin key it makes on
# loopback) go to a directory of this run's own, never to a shared /tmp another run also uses.
_DEFAULTS_DIR = tempfile.mkdtemp(prefix="gateway-tests-")
os.environ["TMPDIR"] = _DEFAULTS_DIR
atexit.register(shutil.rmtree, _DEFAULTS_DIR, True)


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return list(FIRST_PARTY)


@pytest.fixture
def gateway_settings(fake_upstream) -> dict[str, Any]:  # noqa: ANN001
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}}


@pytest.fixture(scope="module")
def fuzz_servers() -> Iterator[fuzz.Servers]:
    """The gateway on a loop of its own (``gateway.testing.fuzz``), its provider answering every
    request with a 200: for tests that throw many requests at it."""
    running = fuzz.Servers(FIRST_PARTY)
    try:
        yield running
    finally:
        running.close()
