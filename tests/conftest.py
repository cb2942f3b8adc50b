"""Shared fixtures: the fake provider and the routing strategies registered, the provider's base URL
on the fake upstream.  Tests of the unified API through real provider plugins name them themselves."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from first_party import FIRST_PARTY

from gateway.testing import fuzz


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
