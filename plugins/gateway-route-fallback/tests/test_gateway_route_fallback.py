"""The 'fallback' strategy plugin: the strategy contract, then its own behaviour."""
from __future__ import annotations

from typing import Any

import gateway_route_fallback
from gateway.testing import Reply
from gateway.testing.contracts import IMAGES, StrategyPluginContract

OK = {"created": 1, "data": [{"b64_json": "aW1hZ2U="}]}


def down(status: int, message: str = "down") -> Reply:
    return Reply(status, json={"error": {"message": message}})


class TestFallback(StrategyPluginContract):
    mode = "fallback"
    entrypoint = "route-fallback"
    plugins = [gateway_route_fallback]

    async def test_moves_on_after_a_non_2xx(self, gateway_client: Any, fake_upstream: Any, log_capture: Any) -> None:
        fake_upstream.on("POST", IMAGES, down(500), Reply(json=OK))
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header())
        assert resp.status == 200 and await resp.json() == {**OK, "provider": "fake"}
        assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
        assert self.keys_sent(fake_upstream) == ["a", "b"]
        line = log_capture.events("request.finished")[-1]
        assert line["attempts"] == 2 and line["path_taken"] == ["config.targets[0]", "config.targets[1]"]
        assert [t["status"] for t in line["tries"]] == [500, 200]

    async def test_moves_on_only_after_listed_statuses(self, gateway_client: Any, fake_upstream: Any) -> None:
        fake_upstream.on("POST", IMAGES, down(500), Reply(json=OK))
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header(on_status_codes=[429]))
        assert resp.status == 500
        assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
        assert self.keys_sent(fake_upstream) == ["a"]
        fake_upstream.requests.clear()
        fake_upstream.on("POST", IMAGES, down(429), Reply(json=OK))
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header(on_status_codes=[429]))
        assert resp.status == 200 and self.keys_sent(fake_upstream) == ["a", "b"]

    async def test_when_every_target_fails_the_last_answer_stands(self, gateway_client: Any, fake_upstream: Any) -> None:
        fake_upstream.on("POST", IMAGES, down(500, "one"), down(503, "two"))
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header())
        assert resp.status == 503
        assert (await resp.json())["error"]["message"] == "fake error: two"
        assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"

    async def test_skips_targets_that_cannot_serve(self, gateway_client: Any, fake_upstream: Any) -> None:
        targets = [{"provider": "not-installed", "api_key": "x"}, self.target("b")]
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header(targets))
        assert resp.status == 200
        assert resp.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
        # Nothing that can serve: the reason the last target could not is the answer.
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"},
                                         headers=self.config_header([{"provider": "not-installed", "api_key": "x"}]))
        assert resp.status == 400 and "not-installed" in (await resp.json())["error"]["message"]

    async def test_a_strict_parameter_one_target_refuses_moves_on(self, gateway_client: Any, fake_upstream: Any) -> None:
        fake_upstream.on("POST", IMAGES, Reply(json=OK))
        headers = {**self.config_header([self.target("a", override_params={"model": "fake-image"}),
                                         self.target("b", override_params={"model": "any-size-model"})]),
                   "x-portkey-strict-params": "true"}
        resp = await gateway_client.post(IMAGES, json={"prompt": "x", "size": "1792x1024"}, headers=headers)
        assert resp.status == 200 and self.keys_sent(fake_upstream) == ["b"]

    async def test_on_status_codes_is_checked_with_its_path(self, gateway_client: Any, fake_upstream: Any) -> None:
        resp = await gateway_client.post(IMAGES, json={"prompt": "x"}, headers=self.config_header(on_status_codes="500"))
        assert resp.status == 400
        assert "$.strategy.on_status_codes" in (await resp.json())["error"]["message"]
        assert fake_upstream.requests == []
