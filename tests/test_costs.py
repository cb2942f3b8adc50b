"""The cost of a request (gateway.pricing, docs/costs.md): each kind of price, the sum over the
calls a provider bills, ``n``, fan-out, retries and fallbacks, cache hits, the settings'
prices, the ``x-gateway-cost`` header, the log line and the metric."""
from __future__ import annotations

import asyncio
import io
import re

import aiohttp
import msgspec
import pytest
from first_party import FIRST_PARTY
from PIL import Image as PILImage

from gateway.app import create_app
from gateway.errors import StartupError
from gateway.generation import EditRequest, GenerationRequest, InputImage
from gateway.keys import GATEWAY
from gateway.pricing import Cost, PerImage, PerMegapixel, PerToken, PriceBook, row_cost, token_cost
from gateway.provider import Capabilities, Provider
from gateway.requestlog.store import LogQuery
from gateway.settings import ProviderSettings
from gateway.testing import Reply, fake_provider

GEN = "/v1/images/generations"
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-test"}


def req(**kw) -> GenerationRequest:  # noqa: ANN003
    return GenerationRequest(prompt="x", **kw)


def png(width: int, height: int) -> InputImage:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height)).save(buf, "PNG")
    return InputImage(field="image", data=buf.getvalue(), media_type="image/png")


class Priced(Provider):
    name = "priced"
    capabilities = Capabilities(default_model="m-default")
    prices = (
        PerToken(model="tok-*", input_text=5.0, input_image=10.0, output_image=40.0),
        PerImage(model="tok-*", usd=0.011, size="1024x1024", quality="low", input_image=None),
        PerImage(model="img", usd=0.01, size="512x512"),
        PerImage(model="img", usd=0.02),
        PerImage(model="m-default", usd=0.5),
        PerMegapixel(model="mp", usd=0.015, first=0.03, input=0.015),
        PerMegapixel(model="mp-first-only", usd=None, first=0.07, input=None),
        PerMegapixel(model="mp-up", usd=0.025, round_up=True),
    )


BOOK = PriceBook({"priced": Priced(ProviderSettings())})


def cost(model: str | None, usage=None, made: int = 1, **kw) -> Cost | None:  # noqa: ANN001, ANN003
    """What ``made`` images of ``model`` cost (an edit when ``images`` are given)."""
    cls = EditRequest if "images" in kw else GenerationRequest
    return BOOK.cost(Priced(ProviderSettings()), cls(prompt="x", model=model, **kw), usage, made)


# -- per image -------------------------------------------------------------------------------
def test_per_image_by_size_first_matching_row_and_n_multiplies() -> None:
    assert cost("img", made=3, size="512x512") == Cost(0.03, False)
    assert cost("img", made=2, size="1024x1024") == Cost(0.04, False)
    assert cost("img") == Cost(0.02, False)  # no size: only a "*" row matches


def test_a_model_without_a_price_costs_none_and_no_model_is_the_default_one() -> None:
    assert cost("unlisted") is None
    assert cost(None) == Cost(0.5, False)


def test_per_image_quality_and_edit_inputs() -> None:
    usage = None
    assert cost("tok-1", usage, size="1024x1024", quality="low") == Cost(0.011, False)
    assert cost("tok-1", usage, size="1024x1024", quality="high") is None  # no row for it
    # An edit's inputs are billed at a price not published: unknown, not a guess.
    assert cost("tok-1", usage, size="1024x1024", quality="low", images=[png(8, 8)]) is None
    row = PerImage(model="e", usd=0.02, input_image=0.005)
    assert row_cost(row, req(size="1024x1024"), 2, [png(8, 8), png(8, 8)]) == Cost(0.05, False)


