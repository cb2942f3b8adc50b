"""Fixtures shared by the Replicate plugin's tests.

The app is the pytest plugin's ``gateway_app`` with this plugin and a probe
(``gateway.testing.ServicesProbe``) that keeps the app's :class:`~gateway.sdk.Services`,
so tests reach the registry and swap the sleeper the core hands providers
as ``upstream.sleep`` without importing the core's internals.
"""
from __future__ import annotations


import pytest

import gateway_replicate
from gateway.testing import ServicesProbe, record_sleeps


AppServices = ServicesProbe


@pytest.fixture
def app_services() -> AppServices:
    return AppServices()


@pytest.fixture
def gateway_plugins(app_services):  # noqa: ANN001, ANN201
    return [gateway_replicate, app_services]


@pytest.fixture
def gateway_settings(request, fake_upstream):  # noqa: ANN001, ANN201
    """``[providers.replicate]`` toward the fake; ``indirect`` parametrization adds settings."""
    extra = getattr(request, "param", {})
    return {"providers": {"replicate": {"base_url": fake_upstream.url + "/v1", **extra}}}


@pytest.fixture
def sleeps(gateway_app, app_services):  # noqa: ANN001, ANN201
    """Polls record their waits here and barely sleep."""
    assert app_services.services is not None
    return record_sleeps(app_services.services)
