"""What a Stability AI request costs (gateway_stability_ai/prices.py): credits per image at $0.01 a
credit, whatever the size, so always an estimate; one image per v2beta call, so ``n`` is that many
calls, each billed; the v1 engines, SD 3.5 Flash and the edit services are not priced.

Every expected number below is worked out by hand from ``CREDITS`` (credits x $0.01), so a changed
row fails here."""
from __future__ import annotations

import pytest

from gateway.testing import edit_form
from gateway_stability_ai import testing as fake_api
from gateway_stability_ai.prices import PRICES

GEN = "/v1/images/generations"
EDITS = "/v1/images/edits"
H = {"x-portkey-provider": "stability-ai", "Authorization": "Bearer sk-stab-1"}
#: A PNG every edit route takes (sides 64+).
IMAGE = fake_api.png(64, 64, marker=b"image")


def sent_fields(fake_upstream) -> dict[str, str]:  # noqa: ANN001
    """The text fields of the multipart form Stability received last."""
    rec = fake_upstream.last
    parsed = fake_api.parse_form(rec.headers["Content-Type"], rec.body)
    assert parsed is not None
    return {name: data.decode() for name, (_, data) in parsed.items()}


async def test_the_default_model_core_is_three_credits_an_image(gateway_client, fake_upstream,  # noqa: ANN001
                                                                log_capture):
    resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == "/v2beta/stable-image/generate/core"
    # core: 3 credits x $0.01 = $0.03, an estimate (Stability's answer has no usage).
    assert resp.headers["x-gateway-cost"] == "0.030000"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.03) and line["cost_exact"] is False


@pytest.mark.parametrize(("model", "cost"), [
    ("ultra", "0.080000"),                  # 8 credits x $0.01
    ("stable-image-ultra", "0.080000"),     # Stability's name for ultra: the same 8 credits
    ("stable-image-core", "0.030000"),      # core: 3 credits
    ("sd3", "0.065000"),                    # the sd3 endpoint without a model is SD 3.5 Large: 6.5 credits
    ("sd3.5-large", "0.065000"),            # 6.5 credits
    ("sd3-large", "0.065000"),              # served by SD 3.5 Large: 6.5 credits
    ("sd3.5-large-turbo", "0.040000"),      # 4 credits
    ("sd3-large-turbo", "0.040000"),        # served by SD 3.5 Large Turbo: 4 credits
    ("sd3.5-medium", "0.035000"),           # 3.5 credits
    ("sd3-medium", "0.035000"),             # served by SD 3.5 Medium: 3.5 credits
])
async def test_each_model_has_its_credits(gateway_client, model, cost, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": model}, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == cost
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(float(cost)) and line["cost_exact"] is False


@pytest.mark.parametrize("size", ["1024x1024", "1792x1024", "1024x1792"])
async def test_the_size_does_not_change_the_price(gateway_client, fake_upstream, size):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": "ultra", "size": size}, headers=H)
    assert resp.status == 200, await resp.text()
    assert "aspect_ratio" in sent_fields(fake_upstream)
    assert resp.headers["x-gateway-cost"] == "0.080000"  # ultra: 8 credits x $0.01 at any aspect ratio


async def test_n_is_that_many_calls_each_billed(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    body = {"prompt": "a fox", "model": "sd3.5-large-turbo", "n": 3}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == 3
    assert len(fake_upstream.requests) == 3  # the v2beta API makes one image a call
    # sd3.5-large-turbo: 4 credits x $0.01 = $0.04 a call; three calls: 3 x 0.04 = 0.12.
    assert resp.headers["x-gateway-cost"] == "0.120000"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.12) and line["cost_exact"] is False


@pytest.mark.parametrize(("model", "n"), [
    ("stable-diffusion-xl-1024-v1-0", 2),  # v1 engines: billed by steps, not priced
    ("stable-diffusion-v1-6", 1),
    ("sd3.5-flash", 1),                    # not confirmed in a source checked
])
async def test_a_model_without_a_price_has_no_cost(gateway_client, model, n, log_capture):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "model": model, "n": n}, headers=H)
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]) == n
    assert "x-gateway-cost" not in resp.headers
    line = log_capture.finished()
    assert line["cost"] is None and line["cost_exact"] is False


async def test_image_to_image_costs_what_the_model_costs(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    form = edit_form(IMAGE, prompt="a red door", model="sd3.5-medium", strength="0.5")
    resp = await gateway_client.post(EDITS, data=form, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == "/v2beta/stable-image/generate/sd3"
    # sd3.5-medium: 3.5 credits x $0.01 = $0.035; its input image adds nothing (input_image 0).
    assert resp.headers["x-gateway-cost"] == "0.035000"
    line = log_capture.finished()
    assert line["cost"] == pytest.approx(0.035) and line["cost_exact"] is False


async def test_an_edit_service_is_not_priced(gateway_client, fake_upstream, log_capture):  # noqa: ANN001
    # The default edit model, inpaint (the image's alpha channel as the mask): its credits were not confirmed.
    form = edit_form(fake_api.png(64, 64, alpha=True), prompt="a red door")
    resp = await gateway_client.post(EDITS, data=form, headers=H)
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last.path == "/v2beta/stable-image/edit/inpaint"
    assert "x-gateway-cost" not in resp.headers
    assert log_capture.finished()["cost"] is None


def test_the_table_prices_every_generate_model_it_names_and_nothing_else() -> None:
    priced = {row.model: row.usd for row in PRICES}
    # 11 names, each once: ultra x2, core x2, sd3 / sd3.5-large / sd3-large, the two turbos, the two mediums.
    assert len(priced) == len(PRICES) == 11
    assert not [row for row in PRICES if row.size != "*" or row.quality != "*" or row.input_image != 0.0]
    assert not {"sd3.5-flash", "inpaint", "erase", "outpaint", "stable-diffusion-xl-1024-v1-0"} & set(priced)
