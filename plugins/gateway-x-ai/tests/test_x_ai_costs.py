"""What an xAI request costs (``XAIProvider.prices``): grok-imagine-image at a flat $0.02 an image made,
whatever the aspect ratio or resolution, an estimate; ``n`` images of one call are ``n`` images; an
edit's input images are billed at a price not published, so an edit's cost is unknown; the
grok-imagine-image-2 family is not priced.

Every expected number below is worked out by hand from the price row, so a changed row fails here."""
from __future__ import annotations

import pytest

from gateway.testing import edit_form
from gateway.testing.provider_contract import make_png
from gateway_x_ai import XAIProvider
from gateway_x_ai.testing import EDITS, GENERATIONS, KEY

H = {"x-portkey-provider": "x-ai", "Authorization": f"Bearer {KEY}"}


async def test_the_default_model_is_two_cents_an_image(gateway_client, fake_upstream, xai, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox", "response_format": "b64_json"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json()["model"] == "grok-imagine-image"
    assert resp.headers["x-gateway-cost"] == "0.020000"  # grok-imagine-image: $0.02 an image
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.02) and line["cost_exact"] is False


@pytest.mark.parametrize(("size", "sent"), [
    ("1024x1024", {"aspect_ratio": "1:1", "resolution": "1k"}),
    ("1792x1024", {"aspect_ratio": "16:9", "resolution": "1k"}),
    ("2048x2048", {"aspect_ratio": "1:1", "resolution": "2k"}),
])
async def test_the_price_is_flat_whatever_the_size(gateway_client, fake_upstream, xai, size, sent):  # noqa: ANN001
    body = {"prompt": "a fox", "model": "grok-imagine-image", "size": size, "response_format": "b64_json"}
    resp = await gateway_client.post(GENERATIONS, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert {k: fake_upstream.last.json()[k] for k in sent} == sent
    assert resp.headers["x-gateway-cost"] == "0.020000"  # $0.02 at 1k and 2k alike


async def test_n_images_of_one_call_are_n_images(gateway_client, fake_upstream, xai, log_capture):  # noqa: ANN001
    body = {"prompt": "a fox", "model": "grok-imagine-image", "n": 4, "response_format": "url"}
    resp = await gateway_client.post(GENERATIONS, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 4
    assert [r.path for r in fake_upstream.requests] == [GENERATIONS]  # one call made the four
    # 4 x $0.02 = $0.08 (the fake's own count agrees: 4 x 200,000,000 ticks of $1e-10).
    assert resp.headers["x-gateway-cost"] == "0.080000"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.08) and line["cost_exact"] is False


@pytest.mark.parametrize("model", ["grok-imagine-image-2.0", "grok-imagine-image-quality"])
async def test_a_model_without_a_price_has_no_cost(gateway_client, xai, log_capture, model):  # noqa: ANN001
    resp = await gateway_client.post(GENERATIONS, json={"prompt": "a fox", "model": model,
                                                        "response_format": "b64_json"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.finished()
    assert line["cost"] is None and line["cost_exact"] is False


async def test_an_edit_has_no_cost_its_input_images_price_is_unknown(gateway_client, fake_upstream,  # noqa: ANN001
                                                                     xai, log_capture):
    form = edit_form(make_png(1), prompt="add a hat", model="grok-imagine-image", response_format="b64_json")
    resp = await gateway_client.post(EDITS, data=form, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == EDITS
    # The output image would be $0.02; the input image's price is not published (input_image None).
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.finished()
    assert line["cost"] is None and line["cost_exact"] is False


def test_one_row_prices_generations_only() -> None:
    [row] = XAIProvider.prices
    assert (row.model, row.size, row.quality, row.input_image) == ("grok-imagine-image", "*", "*", None)