# -- per megapixel -----------------------------------------------------------------------------
def test_per_megapixel_first_and_additional() -> None:
    one, two = cost("mp", width=1024, height=1024), cost("mp", size="2048x1024")
    assert one is not None and two is not None
    assert one.usd == pytest.approx(0.03) and two.usd == pytest.approx(0.045) and not one.exact
    assert cost("mp", made=2, width=1024, height=1024).usd == pytest.approx(0.06)  # type: ignore[union-attr]
    assert cost("mp") is None  # no size: the megapixels are unknown


def test_per_megapixel_inputs_of_an_edit_count() -> None:
    found = cost("mp", width=1024, height=1024, images=[png(1024, 512)])
    assert found is not None and found.usd == pytest.approx(0.03 + 0.0075)


def test_only_the_first_megapixel_published() -> None:
    assert cost("mp-first-only", width=1024, height=768).usd == pytest.approx(0.07)  # type: ignore[union-attr]
    assert cost("mp-first-only", width=2048, height=2048) is None
    assert cost("mp-first-only", width=512, height=512, images=[png(8, 8)]) is None


def test_round_up_bills_each_started_megapixel() -> None:
    assert cost("mp-up", width=1024, height=1024).usd == pytest.approx(0.025)  # type: ignore[union-attr]
    assert cost("mp-up", width=1025, height=1024).usd == pytest.approx(0.05)  # type: ignore[union-attr]


# -- per token ---------------------------------------------------------------------------------
OPENAI_USAGE = {"input_tokens": 50, "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
                "output_tokens": 4160, "total_tokens": 4210}


def test_tokens_are_exact_and_win_over_the_table() -> None:
    found = cost("tok-1", OPENAI_USAGE, size="1024x1024", quality="low")
    assert found is not None and found.exact
    assert found.usd == pytest.approx((40 * 5.0 + 10 * 10.0 + 4160 * 40.0) / 1_000_000)


def test_token_shapes() -> None:
    row = PerToken(model="t", input_text=1.0, input_image=2.0, output_image=3.0, output_text=4.0)
    # Without details: input is text, output is image (OpenAI's images API).
    assert token_cost(row, {"input_tokens": 1_000_000, "output_tokens": 1_000_000}) == Cost(4.0, True)
    # Gemini's usage as the google plugin maps it: reasoning tokens are billed as text output.
    gemini = {"input_tokens": 10, "output_tokens": 1300, "input_tokens_details": {"text_tokens": 10},
              "output_tokens_details": {"image_tokens": 1290, "reasoning_tokens": 10}}
    assert token_cost(row, gemini) == Cost((10 * 1.0 + 1290 * 3.0 + 10 * 4.0) / 1_000_000, True)
    assert token_cost(row, {"total_tokens": 5}) is None


def test_tokens_without_a_published_price_make_an_estimate() -> None:
    row = PerToken(model="t", output_image=60.0)
    found = token_cost(row, {"input_tokens": 100, "output_tokens": 1120})
    assert found == Cost(1120 * 60.0 / 1_000_000, False)
    assert token_cost(PerToken(model="t", input_text=1.0), {"output_tokens": 5}) is None


def test_no_usage_falls_back_to_the_table() -> None:
    assert cost("tok-1", {"total_tokens": 3}, size="1024x1024", quality="low") == Cost(0.011, False)


# -- the settings' prices ------------------------------------------------------------------------
def test_settings_replace_a_models_prices_and_add_new_ones(fake_upstream) -> None:  # noqa: ANN001
    settings = {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                "prices": {"fake": {"fake-image": {"per_image": {"512x512": 0.3, "*": 0.5}},
                                    "fake-new*": {"per_megapixel": 0.1, "input_text": 1.0}}}}
    app = create_app(settings, plugins=FIRST_PARTY, load_entrypoints=False)
    book = app[GATEWAY].prices
    provider = app[GATEWAY].registry.provider("fake")
    assert book.cost(provider, req(model="fake-image", size="512x512"), None, 1) == Cost(0.3, False)
    assert book.cost(provider, req(model="fake-image", size="1024x1024"), None, 2) == Cost(1.0, False)
    assert book.cost(provider, req(model="fake-new-2", size="1024x1024"), None, 1) == Cost(0.1, False)
    assert book.cost(provider, req(model="fake-new-2"), {"input_tokens": 10**6}, 1) == Cost(1.0, True)
    # A model the settings do not name keeps the provider's own prices.
    assert book.cost(provider, req(model="fake-hd", size="1024x1024"), None, 1) == Cost(0.04, False)


