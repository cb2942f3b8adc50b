"""Shared fixtures: the OpenAI plugin registered, its base URL on a fake upstream."""
from __future__ import annotations

from typing import Any

import gateway_openai
import pytest


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return [gateway_openai]


@pytest.fixture
def gateway_settings(fake_upstream) -> dict[str, Any]:  # noqa: ANN001
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}
