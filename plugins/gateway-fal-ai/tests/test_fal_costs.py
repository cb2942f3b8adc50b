"""What a fal.ai request costs (``FalProvider.prices``): FLUX1.1 [pro] ultra at $0.06 an image, an
estimate, whatever its aspect ratio; ``n`` images of one queued request are ``n`` images and
parallel requests add up; every other endpoint is unpriced (unknown until the settings price it),
and a request fal refuses costs nothing ("you pay only for successful outputs").

Every expected number below is worked out by hand from the price row, so a changed row fails here."""
from __future__ import annotations

from typing import Any

import pytest

from gateway_fal_ai import FalProvider
from gateway_fal_ai.testing import install

#: Where the fake serves the queue (conftest.py puts it in the base URL).
PREFIX = "/queue"
GEN = "/v1/images/generations"
H = {"x-portkey-provider": "fal-ai", "Authorization": "Bearer fal-id:fal-secret"}
ULTRA = "fal-ai/flux-pro/v1.1-ultra"


def submits(upstream) -> list[Any]:  # noqa: ANN001
    return [r for r in upstream.requests if r.method == "POST"]


async def test_ultra_is_six_cents_an_image_and_estimated(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                         log_capture):
    install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": ULTRA}, headers=H)
    assert resp.status == 200, await resp.text()
    assert [r.path for r in submits(fake_upstream)] == [PREFIX + "/" + ULTRA]
    assert resp.headers["x-gateway-cost"] == "0.060000"  # $0.06 an image
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.06) and line["cost_exact"] is False


@pytest.mark.parametrize(("size", "ratio"), [("1024x1024", "1:1"), ("1792x1024", "16:9"), ("1024x1536", "2:3")])
async def test_the_price_is_flat_whatever_the_aspect_ratio(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                           size, ratio):
    install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": ULTRA, "size": size}, headers=H)
    assert resp.status == 200, await resp.text()
    assert submits(fake_upstream)[-1].json()["aspect_ratio"] == ratio
    assert resp.headers["x-gateway-cost"] == "0.060000"  # $0.06 at any aspect ratio


async def test_n_images_of_one_request_are_n_images(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                    log_capture):
    fal = install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": ULTRA, "n": 3}, headers=H)
    assert resp.status == 200, await resp.text()
    assert len(fal.requests) == 1 and submits(fake_upstream)[0].json()["num_images"] == 3
    assert len((await resp.json())["data"]) == 3
    assert resp.headers["x-gateway-cost"] == "0.180000"  # one request of 3 images: 3 x $0.06
    assert log_capture.finished()["cost"] == pytest.approx(0.18)


async def test_more_images_than_one_request_makes_fan_out_and_add_up(gateway_client, fake_upstream,  # noqa: ANN001
                                                                     sleeps, log_capture):
    fal = install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": ULTRA, "n": 6}, headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 6
    # At most 4 a request (num_images 1-4): two requests, of 4 and 2 images.
    assert sorted(r.input["num_images"] for r in fal.requests.values()) == [2, 4]
    assert resp.headers["x-gateway-cost"] == "0.360000"  # 4 x $0.06 + 2 x $0.06 = 0.24 + 0.12
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.36) and line["cost_exact"] is False


@pytest.mark.parametrize("model", ["fal-ai/flux/dev", "fal-ai/flux-pro/v1.1", "fal-ai/flux-2-pro",
                                   "fal-ai/bytedance/seedream/v4/text-to-image"])
async def test_an_endpoint_without_a_price_has_no_cost(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                       log_capture, model):
    install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": model, "size": "1024x1024"},
                                     headers=H)
    assert resp.status == 200, await resp.text()
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.finished()
    assert line["cost"] is None and line["cost_exact"] is False


async def test_the_default_model_is_not_priced(gateway_client, fake_upstream, sleeps):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, steps=1)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert submits(fake_upstream)[0].path == PREFIX + "/fal-ai/flux/dev"
    assert "x-gateway-cost" not in resp.headers


async def test_a_refused_request_costs_nothing(gateway_client, fake_upstream, sleeps, log_capture):  # noqa: ANN001
    install(fake_upstream, prefix=PREFIX, steps=1, refuse="forbidden")
    resp = await gateway_client.post(GEN, json={"prompt": "a forbidden fox", "model": ULTRA}, headers=H)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "content_policy_violation"
    # No output: no billed call, so nothing of the $0.06 is counted.
    assert resp.headers["x-gateway-cost"] == "0.000000"
    line = log_capture.finished()
    assert line["cost"] == 0.0 and line["cost_exact"] is False


def test_one_row_prices_ultra_only() -> None:
    [row] = FalProvider.prices
    assert (row.model, row.size, row.quality) == (ULTRA, "*", "*")
