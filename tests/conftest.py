"""Shared fixtures: the fake provider and the routing strategies registered, the provider's base URL
on the fake upstream.  Tests of the unified API through real provider plugins name them themselves."""
from __future__ import annotations

from typing import Any

import pytest
from first_party import FIRST_PARTY


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return list(FIRST_PARTY)


@pytest.fixture
def gateway_settings(fake_upstream) -> dict[str, Any]:  # noqa: ANN001
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}}