def test_settings_problems_are_named_at_start_up(fake_upstream) -> None:  # noqa: ANN001
    bad = {"prices": {"fak": {"x": {"per_image": 1.0}}, "fake": {"y": {"round_up_megapixels": True}}}}
    with pytest.raises(StartupError) as e:
        create_app(bad, plugins=FIRST_PARTY, load_entrypoints=False)
    assert "[prices.fak]" in str(e.value) and "did you mean 'fake'" in str(e.value)
    assert '[prices.fake."y"]: names no price' in str(e.value)
    with pytest.raises(StartupError, match="per_image"):
        create_app({"prices": {"fake": {"x": {"per_image": -1}}}}, plugins=FIRST_PARTY, load_entrypoints=False)


# -- through the gateway --------------------------------------------------------------------------
async def test_header_and_log_line(gateway_client, fake_upstream, log_capture) -> None:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "a", "size": "512x512"}, headers=H)
    assert resp.status == 200 and resp.headers["x-gateway-cost"] == "0.010000"
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] == 0.01 and line["cost_exact"] is False and "cost_saved" not in line


async def test_n_multiplies_and_fan_out_adds_up(gateway_client, fake_upstream) -> None:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    # fake-image makes up to 4 a call: one call, 3 images.
    resp = await gateway_client.post(GEN, json={"prompt": "a", "n": 3}, headers=H)
    assert resp.headers["x-gateway-cost"] == "0.060000" and len(fake_upstream.requests) == 1
    # fake-hd makes one a call: 3 parallel calls, each billed.
    resp = await gateway_client.post(GEN, json={"prompt": "a", "n": 3, "model": "fake-hd", "quality": "hd",
                                                "size": "1792x1024"}, headers=H)
    assert resp.status == 200 and resp.headers["x-gateway-cost"] == "0.480000"
    assert len(fake_upstream.requests) == 4


