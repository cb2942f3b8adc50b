"""Test suites a plugin subclasses to prove it behaves like a gateway plugin.

``StrategyPluginContract``: set ``mode`` (the ``strategy.mode`` value),
``entrypoint`` (the plugin's entry-point name) and ``plugins`` (the strategy's
modules); pytest collects the inherited checks.  Requests go to the neutral
:mod:`gateway.testing.fake_provider` on ``fake_upstream``, so no provider plugin
is needed.  A strategy's own behaviour tests are methods of the subclass:
they get the same fixtures and :meth:`StrategyPluginContract.config_header`.
"""
from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import pytest

from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.testing import FakeUpstream
from gateway.testing import fake_provider

IMAGES = "/v1/images/generations"


class StrategyPluginContract:
    """Checks every routing-strategy plugin must pass."""

    mode: ClassVar[str]
    entrypoint: ClassVar[str]
    #: The strategy plugin's modules.
    plugins: ClassVar[list[Any]]
    #: Extra ``strategy`` fields a valid config of this mode needs.
    strategy_fields: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def gateway_plugins(self) -> list[Any]:
        return [fake_provider.plugin, *self.plugins]

    @pytest.fixture
    def gateway_settings(self, fake_upstream: FakeUpstream) -> dict[str, Any]:
        fake_provider.install(fake_upstream)
        return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}}

    @classmethod
    def target(cls, name: str, **fields: Any) -> dict[str, Any]:
        """A leaf to the fake provider named ``name`` (its key is ``sk-<name>``)."""
        return {"name": name, "provider": "fake", "api_key": f"sk-{name}", **fields}

    @classmethod
    def config_header(cls, targets: list[dict[str, Any]] | None = None, **strategy: Any) -> dict[str, str]:
        """``x-portkey-config`` of one node of this mode (targets ``a`` and ``b`` by default)."""
        node = {"strategy": {"mode": cls.mode, **cls.strategy_fields, **strategy},
                "targets": targets if targets is not None else [cls.target("a"), cls.target("b")]}
        return {"x-portkey-config": msgspec.json.encode(node).decode()}

    @staticmethod
    def keys_sent(fake_upstream: FakeUpstream) -> list[str]:
        """The provider key of every generation the fake received, in order."""
        return [r.headers["Authorization"].removeprefix("Bearer sk-") for r in fake_upstream.requests
                if r.path == "/v1/images/generations"]

    @pytest.mark.gateway_entrypoints
    def test_plugin_is_installed(self, gateway_app: Any) -> None:
        assert self.mode in gateway_app[GATEWAY].registry.strategies
        names = [name for name, _ in gateway_app[GATEWAY].pm.list_name_plugin()]
        assert self.entrypoint in names

    async def test_disabled_plugin_makes_configs_using_it_a_400(self, aiohttp_client: Any, fake_upstream: FakeUpstream,
                                                                 gateway_settings: dict[str, Any]) -> None:
        app = create_app({"plugins": {"disable": [self.entrypoint]}, **gateway_settings},
                         plugins=[fake_provider.plugin], load_entrypoints=True)
        client = await aiohttp_client(app)
        resp = await client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header())
        assert resp.status == 400
        assert f"unknown strategy mode {self.mode!r}" in (await resp.json())["error"]["message"]
        assert fake_upstream.requests == []

    async def test_a_valid_config_routes_to_a_target(self, gateway_client: Any, fake_upstream: FakeUpstream) -> None:
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header())
        assert resp.status == 200, await resp.text()
        assert resp.headers["x-portkey-last-used-option-index"] in ("config.targets[0]", "config.targets[1]")
        assert (await resp.json())["provider"] == "fake"
        assert len(fake_upstream.requests) == 1
