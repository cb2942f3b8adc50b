"""What a Black Forest Labs request costs (gateway_black_forest_labs/prices.py): estimated from the
price tables, per megapixel for FLUX.2 and per image for FLUX.1, one task per image."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from gateway.testing import edit_form
from gateway_black_forest_labs.testing import install

KEY = "bfl-test-key-0123456789"
H = {"x-portkey-provider": "black-forest-labs", "Authorization": f"Bearer {KEY}"}
GEN = "/v1/images/generations"


async def test_flux_2_pro_is_priced_by_megapixel_and_estimated(gateway_client, fake_upstream, sleeps,  # noqa: ANN001
                                                               log_capture) -> None:
    install(fake_upstream)
    body = {"prompt": "a fox", "model": "flux-2-pro", "size": "2048x1024", "response_format": "b64_json"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    # Two megapixels: $0.03 for the first, $0.015 for the second.
    assert resp.headers["x-gateway-cost"] == "0.045000"
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] == pytest.approx(0.045) and line["cost_exact"] is False


async def test_n_images_are_n_tasks_each_billed(gateway_client, fake_upstream, sleeps) -> None:  # noqa: ANN001
    bfl = install(fake_upstream)
    body = {"prompt": "a fox", "model": "flux-kontext-max", "n": 3, "size": "1024x1024",
            "response_format": "b64_json"}
    resp = await gateway_client.post(GEN, json=body, headers=H)
    assert resp.status == 200, await resp.text()
    assert len(bfl.creates()) == 3 and resp.headers["x-gateway-cost"] == "0.240000"


async def test_a_model_priced_by_its_first_megapixel_only(gateway_client, fake_upstream,  # noqa: ANN001
                                                          sleeps) -> None:
    install(fake_upstream)
    small = await gateway_client.post(GEN, json={"prompt": "a", "model": "flux-2-max", "size": "1024x768",
                                                 "response_format": "b64_json"}, headers=H)
    assert small.status == 200 and small.headers["x-gateway-cost"] == "0.070000"
    large = await gateway_client.post(GEN, json={"prompt": "a", "model": "flux-2-max", "size": "2048x2048",
                                                 "response_format": "b64_json"}, headers=H)
    assert large.status == 200 and "x-gateway-cost" not in large.headers  # not published: unknown


async def test_an_edit_adds_its_input_images_megapixels(gateway_client, fake_upstream, sleeps) -> None:  # noqa: ANN001
    install(fake_upstream)
    upload = io.BytesIO()
    Image.new("RGB", (1024, 512)).save(upload, "PNG")  # half a megapixel
    form = edit_form(upload.getvalue(), prompt="add a hat", model="flux-2-pro", size="1024x1024",
                     response_format="b64_json")
    resp = await gateway_client.post("/v1/images/edits", data=form, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == "0.037500"  # 0.03 + 0.5 x 0.015