async def test_a_failed_call_costs_nothing_and_a_fallback_adds_its_own(gateway_client, fake_upstream,  # noqa: ANN001
                                                                      log_capture, no_sleep) -> None:
    fake_upstream.on("POST", GEN, Reply(500, json={"error": {"message": "down"}}),
                     Reply(json={"created": 1, "data": [{"b64_json": "aW1n"}, {"b64_json": "aW1n"}]}))
    config = {"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "fake", "api_key": "sk-1"}, {"provider": "fake", "api_key": "sk-2"}]}
    resp = await gateway_client.post(GEN, json={"prompt": "a", "n": 2},
                                     headers={"x-portkey-config": msgspec.json.encode(config).decode()})
    assert resp.status == 200 and resp.headers["x-gateway-cost"] == "0.040000"
    assert len(fake_upstream.requests) == 2


async def test_an_error_answer_costs_nothing(gateway_client, fake_upstream, log_capture) -> None:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    resp = await gateway_client.post(GEN, json={"prompt": "content_policy"}, headers=H)
    assert resp.status == 400 and resp.headers["x-gateway-cost"] == "0.000000"
    assert log_capture.events("request.finished")[-1]["cost"] == 0.0


async def test_a_split_bills_the_calls_that_answered_when_another_fails(gateway_client, fake_upstream,  # noqa: ANN001
                                                                       log_capture) -> None:
    one = {"created": 1, "data": [{"b64_json": "aW1n"}]}
    # The error comes last (after the others answered): the calls that answered were billed.
    fake_upstream.on("POST", GEN, Reply(json=one), Reply(400, json={"error": {"message": "no"}}, delay=0.3),
                     Reply(json=one))
    resp = await gateway_client.post(GEN, json={"prompt": "a", "n": 3, "model": "fake-hd", "size": "1024x1024"},
                                     headers=H)
    assert resp.status == 400
    # Two calls answered (and were billed) before the third's error ended the request.
    line = log_capture.events("request.finished")[-1]
    assert line["cost"] == pytest.approx(0.08) and resp.headers["x-gateway-cost"] == "0.080000"


async def test_a_model_without_price_is_unknown(gateway_client, fake_upstream, log_capture) -> None:  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": "aW1n"}]}))
    resp = await gateway_client.post(GEN, json={"prompt": "a", "model": "fake-unlisted"}, headers=H)
    assert resp.status == 200 and "x-gateway-cost" not in resp.headers
    assert log_capture.events("request.finished")[-1]["cost"] is None


async def test_a_cache_hit_costs_nothing_and_says_what_it_saved(gateway_client, gateway_app,  # noqa: ANN001
                                                               fake_upstream,
                                                               log_capture) -> None:
    fake_provider.install(fake_upstream)
    config = {"provider": "fake", "api_key": "sk-a", "cache": {"mode": "simple", "max_age": 60}}
    headers = {"x-portkey-config": msgspec.json.encode(config).decode()}
    first = await gateway_client.post(GEN, json={"prompt": "a", "n": 2}, headers=headers)
    assert first.headers["x-gateway-cost"] == "0.040000"
    await gateway_app[GATEWAY].drain()
    hit = await gateway_client.post(GEN, json={"prompt": "a", "n": 2}, headers=headers)
    assert hit.headers["x-portkey-cache-status"] == "HIT" and hit.headers["x-gateway-cost"] == "0.000000"
    line = log_capture.events("request.finished")[-1]
    assert (line["cost"], line["cost_saved"]) == (0.0, 0.04)
    assert len(fake_upstream.requests) == 1


async def test_the_passthrough_has_no_cost(gateway_client, fake_upstream, log_capture) -> None:  # noqa: ANN001
    fake_upstream.on("POST", "/v1/native", Reply(json={"ok": True}))
    resp = await gateway_client.post("/v1/native", json={}, headers=H)
    assert resp.status == 200 and "x-gateway-cost" not in resp.headers
    assert log_capture.events("request.finished")[-1]["cost"] is None


async def test_the_cost_metric(gateway_client, fake_upstream) -> None:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    for _ in range(2):
        await gateway_client.post(GEN, json={"prompt": "a", "size": "512x512", "n": 2}, headers=H)
    text = await (await gateway_client.get("/metrics")).text()
    assert ('gateway_cost_usd_total{endpoint="images.generations",model="fake-image",provider="fake"} 0.04'
            in text)


async def test_an_edit_is_priced_by_its_edit_model(gateway_client, fake_upstream) -> None:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    form = {"prompt": "a", "model": "fake-image", "n": "2"}
    data = aiohttp.FormData()
    for k, v in form.items():
        data.add_field(k, v)
    buf = io.BytesIO()
    PILImage.new("RGBA", (4, 4)).save(buf, "PNG")
    data.add_field("image", buf.getvalue(), filename="a.png", content_type="image/png")
    resp = await gateway_client.post("/v1/images/edits", data=data, headers=H)
    assert resp.status == 200, await resp.text()
    assert resp.headers["x-gateway-cost"] == "0.040000"


async def test_prices_off_with_the_plugin(aiohttp_client, fake_upstream) -> None:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    settings = {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                "plugins": {"disable": ["gateway.defaults.costs"]}}
    client = await aiohttp_client(create_app(settings, plugins=FIRST_PARTY, load_entrypoints=False))
    resp = await client.post(GEN, json={"prompt": "a"}, headers=H)
    assert resp.status == 200 and "x-gateway-cost" not in resp.headers


# -- what a cache hit saved, in the request log, its API and the UI ------------------------------
ADMIN = "costs-test-admin-key-0123456789"


async def _records(app, count: int) -> list:  # noqa: ANN001
    """The log's records (newest first) once ``count`` are written."""
    for _ in range(500):
        page, _ = await app[GATEWAY].log_store.query(LogQuery())
        if len(page) >= count:
            return page
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} records were written")


