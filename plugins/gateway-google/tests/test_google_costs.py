"""What a Gemini image request costs (gateway_google/prices.py), on the Gemini API and on Vertex AI:
the output image tokens of ``usageMetadata`` at the model's output image price.  The input and
text/thinking prices are not shipped, so such a cost is an estimate (``cost_exact`` false) until
the settings price them; Gemini 2.5 Flash Image has a per-image price for an answer without usage.

The fake's usage (gateway_google/testing.py): 9 input text tokens, the tier's image tokens
(3 Pro: 1K/2K 1120, 4K 2000; 3.1 Flash: 512 747, 1K 1120, 2K 1680, 4K 2520; 2.5 Flash: 1290) and,
for the thinking Gemini 3 models, 180 thought tokens.  Every expected number below is worked out
by hand from the price rows, so a changed row fails here."""
from __future__ import annotations

from typing import Any

import msgspec
import pytest
from aiohttp import web

from gateway.sdk import PerToken
from gateway.testing import FakeUpstream, Recorded, edit_form
from gateway.testing.provider_contract import make_png
from gateway_google.prices import PRICES
from gateway_google.testing import KEY, GoogleFake, vertex_path

GEN = "/v1/images/generations"
EDITS = "/v1/images/edits"
GEMINI = {"x-portkey-provider": "google", "Authorization": f"Bearer {KEY}"}
VERTEX = {"x-portkey-virtual-key": "vertex-prod"}


@pytest.fixture
def gateway_settings(request, gateway_settings):  # noqa: ANN001, ANN201
    """The conftest's settings; ``indirect`` parametrization adds sections (``[prices]``)."""
    return {**gateway_settings, **getattr(request, "param", {})}


async def generate(client, body: dict[str, Any], headers: dict[str, str] = GEMINI):  # noqa: ANN001, ANN201
    resp = await client.post(GEN, json={"response_format": "b64_json", **body}, headers=headers)
    assert resp.status == 200, await resp.text()
    return resp


async def test_output_image_tokens_are_priced_and_the_cost_is_an_estimate(gateway_client,  # noqa: ANN001
                                                                          gemini: GoogleFake, log_capture):
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "gemini-3-pro-image", "size": "1536x1024"})
    assert gemini.generations()[-1].json()["generationConfig"]["imageConfig"]["imageSize"] == "1K"
    usage = (await resp.json())["usage"]
    assert usage["output_tokens_details"] == {"image_tokens": 1120, "reasoning_tokens": 180}
    # 3 Pro at 1K: 1120 image tokens x $120 / 1M = $0.1344; the 9 input text tokens and the 180
    # thought tokens have no shipped price: left out, so an estimate.
    assert resp.headers["x-gateway-cost"] == "0.134400"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(1120 * 120.00 / 1_000_000) and line["cost_exact"] is False


@pytest.mark.parametrize(("model", "ask", "tier", "cost"), [
    ("gemini-3-pro-image", {"size": "4096x4096"}, "4K", "0.240000"),          # 2000 x $120 / 1M
    ("gemini-3-pro-image-preview", {"quality": "high"}, "2K", "0.134400"),   # 1120 x $120 / 1M
    ("gemini-3.1-flash-image", {"quality": "low"}, "512", "0.044820"),       # 747 x $60 / 1M
    ("gemini-3.1-flash-image", {}, None, "0.067200"),                        # 1K by default: 1120 x $60 / 1M
    ("gemini-3.1-flash-image-preview", {"quality": "high"}, "2K", "0.100800"),  # 1680 x $60 / 1M
    ("gemini-3.1-flash-image", {"size": "4096x4096"}, "4K", "0.151200"),     # 2520 x $60 / 1M
    ("gemini-2.5-flash-image", {}, None, "0.038700"),                        # 1290 x $30 / 1M (not the $0.039 row)
])
async def test_each_model_and_tier_is_its_image_tokens_at_the_models_price(  # noqa: ANN001, PLR0913
        gateway_client, gemini: GoogleFake, log_capture, model, ask, tier, cost):
    resp = await generate(gateway_client, {"prompt": "a fox", "model": model, **ask})
    assert gemini.generations()[-1].json()["generationConfig"].get("imageConfig", {}).get("imageSize") == tier
    assert resp.headers["x-gateway-cost"] == cost
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(float(cost)) and line["cost_exact"] is False


async def test_n_fans_out_and_the_calls_add_up(gateway_client, gemini: GoogleFake, log_capture):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "gemini-2.5-flash-image", "n": 3})
    assert len(gemini.generations()) == 3  # one image a call
    # Three calls of 1290 image tokens x $30 / 1M = $0.0387 each: 3 x 0.0387 = $0.1161.
    assert resp.headers["x-gateway-cost"] == "0.116100"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.1161) and line["cost_exact"] is False


