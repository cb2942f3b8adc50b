"""Fixtures shared by the Azure OpenAI plugin's tests: the plugin, and a gateway whose
``azure-openai`` base URL is the fake's resource root."""
from __future__ import annotations

import gateway_azure_openai
import pytest

from gateway_azure_openai import testing as fake_api

KEY = "azure-key-1"


@pytest.fixture
def azure(fake_upstream):  # noqa: ANN001, ANN201
    """The fake Azure OpenAI resource ``contoso`` (deployments ``img``, ``mini``, ``dalle``, ``gone``)."""
    return fake_api.install(fake_upstream)


@pytest.fixture
def gateway_plugins():  # noqa: ANN201
    return [gateway_azure_openai]


@pytest.fixture
def gateway_settings(fake_upstream, azure):  # noqa: ANN001, ANN201
    return {
        "providers": {"azure-openai": {"base_url": fake_upstream.url + "/{resource_name}/openai"}},
        "virtual_keys": {"azure-prod": {"provider": "azure-openai", "api_key": KEY, "resource_name": "contoso",
                                        "deployment_id": "dalle", "api_version": "2024-10-21"}},
    }
