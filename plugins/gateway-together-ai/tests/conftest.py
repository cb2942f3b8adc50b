"""Fixtures the Together plugin's tests share: the plugin, and the provider pointed at its fake."""
from __future__ import annotations

import pytest

import gateway_together_ai
from gateway_together_ai.testing import install


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_together_ai]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    install(fake_upstream)
    return {"providers": {"together-ai": {"base_url": fake_upstream.url + "/v1"}}}
