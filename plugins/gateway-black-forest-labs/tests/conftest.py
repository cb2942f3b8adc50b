"""Fixtures shared by the Black Forest Labs plugin's tests.

The app is the pytest plugin's ``gateway_app`` with this plugin and a probe
(``gateway.testing.ServicesProbe``) that keeps the app's :class:`~gateway.sdk.Services`,
so tests swap the sleeper the core hands providers as ``upstream.sleep``.  The provider's
base URL is the fake's URL; its ``eu`` region is the fake's URL under ``/eu``.
"""
from __future__ import annotations


import pytest

import gateway_black_forest_labs
from gateway.testing import ServicesProbe, record_sleeps

KEY = "bfl-test-key-0123456789"


@pytest.fixture
def app_services() -> ServicesProbe:
    return ServicesProbe()


@pytest.fixture
def gateway_plugins(app_services):  # noqa: ANN001, ANN201
    return [gateway_black_forest_labs, app_services]


@pytest.fixture
def gateway_settings(request, fake_upstream):  # noqa: ANN001, ANN201
    """``[providers.black-forest-labs]`` toward the fake; ``indirect`` parametrization adds settings."""
    extra = getattr(request, "param", {})
    provider = {"base_url": fake_upstream.url, "region_urls": {"eu": fake_upstream.url + "/eu",
                                                               "us": fake_upstream.url + "/us"}, **extra}
    return {"providers": {"black-forest-labs": provider},
            "virtual_keys": {"bfl-eu": {"provider": "black-forest-labs", "api_key": KEY, "region": "eu"}}}


@pytest.fixture
def sleeps(gateway_app, app_services):  # noqa: ANN001, ANN201
    """Polls record their waits here and barely sleep."""
    assert app_services.services is not None
    return record_sleeps(app_services.services)
