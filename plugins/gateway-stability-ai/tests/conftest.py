"""Fixtures the Stability plugin's tests share: the plugin, and the provider pointed at its fake."""
from __future__ import annotations

import pytest

import gateway_stability_ai
from gateway_stability_ai import testing as fake_api


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_stability_ai]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    fake_api.install(fake_upstream)
    return {"providers": {"stability-ai": {"base_url": fake_upstream.url}}}