async def test_an_edit_prices_its_output_image_only(gateway_client, gemini: GoogleFake, log_capture):  # noqa: ANN001
    form = edit_form(make_png(7), make_png(8), prompt="merge them", model="gemini-3.1-flash-image")
    resp = await gateway_client.post(EDITS, data=form, headers=GEMINI)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["usage"]["input_tokens_details"]["image_tokens"] == 2 * 560
    # 3.1 Flash at 1K: 1120 x $60 / 1M = $0.0672; the 1120 input image tokens have no shipped price.
    assert resp.headers["x-gateway-cost"] == "0.067200"
    assert log_capture.finished()["cost_exact"] is False


def without_usage(gemini: GoogleFake, model: str) -> Any:
    """The fake's handler of ``model``, its answer stripped of ``usageMetadata``."""
    handle = gemini.handler(model)

    async def answer(request: web.Request, rec: Recorded) -> web.StreamResponse:
        resp = await handle(request, rec)
        assert isinstance(resp, web.Response) and resp.status == 200
        doc = msgspec.json.decode(resp.body)
        del doc["usageMetadata"]
        return web.json_response(doc)

    return answer


async def test_without_usage_gemini_2_5_flash_image_has_its_per_image_price(  # noqa: ANN001
        gateway_client, fake_upstream: FakeUpstream, gemini: GoogleFake, log_capture):
    model = "gemini-2.5-flash-image"
    fake_upstream.on("POST", f"/v1beta/models/{model}:generateContent", without_usage(gemini, model))
    resp = await generate(gateway_client, {"prompt": "a fox", "model": model, "n": 2})
    assert "usage" not in await resp.json()
    # No usage: the PerImage row, $0.039 an image; two calls: 2 x 0.039 = $0.078.
    assert resp.headers["x-gateway-cost"] == "0.078000"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.078) and line["cost_exact"] is False


async def test_without_usage_a_model_priced_by_tokens_only_has_no_cost(  # noqa: ANN001
        gateway_client, fake_upstream: FakeUpstream, gemini: GoogleFake, log_capture):
    model = "gemini-3-pro-image"
    fake_upstream.on("POST", f"/v1beta/models/{model}:generateContent", without_usage(gemini, model))
    resp = await generate(gateway_client, {"prompt": "a fox", "model": model})
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.finished()
    assert line["cost"] is None and line["cost_exact"] is False


async def test_a_newer_model_without_a_row_has_no_cost(gateway_client, fake_upstream: FakeUpstream,  # noqa: ANN001
                                                       gemini: GoogleFake, log_capture):
    # A Gemini image model the plugin takes by family but no row prices (served here as 3 Pro is).
    fake_upstream.on("POST", "/v1beta/models/gemini-4-pro-image:generateContent", gemini.handler("gemini-3-pro-image"))
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "gemini-4-pro-image"})
    assert "usage" in await resp.json()  # usage, but no token row for the model
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.finished()
    assert line["cost"] is None and line["cost_exact"] is False


async def test_vertex_ai_has_the_same_prices(gateway_client, vertex: GoogleFake, log_capture):  # noqa: ANN001
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "gemini-3-pro-image", "n": 2,
                                           "size": "4096x4096"}, headers=VERTEX)
    assert [r.path for r in vertex.generations()] == [vertex_path("gemini-3-pro-image")] * 2
    # Two calls at 4K: 2 x 2000 x $120 / 1M = 2 x 0.24 = $0.48.
    assert resp.headers["x-gateway-cost"] == "0.480000"
    line = log_capture.finished()
    assert line["provider"] == "vertex-ai"
    assert line["cost"] == pytest.approx(0.48) and line["cost_exact"] is False


_EXACT = {"prices": {"google": {"gemini-3-pro-image": {"input_text": 2.0, "output_text": 12.0,
                                                       "output_image": 120.0}}}}


@pytest.mark.parametrize("gateway_settings", [_EXACT], indirect=True)
async def test_with_every_kind_of_token_priced_in_the_settings_the_cost_is_exact(  # noqa: ANN001
        gateway_client, log_capture):
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "gemini-3-pro-image"})
    # 9 input text tokens x $2 + 1120 image tokens x $120 + 180 thought tokens (text output) x $12, per 1M.
    expected = (9 * 2.0 + 1120 * 120.0 + 180 * 12.0) / 1_000_000
    assert resp.headers["x-gateway-cost"] == f"{expected:.6f}" == "0.136578"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(expected) and line["cost_exact"] is True
    # A model the settings do not name keeps the shipped rows (an estimate).
    resp = await generate(gateway_client, {"prompt": "a fox", "model": "gemini-3.1-flash-image"})
    assert resp.headers["x-gateway-cost"] == "0.067200"  # 1120 x $60 / 1M
    assert log_capture.finished()["cost_exact"] is False


def test_no_shipped_row_prices_input_or_text_tokens() -> None:
    tokens = [row for row in PRICES if isinstance(row, PerToken)]
    assert {row.model for row in tokens} == {"gemini-3-pro-image*", "gemini-3.1-flash-image*",
                                             "gemini-2.5-flash-image*"}
    assert all(row.input_text is None and row.input_image is None and row.output_text is None for row in tokens)
