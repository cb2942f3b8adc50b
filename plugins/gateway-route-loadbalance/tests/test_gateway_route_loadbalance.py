"""The 'loadbalance' strategy plugin: the strategy contract, then its own behaviour."""
from __future__ import annotations

import random
from typing import Any

import gateway_route_loadbalance
from gateway.testing import Reply
from gateway.testing.contracts import IMAGES, StrategyPluginContract


class TestLoadBalance(StrategyPluginContract):
    mode = "loadbalance"
    entrypoint = "route-loadbalance"
    plugins = [gateway_route_loadbalance]

    async def test_draws_follow_the_weights(self, gateway_client: Any, gateway_services: Any,
                                            fake_upstream: Any) -> None:
        gateway_services.registry.strategies["loadbalance"].rng = random.Random(7)
        headers = self.config_header([self.target("light", weight=1), self.target("heavy", weight=3),
                                      self.target("never", weight=0)])
        n = 800
        for _ in range(n):
            resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=headers)
            assert resp.status == 200
            await resp.read()
        got = self.keys_sent(fake_upstream)
        assert "never" not in got
        share = got.count("heavy") / n
        # binomial sd = sqrt(.75 * .25 / 800) ~ 0.015: four sd either way
        assert 0.69 < share < 0.81, share

    async def test_there_is_no_failover(self, gateway_client: Any, fake_upstream: Any) -> None:
        fake_upstream.on("POST", IMAGES, Reply(500, json={"error": {"message": "down"}}))
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header())
        assert resp.status == 500 and len(fake_upstream.requests) == 1

    async def test_draws_are_repeatable_with_a_seeded_rng(self, gateway_client: Any, gateway_services: Any,
                                                          fake_upstream: Any) -> None:
        picks = []
        for _ in range(2):
            gateway_services.registry.strategies["loadbalance"].rng = random.Random(42)
            fake_upstream.requests.clear()
            for _ in range(20):
                await (await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header())).read()
            picks.append(self.keys_sent(fake_upstream))
        assert picks[0] == picks[1] and len(set(picks[0])) == 2

    async def test_all_weights_zero_is_a_400_naming_the_path(self, gateway_client: Any, fake_upstream: Any) -> None:
        headers = self.config_header([self.target("a", weight=0), self.target("b", weight=0)])
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=headers)
        assert resp.status == 400
        assert "weight is 0" in (await resp.json())["error"]["message"]
        assert fake_upstream.requests == []
