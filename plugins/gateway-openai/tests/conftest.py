"""The OpenAI plugin on the fake of OpenAI's images API (gateway_openai.testing)."""
from __future__ import annotations

from typing import Any

import pytest

import gateway_openai
from gateway_openai import testing as openai_fake


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return [gateway_openai]


@pytest.fixture
def gateway_settings(fake_upstream: Any) -> dict[str, Any]:
    openai_fake.install(fake_upstream)
    return {"providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}
