"""Fixtures shared by the plugin's end-to-end tests: the real gateway with both providers, against
the fakes of the Gemini API, Vertex AI and Google's token endpoint on one FakeUpstream.

A probe (``gateway.testing.ServicesProbe``) keeps the app's services, so tests reach the
Vertex provider's token cache (to move its clock on) without the core's internals.
"""
from __future__ import annotations

from typing import Any

import pytest

from gateway.testing import FakeUpstream, ServicesProbe
from gateway_google import gemini_api, vertex_ai
from gateway_google.testing import (
    KEY,
    LOCATION,
    GoogleFake,
    TokenEndpoint,
    install,
    install_token_endpoint,
    install_vertex,
    make_service_account,
)


@pytest.fixture
def app_services() -> ServicesProbe:
    return ServicesProbe()


@pytest.fixture
def gateway_plugins(app_services: ServicesProbe) -> list[Any]:
    return [gemini_api, vertex_ai, app_services]


@pytest.fixture
def gemini(fake_upstream: FakeUpstream) -> GoogleFake:
    return install(fake_upstream)


@pytest.fixture
def vertex(fake_upstream: FakeUpstream) -> GoogleFake:
    """Vertex AI for the test project in us-central1 and global."""
    api = install_vertex(fake_upstream)
    return install_vertex(fake_upstream, location="global", api=api)


@pytest.fixture
def token_endpoint(fake_upstream: FakeUpstream, vertex: GoogleFake) -> TokenEndpoint:
    return install_token_endpoint(fake_upstream, vertex=vertex)


@pytest.fixture
def service_account(fake_upstream: FakeUpstream) -> dict[str, Any]:
    """A key file whose ``token_uri`` is the fake's token endpoint."""
    return make_service_account(fake_upstream.url + "/token")


@pytest.fixture
def gateway_settings(fake_upstream: FakeUpstream, gemini: GoogleFake, vertex: GoogleFake,
                     token_endpoint: TokenEndpoint, service_account: dict[str, Any]) -> dict[str, Any]:
    return {
        "providers": {"google": {"base_url": fake_upstream.url + "/v1beta"},
                      "vertex-ai": {"base_url": fake_upstream.url}},
        "virtual_keys": {
            "vertex-prod": {"provider": "vertex-ai", "vertex_service_account_json": service_account,
                            "vertex_region": LOCATION},
            "gemini-prod": {"provider": "google", "api_key": KEY},
        },
    }
