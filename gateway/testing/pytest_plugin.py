"""pytest fixtures for testing the gateway and gateway plugins.

Override ``gateway_settings`` (a settings dict) and ``gateway_plugins`` (plugin
objects or modules to register) in a test module or conftest; entry-point
discovery is off unless a test is marked ``@pytest.mark.gateway_entrypoints``,
so a plugin's tests see only the plugins they name.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.services import Services
from gateway.testing import FakeUpstream, LogCapture


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gateway_entrypoints: load plugins through entry points in gateway_app")


@pytest.fixture
def gateway_settings() -> dict[str, Any]:
    """Raw settings for ``gateway_app`` (as a TOML file would give them)."""
    return {}


@pytest.fixture
def gateway_plugins() -> list[Any]:
    """Plugins registered on ``gateway_app`` besides the built-in defaults."""
    return []


@pytest.fixture
def gateway_app(request: pytest.FixtureRequest, gateway_settings: dict[str, Any], gateway_plugins: list[Any]):  # noqa: ANN201
    """A gateway app built the way ``gateway serve`` builds it."""
    entrypoints = request.node.get_closest_marker("gateway_entrypoints") is not None
    return create_app(gateway_settings, plugins=gateway_plugins, load_entrypoints=entrypoints)


@pytest.fixture
def gateway_services(gateway_app) -> Services:  # noqa: ANN001
    """The :class:`gateway.sdk.Services` of ``gateway_app``: its registry (the provider
    instances), ``sleep`` (swap it so retries and polls never wait), ``drain()``."""
    return gateway_app[GATEWAY]


@pytest.fixture
def no_sleep(gateway_services: Services) -> list[float]:
    """Retries and polls record their waits here instead of sleeping."""
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    gateway_services.sleep = sleep
    return waited


@pytest.fixture
async def gateway_server(aiohttp_server, gateway_app):  # noqa: ANN001, ANN201
    """``gateway_app`` on a real loopback port (``.make_url(path)``)."""
    return await aiohttp_server(gateway_app)


@pytest.fixture
async def gateway_client(aiohttp_client, gateway_server):  # noqa: ANN001, ANN201
    """An aiohttp test client talking to ``gateway_server``."""
    return await aiohttp_client(gateway_server)


@pytest.fixture
async def fake_upstream() -> AsyncIterator[Any]:
    """A scriptable fake provider on loopback; see :class:`gateway.testing.FakeUpstream`."""
    upstream = await FakeUpstream().start()
    try:
        yield upstream
    finally:
        await upstream.close()


@pytest.fixture
def log_capture() -> Iterator[Any]:
    """Capture the gateway's rendered JSON log lines (``.text``, ``.lines``, ``.events(name)``)."""
    cap = LogCapture()
    cap.install()
    try:
        yield cap
    finally:
        cap.uninstall()
