"""Fixtures shared by the Replicate plugin's tests.

The app is the pytest plugin's ``gateway_app`` with this plugin and a probe
(``gateway.testing.ServicesProbe``) that keeps the app's :class:`~gateway.sdk.Services`,
so tests reach the registry and swap the sleeper the core hands providers
as ``upstream.sleep`` without importing the core's internals.  ``gateway_images`` reads an
answer's image URLs back from the gateway.
"""
from __future__ import annotations


from collections.abc import Awaitable, Callable

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


@pytest.fixture
def gateway_images(gateway_client) -> Callable[[list[str]], Awaitable[list[bytes]]]:  # noqa: ANN001
    """``await gateway_images(urls)``: each URL's bytes, in order, GET from the gateway itself.

    Replicate deletes output files after an hour, so the provider declares
    ``result_urls_expire``: each URL must be the gateway's own (a signed
    ``/v1/images/files/...`` on the address the client called), and it must serve the image."""
    files = str(gateway_client.make_url("/v1/images/files/"))

    async def get(urls: list[str]) -> list[bytes]:
        out = []
        for url in urls:
            assert url.startswith(files) and "sig=" in url, url
            resp = await gateway_client.get(url[url.index("/v1/"):])
            assert resp.status == 200, await resp.text()
            out.append(await resp.read())
        return out

    return get
