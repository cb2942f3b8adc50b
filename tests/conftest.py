"""Shared fixtures: the first-party plugins registered, its base URL on a fake upstream."""
from __future__ import annotations

from typing import Any

import gateway_openai
import gateway_route_conditional
import gateway_route_fallback
import gateway_route_loadbalance
import gateway_route_single
import gateway_stability_ai
import pytest

FIRST_PARTY = [
    gateway_openai, gateway_route_single, gateway_route_fallback, gateway_route_loadbalance, gateway_route_conditional,
    gateway_stability_ai,
]


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return list(FIRST_PARTY)


@pytest.fixture
def gateway_settings(fake_upstream) -> dict[str, Any]:  # noqa: ANN001
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"},
                          "stability-ai": {"base_url": fake_upstream.url}}}
