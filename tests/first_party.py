"""The plugins the core's own tests register: the neutral fake provider and the routing strategies."""
from __future__ import annotations

from typing import Any

import pytest

import gateway_openai
import gateway_route_conditional
import gateway_route_fallback
import gateway_route_loadbalance
import gateway_route_single
import gateway_stability_ai
from gateway.testing import fake_provider

FIRST_PARTY = [
    fake_provider.plugin, gateway_route_single, gateway_route_fallback, gateway_route_loadbalance,
    gateway_route_conditional,
]

#: The first-party provider plugins the tests of the unified API through real providers use.
PROVIDERS = [gateway_openai, gateway_stability_ai]


# A test module of the unified API through the real providers imports these two fixtures:
# ``from first_party import gateway_plugins, gateway_settings``.
@pytest.fixture
def gateway_plugins() -> list[Any]:
    """The fake provider, the strategies, and the first-party providers (their declared models)."""
    return [*FIRST_PARTY, *PROVIDERS]


@pytest.fixture
def gateway_settings(fake_upstream) -> dict[str, Any]:  # noqa: ANN001
    """The first-party providers pointed at ``fake_upstream``."""
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"},
                          "stability-ai": {"base_url": fake_upstream.url}}}
