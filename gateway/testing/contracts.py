"""Test suites a plugin subclasses to prove it behaves like a gateway plugin.

``StrategyPluginContract``: set ``mode`` (the ``strategy.mode`` value),
``entrypoint`` (the plugin's entry-point name) and ``plugins`` (modules to
register, including the OpenAI provider the checks route to); pytest collects
the inherited tests.
"""
from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import pytest

from gateway.app import create_app
from gateway.keys import GATEWAY


class StrategyPluginContract:
    """Checks every routing-strategy plugin must pass."""

    mode: ClassVar[str]
    entrypoint: ClassVar[str]
    #: Extra ``strategy`` fields a valid config of this mode needs.
    strategy_fields: ClassVar[dict[str, Any]] = {}

    def config_header(self, **strategy: Any) -> dict[str, str]:
        node = {"strategy": {"mode": self.mode, **self.strategy_fields, **strategy},
                "targets": [{"name": "a", "provider": "openai", "api_key": "sk-a"},
                            {"name": "b", "provider": "openai", "api_key": "sk-b"}]}
        return {"x-portkey-config": msgspec.json.encode(node).decode()}

    @pytest.mark.gateway_entrypoints
    def test_plugin_is_installed(self, gateway_app: Any) -> None:
        assert self.mode in gateway_app[GATEWAY].registry.strategies
        names = [name for name, _ in gateway_app[GATEWAY].pm.list_name_plugin()]
        assert self.entrypoint in names

    async def test_disabled_plugin_makes_configs_using_it_a_400(self, aiohttp_client: Any, fake_upstream: Any) -> None:
        app = create_app({"plugins": {"disable": [self.entrypoint]},
                          "providers": {"openai": {"base_url": fake_upstream.url + "/v1"}}}, load_entrypoints=True)
        client = await aiohttp_client(app)
        resp = await client.post("/v1/images/generations", json={"prompt": "x"}, headers=self.config_header())
        assert resp.status == 400
        assert f"unknown strategy mode {self.mode!r}" in (await resp.json())["error"]["message"]
        assert fake_upstream.requests == []

    async def test_a_valid_config_routes_to_a_target(self, gateway_client: Any, fake_upstream: Any) -> None:
        from gateway.testing import Reply

        fake_upstream.on("POST", "/v1/images/generations", Reply(json={"created": 1, "data": [{"b64_json": "aGk="}]}))
        resp = await gateway_client.post("/v1/images/generations", json={"prompt": "x"}, headers=self.config_header())
        assert resp.status == 200
        assert resp.headers["x-portkey-last-used-option-index"] in ("config.targets[0]", "config.targets[1]")
        assert len(fake_upstream.requests) == 1