async def test_a_cache_hits_saving_is_in_the_request_log_its_api_and_the_ui(
        aiohttp_client, fake_upstream, tmp_path) -> None:  # noqa: ANN001
    """A MISS costs what the provider billed; its HIT costs 0 and records that amount as saved: in
    the answer's headers, the stored record, ``GET /v1/logs``, the UI's detail page and dashboard."""
    fake_provider.install(fake_upstream)
    app = create_app({"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}, "admin": {"key": ADMIN},
                      "request_log": {"path": str(tmp_path / "log.sqlite3"), "flush_interval": 0.01},
                      "images": {"directory": str(tmp_path / "images")}},
                     plugins=FIRST_PARTY, load_entrypoints=False)
    client = await aiohttp_client(app)
    config = {"provider": "fake", "api_key": "sk-a", "cache": {"mode": "simple", "max_age": 60}}
    headers = {"x-portkey-config": msgspec.json.encode(config).decode()}
    miss = await client.post(GEN, json={"prompt": "a", "n": 2}, headers=headers)
    assert (miss.headers["x-portkey-cache-status"], miss.headers["x-gateway-cost"]) == ("MISS", "0.040000")
    assert "x-gateway-cost-saved" not in miss.headers
    await app[GATEWAY].drain()
    hit = await client.post(GEN, json={"prompt": "a", "n": 2}, headers=headers)
    assert (hit.headers["x-portkey-cache-status"], hit.headers["x-gateway-cost"]) == ("HIT", "0.000000")
    assert hit.headers["x-gateway-cost-saved"] == "0.040000"
    assert len(fake_upstream.requests) == 1

    hit_record, miss_record = await _records(app, 2)
    assert (miss_record.cache, miss_record.cost, miss_record.cost_saved) == ("MISS", 0.04, None)
    assert (hit_record.cache, hit_record.cost, hit_record.cost_saved) == ("HIT", 0.0, 0.04)

    admin = {"Authorization": f"Bearer {ADMIN}"}
    one = await (await client.get(f"/v1/logs/{hit_record.id}", headers=admin)).json()
    assert (one["cache"], one["cost"], one["cost_saved"]) == ("HIT", 0.0, 0.04)
    listed = await (await client.get("/v1/logs", headers=admin)).json()
    assert [(r["cache"], r["cost"], r["cost_saved"]) for r in listed["data"]] == [("HIT", 0.0, 0.04),
                                                                                 ("MISS", 0.04, None)]

    form = await client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await form.text()).group(1)
    signed_in = await client.post("/ui/login", data={"key": ADMIN, "csrf": csrf, "next": "/ui"},
                                  allow_redirects=False)
    assert signed_in.status == 303
    page = await (await client.get(f"/ui/requests/{hit_record.id}")).text()
    assert "<dt>Saved by the cache</dt><dd id=\"cost-saved\">$0.0400</dd>" in page
    assert "$0.0000 (a cache hit: no provider was called)" in page and "<code>0.040000</code>" in page
    assert 'id="cost-saved"' not in await (await client.get(f"/ui/requests/{miss_record.id}")).text()
    dashboard = await (await client.get("/ui/dashboard?range=1h")).text()
    totals = dashboard[dashboard.index('id="totals"'):dashboard.index("</table>", dashboard.index('id="totals"'))]
    head = re.findall(r"<th[^>]*>([^<]*)</th>", totals)
    cells = dict(zip(head, re.findall(r"<td[^>]*>([^<]*)</td>", totals), strict=True))
    assert (cells["Provider"], cells["Cost"], cells["Saved by the cache"]) == ("fake", "$0.0400", "$0.0400")
