"""Fixtures the xAI plugin's tests share: the plugin, its fake (``xai``) and the provider pointed at it."""
from __future__ import annotations

import pytest

import gateway_x_ai
from gateway_x_ai.testing import install


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_x_ai]


@pytest.fixture
def xai(fake_upstream):  # noqa: ANN001, ANN201
    return install(fake_upstream)


@pytest.fixture
def gateway_settings(fake_upstream, xai):  # noqa: ANN001, ANN201
    return {"providers": {"x-ai": {"base_url": fake_upstream.url + "/v1"}}}
