"""Fixtures shared by the Bedrock plugin's tests.

The app is the pytest plugin's ``gateway_app`` with this plugin and a probe
(``gateway.testing.ServicesProbe``) that keeps the app's :class:`~gateway.sdk.Services`, so
tests reach the provider instance and swap the retry sleeper without importing
the core's internals.  :func:`make_client` builds the app when a test asks for
it (after the test has set the AWS environment up: the provider reads it once).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import gateway_bedrock
import pytest
from gateway_bedrock.testing import BedrockFake, clean_aws_environment, install

from gateway.testing import ServicesProbe

__all__ = ["AppServices", "clean_aws_environment"]


AppServices = ServicesProbe


@pytest.fixture
def app_services() -> AppServices:
    return AppServices()


@pytest.fixture
def bedrock(fake_upstream: Any) -> BedrockFake:
    """Bedrock runtime on the fake upstream, every listed model routed."""
    return install(fake_upstream)


@pytest.fixture
def gateway_plugins(app_services: AppServices) -> list[Any]:
    return [gateway_bedrock, app_services]


@pytest.fixture
def gateway_settings(fake_upstream: Any, bedrock: BedrockFake) -> dict[str, Any]:
    """``[providers.bedrock]`` toward the fake (its routes installed first)."""
    return {"providers": {"bedrock": {"base_url": fake_upstream.url}}}


async def _no_sleep(_delay: float) -> None:
    return None


@pytest.fixture
def no_sleep(gateway_app: Any, app_services: AppServices) -> None:
    """Retries do not wait."""
    assert app_services.services is not None
    app_services.services.sleep = _no_sleep


@pytest.fixture
def make_client(request: pytest.FixtureRequest, aiohttp_client: Any, gateway_settings: dict[str, Any],
                gateway_plugins: list[Any]) -> Callable[..., Awaitable[Any]]:
    """``await make_client(*plugins, **settings)``: a client of the gateway built now, with
    ``plugins`` registered too and top-level ``settings`` replacing ``gateway_settings``'."""
    assert "gateway_app" not in request.fixturenames, "make_client builds the app itself"

    async def make(*plugins: Any, **settings: Any) -> Any:
        gateway_settings.update(settings)
        gateway_plugins.extend(plugins)
        return await aiohttp_client(request.getfixturevalue("gateway_app"))

    return make
