"""Fixtures shared by the Azure OpenAI plugin's tests."""
from __future__ import annotations

import pytest

from gateway_azure_openai import testing as fake_api


@pytest.fixture
def azure(fake_upstream):  # noqa: ANN001, ANN201
    """The fake Azure OpenAI resource ``contoso`` (deployments ``img``, ``mini``, ``dalle``, ``gone``)."""
    return fake_api.install(fake_upstream)
