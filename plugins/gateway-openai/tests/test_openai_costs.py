"""What an OpenAI request costs (gateway_openai/prices.py): exact from the answer's ``usage`` at the
token prices, estimated from the per-image tables when an answer has none; streams on the log line."""
from __future__ import annotations

import pytest
from aiohttp import web

from gateway.testing import PNG_1X1, Recorded, edit_form
from gateway_openai.prices import PRICES

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "openai", "Authorization": "Bearer sk-openai-1"}


async def test_usage_gives_an_exact_cost(gateway_client, fake_upstream, log_capture) -> None:  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1", "n": 2}, headers=H)
    assert resp.status == 200, await resp.text()
    # The fake's usage: 10 input tokens (text: no split given), 100 output image tokens; n=2 is one call.
    expected = (10 * 5.00 + 100 * 40.00) / 1_000_000
    assert resp.headers["x-gateway-cost"] == f"{expected:.6f}"
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] == pytest.approx(expected) and line["cost_exact"] is True


async def test_input_and_output_kinds_are_priced_apart(gateway_client, fake_upstream,  # noqa: ANN001
                                                       log_capture) -> None:
    usage = {"input_tokens": 1050, "input_tokens_details": {"text_tokens": 50, "image_tokens": 1000},
             "output_tokens": 4200, "output_tokens_details": {"image_tokens": 4160, "text_tokens": 40},
             "total_tokens": 5250}

    async def answer(request: web.Request, rec: Recorded) -> web.Response:
        return web.json_response({"created": 1, "data": [{"b64_json": "aW1n"}], "usage": usage})

    fake_upstream.on("POST", "/v1/images/generations", answer)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1.5"}, headers=H)
    expected = (50 * 5.00 + 1000 * 8.00 + 4160 * 32.00 + 40 * 10.00) / 1_000_000
    assert resp.headers["x-gateway-cost"] == f"{expected:.6f}"
    assert log_capture.events("request.finished")[-1]["cost_exact"] is True


async def test_without_usage_the_table_estimates(gateway_client, fake_upstream, log_capture) -> None:  # noqa: ANN001
    async def answer(request: web.Request, rec: Recorded) -> web.Response:
        return web.json_response({"created": 1, "data": [{"b64_json": "aW1n"}, {"b64_json": "aW1n"}]})

    fake_upstream.on("POST", "/v1/images/generations", answer)
    body = {"prompt": "a fox", "model": "gpt-image-1-mini", "n": 2, "size": "1536x1024", "quality": "high"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.headers["x-gateway-cost"] == "0.104000"  # 2 x $0.052
    assert log_capture.events("request.finished")[-1]["cost_exact"] is False
    # gpt-image-2 has no per-image table: without usage its cost is unknown.
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-2"}, headers=H)
    assert resp.status == 200 and "x-gateway-cost" not in resp.headers


async def test_an_edit_is_priced_from_its_usage(gateway_client, fake_upstream) -> None:  # noqa: ANN001
    form = edit_form(PNG_1X1, prompt="a hat", model="gpt-image-1")
    resp = await gateway_client.post("/v1/images/edits", data=form, headers=H)
    assert resp.status == 200, await resp.text()
    # The fake's edit usage: 10 text and 5 image input tokens (one image), 100 output image tokens.
    assert resp.headers["x-gateway-cost"] == f"{(10 * 5.00 + 5 * 10.00 + 100 * 40.00) / 1_000_000:.6f}"


async def test_a_stream_has_its_cost_on_the_log_line_not_in_a_header(gateway_client, fake_upstream,  # noqa: ANN001
                                                                     log_capture) -> None:
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1", "stream": True},
                                     headers=H)
    assert resp.status == 200
    await resp.read()
    assert "x-gateway-cost" not in resp.headers  # sent before the image was made
    line = log_capture.events("request.finished")[-1]
    assert line["stream"]["mode"] == "native"
    assert line["cost"] == pytest.approx((10 * 5.00 + 100 * 40.00) / 1_000_000) and line["cost_exact"] is True


def test_every_listed_model_has_a_price() -> None:
    models = {row.model for row in PRICES}
    assert {"gpt-image-1", "gpt-image-1-mini*", "gpt-image-1.5*", "gpt-image-2*"} <= models
    assert not [row for row in PRICES if row.model.startswith("dall-e")]  # shut down: not listed


async def test_usage_without_a_known_model_is_no_cost(gateway_client, fake_upstream) -> None:  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "chatgpt-image-latest"}, headers=H)
    assert resp.status == 200 and "x-gateway-cost" not in resp.headers
