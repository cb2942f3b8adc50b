"""The 'single' strategy plugin: the strategy contract, then its own behaviour."""
from __future__ import annotations

from typing import Any

import gateway_route_single
from gateway.testing import Reply
from gateway.testing.contracts import IMAGES, StrategyPluginContract


class TestSingle(StrategyPluginContract):
    mode = "single"
    entrypoint = "route-single"
    plugins = [gateway_route_single]

    async def test_uses_the_first_target_only(self, gateway_client: Any, fake_upstream: Any) -> None:
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"},
                                         headers=self.config_header([self.target("only"), self.target("never")]))
        assert resp.status == 200 and self.keys_sent(fake_upstream) == ["only"]
        assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[0]"

    async def test_a_failure_is_the_answer(self, gateway_client: Any, fake_upstream: Any) -> None:
        fake_upstream.on("POST", IMAGES, Reply(500, json={"error": {"message": "down"}}))
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header())
        assert resp.status == 500 and self.keys_sent(fake_upstream) == ["a"]
