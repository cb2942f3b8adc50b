"""Fixtures the Segmind plugin's tests share: the plugin, and the provider pointed at its fake."""
from __future__ import annotations

import pytest

import gateway_segmind
from gateway_segmind.testing import install


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_segmind]


@pytest.fixture
def gateway_settings(fake_upstream):  # noqa: ANN001, ANN201
    install(fake_upstream)
    return {"providers": {"segmind": {"base_url": fake_upstream.url + "/v1"}}}
