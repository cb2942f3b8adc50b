"""Shared fixtures: the first-party plugins registered, its base URL on a fake upstream."""
from __future__ import annotations

from typing import Any

import pytest
from first_party import FIRST_PARTY


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return list(FIRST_PARTY)


@pytest.fixture
def gateway_settings(fake_upstream) -> dict[str, Any]:  # noqa: ANN001
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"},
                          "stability-ai": {"base_url": fake_upstream.url}}}
