"""Fixtures the Seedream plugin's tests share: the plugin and its fake of BytePlus ModelArk (``ark``)."""
from __future__ import annotations

import pytest

import gateway_bytedance_seedream
from gateway_bytedance_seedream.testing import install


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_bytedance_seedream]


@pytest.fixture
def ark(fake_upstream):  # noqa: ANN001, ANN201
    return install(fake_upstream)
