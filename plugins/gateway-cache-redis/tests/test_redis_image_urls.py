"""Signed image URLs across two real gateway processes sharing a real redis-server: without a
configured secret, the one each generates at start-up is settled in Redis, so a URL made by one
instance is served by the other (``images.store = "cache"``: every instance has every image)."""
from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from test_gateway_cache_redis import GEN, REDIS, GatewayProcess, redis, two_gateways  # noqa: F401 - the fixture

from gateway.testing import PNG_1X1, Reply

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (.ci/run installs it)")


@pytest.fixture
async def pair(tmp_path, redis, fake_upstream) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess, aiohttp.ClientSession]]:  # noqa: ANN001, F811
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[providers.openai]
base_url = "{fake_upstream.url}/v1"

[security]
gateway_keys = ["gk-1"]

[cache]
backend = "redis"

[images]
store = "cache"

[redis]
url = "{redis.url}"
""")
    async with two_gateways(config) as pair:
        yield pair


async def image_url(session: aiohttp.ClientSession, gw: GatewayProcess) -> str:
    async with session.post(gw.url + GEN, json={"prompt": "a fox", "model": "gpt-image-1", "response_format": "url"},
                            headers={"x-portkey-provider": "openai", "Authorization": "Bearer sk-1",
                                     "x-portkey-api-key": "gk-1"}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["data"][0]["url"]


async def test_a_url_made_by_one_instance_is_served_by_the_other(pair, fake_upstream):  # noqa: ANN001
    a, b, session = pair
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": base64.b64encode(PNG_1X1).decode()}]}))
    for maker, server in ((a, b), (b, a)):
        url = await image_url(session, maker)
        assert url.startswith(maker.url + "/v1/images/files/")
        parts = urlsplit(url)
        # No header at all, as a browser loading <img src> on the other instance.
        async with session.get(f"{server.url}{parts.path}?{parts.query}") as image:
            assert image.status == 200, await image.text()
            assert await image.read() == PNG_1X1
        async with session.get(f"{server.url}{parts.path}?{parts.query}x") as forged:
            assert forged.status == 403
