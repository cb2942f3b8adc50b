"""What an Azure OpenAI request costs (gateway_azure_openai/prices.py): exact from the answer's
``usage`` at the token prices; estimated from the per-image tables (by size and quality) when an
answer has none; unknown for a model without a row (DALL-E 3, a deployment name).

The fake's usage (gateway_azure_openai/testing.py): a generation 12 input text tokens and 4160
output tokens (no split: image tokens), whatever ``n``; an edit also 40 input image tokens per
image.  Every expected number below is worked out by hand from the price rows, so a changed row
fails here."""
from __future__ import annotations

from typing import Any

import msgspec
import pytest
from aiohttp import web

from gateway.sdk import PerImage
from gateway.testing import PNG_1X1, edit_form
from gateway_azure_openai import testing as fake_api
from gateway_azure_openai.prices import PRICES

GEN = "/v1/images/generations"
EDITS = "/v1/images/edits"
KEY = "azure-key-1"
H = {
    "x-portkey-provider": "azure-openai", "Authorization": f"Bearer {KEY}",
    "x-portkey-azure-resource-name": "contoso", "x-portkey-azure-deployment-id": "img",
    "x-portkey-azure-api-version": "2025-04-01-preview",
}
#: The conftest's deployments, and one of each further GPT image model.
DEPLOYMENTS = {"img": "gpt-image-1", "mini": "gpt-image-1-mini", "dalle": "dall-e-3", "gone": None,
               "img15": "gpt-image-1.5", "img2": "gpt-image-2"}


class WithoutUsage(fake_api.AzureOpenAIFake):
    """The fake, its (non-streamed) answers without ``usage``: as an answer the gateway must estimate."""

    def _answer(self, model: str, body: dict[str, Any], image_tokens: int = 0) -> web.Response:
        resp = super()._answer(model, body, image_tokens)
        assert isinstance(resp.body, bytes)
        doc = msgspec.json.decode(resp.body)
        doc.pop("usage", None)
        return web.json_response(doc, headers={"apim-request-id": "fake-apim-1"})


@pytest.fixture
def azure(request, fake_upstream):  # noqa: ANN001, ANN201
    """The resource ``contoso`` with :data:`DEPLOYMENTS`; ``indirect`` ``"no usage"`` answers without usage."""
    kind = WithoutUsage if getattr(request, "param", None) == "no usage" else fake_api.AzureOpenAIFake
    return kind(fake_upstream, deployments=dict(DEPLOYMENTS)).install()


def on(deployment: str) -> dict[str, str]:
    return {**H, "x-portkey-azure-deployment-id": deployment}


async def test_usage_gives_an_exact_cost(gateway_client, fake_upstream, azure, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == azure.dated_path("img")
    # gpt-image-1: 12 input text tokens x $5 + 4160 output image tokens x $40, per 1M
    # = (60 + 166400) / 1M = $0.16646.
    assert resp.headers["x-gateway-cost"] == "0.166460"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.16646) and line["cost_exact"] is True


@pytest.mark.parametrize(("deployment", "model", "cost"), [
    ("mini", "gpt-image-1-mini", "0.033304"),  # (12 x $2 + 4160 x $8) / 1M = (24 + 33280) / 1M
    ("img15", "gpt-image-1.5", "0.133180"),    # (12 x $5 + 4160 x $32) / 1M = (60 + 133120) / 1M
    ("img2", "gpt-image-2", "0.124860"),       # (12 x $5 + 4160 x $30) / 1M = (60 + 124800) / 1M
])
async def test_each_models_token_prices(gateway_client, azure, log_capture, deployment, model, cost):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": model}, headers=on(deployment))
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == cost
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(float(cost)) and line["cost_exact"] is True


async def test_n_images_in_one_call_are_priced_by_that_calls_usage(gateway_client, fake_upstream,  # noqa: ANN001
                                                                   azure, log_capture):
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1-mini", "n": 3},
                                     headers=on("mini"))
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 3 and len(fake_upstream.requests) == 1
    # One call; its usage counts all three images: (12 x $2 + 4160 x $8) / 1M, not multiplied by n.
    assert resp.headers["x-gateway-cost"] == "0.033304"
    assert log_capture.finished()["cost_exact"] is True


async def test_azure_model_name_is_the_model_priced(gateway_client, fake_upstream, azure):  # noqa: ANN001
    headers = {**on("mini"), "x-portkey-azure-model-name": "gpt-image-1-mini"}
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == azure.dated_path("mini")
    assert resp.headers["x-gateway-cost"] == "0.033304"  # gpt-image-1-mini: (12 x $2 + 4160 x $8) / 1M


async def test_an_edit_prices_its_input_image_tokens(gateway_client, azure, log_capture):  # noqa: ANN001
    form = edit_form(PNG_1X1, PNG_1X1 + b"2", prompt="a hat", model="gpt-image-1")
    resp = await gateway_client.post(EDITS, data=form, headers=H)
    assert resp.status == 200, await resp.text()
    # Two images: 80 input image tokens.  (12 x $5 + 80 x $10 + 4160 x $40) / 1M = (60 + 800 + 166400) / 1M.
    assert resp.headers["x-gateway-cost"] == "0.167260"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.16726) and line["cost_exact"] is True


async def test_a_stream_has_its_exact_cost_on_the_log_line(gateway_client, azure, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1", "stream": True},
                                     headers=H)
    assert resp.status == 200
    await resp.read()
    assert "x-gateway-cost" not in resp.headers  # sent before the image was made
    line = log_capture.finished()
    assert line["stream"]["mode"] == "native"
    # The completed event's usage: (12 x $5 + 4160 x $40) / 1M = $0.16646.
    assert line["cost"] == pytest.approx(0.16646) and line["cost_exact"] is True


