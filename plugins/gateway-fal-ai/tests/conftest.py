"""Fixtures shared by the fal.ai plugin's tests.

The app is the pytest plugin's ``gateway_app`` with this plugin and a probe
(``gateway.testing.ServicesProbe``) that keeps the app's services, so tests swap the
sleeper the core hands providers as ``upstream.sleep`` (polls record their waits and
barely sleep).  The fake serves fal's queue under ``/queue`` and the provider's
``base_url`` includes it: every URL the gateway builds must keep that prefix.
"""
from __future__ import annotations


import pytest

import gateway_fal_ai
from gateway.testing import ServicesProbe, record_sleeps

PREFIX = "/queue"


@pytest.fixture
def app_services() -> ServicesProbe:
    return ServicesProbe()


@pytest.fixture
def gateway_plugins(app_services):  # noqa: ANN001, ANN201
    return [gateway_fal_ai, app_services]


@pytest.fixture
def gateway_settings(request, fake_upstream):  # noqa: ANN001, ANN201
    """``[providers.fal-ai]`` toward the fake; ``indirect`` parametrization adds settings."""
    extra = getattr(request, "param", {})
    return {"providers": {"fal-ai": {"base_url": fake_upstream.url + PREFIX, **extra}}}


@pytest.fixture
def sleeps(gateway_app, app_services):  # noqa: ANN001, ANN201
    """Polls record their waits here and barely sleep."""
    assert app_services.services is not None
    return record_sleeps(app_services.services)