@pytest.mark.parametrize("azure", ["no usage"], indirect=True)
@pytest.mark.parametrize(("deployment", "body", "cost"), [
    # gpt-image-1, 1536x1024 high: $0.25 an image; n=2 in one call: 2 x 0.25.
    ("img", {"model": "gpt-image-1", "size": "1536x1024", "quality": "high", "n": 2}, "0.500000"),
    ("img", {"model": "gpt-image-1", "size": "1024x1024", "quality": "medium"}, "0.042000"),
    # gpt-image-1-mini, 1024x1024 low: $0.005; 1024x1536 high: $0.052, 3 x 0.052.
    ("mini", {"model": "gpt-image-1-mini", "size": "1024x1024", "quality": "low"}, "0.005000"),
    ("mini", {"model": "gpt-image-1-mini", "size": "1024x1536", "quality": "high", "n": 3}, "0.156000"),
    # gpt-image-1.5, 1024x1536 medium: $0.05; 1024x1024 low: $0.009.
    ("img15", {"model": "gpt-image-1.5", "size": "1024x1536", "quality": "medium"}, "0.050000"),
    ("img15", {"model": "gpt-image-1.5", "size": "1024x1024", "quality": "low"}, "0.009000"),
])
async def test_without_usage_the_per_image_table_estimates(gateway_client, azure, log_capture,  # noqa: ANN001
                                                           deployment, body, cost):
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", **body}, headers=on(deployment))
    assert resp.status == 200, await resp.text()
    assert "usage" not in await resp.json()
    assert resp.headers["x-gateway-cost"] == cost
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(float(cost)) and line["cost_exact"] is False


@pytest.mark.parametrize("azure", ["no usage"], indirect=True)
@pytest.mark.parametrize(("deployment", "body"), [
    ("img", {"model": "gpt-image-1", "size": "1024x1024"}),       # no quality: no row of the table matches
    ("img", {"model": "gpt-image-1", "size": "auto", "quality": "high"}),  # nor without a size
    ("img2", {"model": "gpt-image-2", "quality": "low"}),         # gpt-image-2 has token prices only
])
async def test_without_usage_and_without_a_matching_row_the_cost_is_unknown(gateway_client, azure,  # noqa: ANN001
                                                                             log_capture, deployment, body):
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", **body}, headers=on(deployment))
    assert resp.status == 200, await resp.text()
    assert "x-gateway-cost" not in resp.headers
    assert log_capture.finished()["cost"] is None


@pytest.mark.parametrize("azure", ["no usage"], indirect=True)
async def test_without_usage_an_edit_is_unknown(gateway_client, azure, log_capture):  # noqa: ANN001
    form = edit_form(PNG_1X1, prompt="a hat", model="gpt-image-1", size="1024x1024", quality="low")
    resp = await gateway_client.post(EDITS, data=form, headers=H)
    assert resp.status == 200, await resp.text()
    # The output would be $0.011, but the input image is billed as tokens at no per-image price.
    assert "x-gateway-cost" not in resp.headers
    assert log_capture.finished()["cost"] is None


async def test_dall_e_3_is_not_priced_over_all_its_calls(gateway_client, fake_upstream, azure,  # noqa: ANN001
                                                         log_capture):
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "dall-e-3", "n": 2,
                                                "response_format": "b64_json"}, headers=on("dalle"))
    assert resp.status == 200, await resp.text()
    assert len(fake_upstream.requests) == 2  # one image a call
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.finished()
    assert line["cost"] is None and line["cost_exact"] is False


async def test_a_deployment_name_is_not_a_model_and_has_no_price(gateway_client, fake_upstream, azure,  # noqa: ANN001
                                                                 log_capture):
    # The v1 API without a deployment option: the client's model is the deployment's name.
    headers = {k: v for k, v in H.items() if k != "x-portkey-azure-deployment-id"}
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "mini"},
                                     headers={**headers, "x-portkey-azure-api-version": "v1"})
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.json() == {"prompt": "a fox", "model": "mini"}
    assert "usage" in await resp.json()
    assert "x-gateway-cost" not in resp.headers
    assert log_capture.finished()["cost"] is None


async def test_a_request_naming_no_model_has_an_unknown_cost(gateway_client, azure, log_capture):  # noqa: ANN001
    # The `mini` deployment runs gpt-image-1-mini: priced as the default gpt-image-1 it would be
    # (12x5 + 4160x40)/1M = 0.16646 "exact", five times its rates. The deployment decides: unknown.
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=on("mini"))
    assert resp.status == 200, await resp.text()
    assert "usage" in await resp.json()
    assert "x-gateway-cost" not in resp.headers
    assert (log_capture.finished()["cost"], log_capture.finished()["cost_exact"]) == (None, False)
    # Naming the model (or azure_model_name) prices it: (12x2 + 4160x8)/1M = 0.033304.
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "gpt-image-1-mini"}, headers=on("mini"))
    assert resp.headers["x-gateway-cost"] == "0.033304"


def test_no_row_for_dall_e_and_per_image_rows_never_price_inputs() -> None:
    assert not [row for row in PRICES if "dall-e" in row.model]
    per_image = [row for row in PRICES if isinstance(row, PerImage)]
    assert per_image and all(row.input_image is None for row in per_image)
