"""The web UI in a real browser: Debian's headless Chromium driven by Playwright (no browser
download).  A real gateway with the fake provider answering real PNGs and the request log on
(SQLite in tmp); requests through the openai SDK; then the browser signs in, filters, opens a
request and checks the ``<img>`` shows the very image the provider produced (its bytes as the
page fetched them, and its pixels drawn on a canvas).  Under ``CI=true`` a missing browser
fails (``apt-get install chromium``); elsewhere it skips."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from gateway.keys import GATEWAY
from gateway.requestlog.store import LogQuery
from gateway.testing import fake_provider
from gateway.testing.browser import QUADRANTS, async_playwright, quadrants_png, require_chromium

ADMIN_KEY = "browser-test-admin-key-0123456789"
PNG = quadrants_png(320, 240)
HD_PNG = quadrants_png(160, 120)
#: Records the test sends: two fake-image generations, one fake-hd, one refused (400).
SENT = 4


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return [fake_provider.plugin]


@pytest.fixture
def gateway_settings(fake_upstream, tmp_path) -> dict[str, Any]:  # noqa: ANN001
    return {
        "providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
        "admin": {"key": ADMIN_KEY},
        # Every image gets a thumbnail: the list shows thumbnails, the detail page the full size.
        "request_log": {"path": str(tmp_path / "requests.sqlite3"), "flush_interval": 0.05,
                        "thumbnail_over_bytes": 0},
        "images": {"directory": str(tmp_path / "images")},
    }


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    chromium = require_chromium()
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def _send_requests(base_url: str) -> None:
    client = openai.AsyncOpenAI(api_key="sk-fake", base_url=base_url, max_retries=0,
                                default_headers={"x-portkey-provider": "fake"})
    async with client:
        await client.images.generate(prompt="a red fox <script>alert('x')</script>", model="fake-image",
                                     size="512x512", response_format="b64_json")
        await client.images.generate(prompt="a lighthouse at dusk", model="fake-image", size="512x512",
                                     extra_headers={"x-portkey-metadata": '{"team": "growth"}'})
        await client.images.generate(prompt="a tiny robot", model="fake-hd", size="1024x1024", quality="hd")
        with pytest.raises(openai.BadRequestError):
            await client.images.generate(prompt="content_policy test", model="fake-image", size="512x512")


async def _wait_for_records(services: Any, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        store = getattr(services, "log_store", None)
        if store is not None:
            page, _ = await store.query(LogQuery(limit=50))
            if len(page) >= count and all(r.images for r in page if r.status == 200):
                return
        await asyncio.sleep(0.05)
    pytest.fail(f"the request log did not get {count} records with their images in 15 s")


async def _rows(page: Any) -> int:
    return await page.locator("table.requests tbody tr[data-href]").count()


async def _pixel(page: Any, selector: str, fx: float, fy: float) -> list[int]:
    """The colour the browser decoded at ``(fx, fy)`` (fractions of the natural size) of an image."""
    return await page.eval_on_selector(selector, """(img, [fx, fy]) => {
        const c = document.createElement("canvas");
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext("2d");
        g.drawImage(img, 0, 0);
        const d = g.getImageData(Math.floor(fx * img.naturalWidth), Math.floor(fy * img.naturalHeight), 1, 1).data;
        return [d[0], d[1], d[2]];
    }""", [fx, fy])


async def test_ui_in_a_real_browser(browser, gateway_server, gateway_app, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream, image=PNG)
    base = str(gateway_server.make_url("")).rstrip("/")
    await _send_requests(base + "/v1")
    services = gateway_app[GATEWAY]
    await _wait_for_records(services, SENT)

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"a dialog opened: {d.message}"))
    # Without a session: the sign-in page, which will come back here.
    await page.goto(base + "/ui?status=2xx")
    assert page.url == base + "/ui/login?next=%2Fui%3Fstatus%3D2xx"

    # A wrong key: refused, no session cookie.
    await page.fill("#key", "not-the-admin-key-000000")
    async with page.expect_navigation() as nav:
        await page.click("#login-form button[type=submit]")
    assert (await nav.value).status == 401
    assert "not the admin key" in await page.inner_text("#login-error")
    assert not [c for c in await context.cookies() if c["name"] == "gateway_ui_session"]

    # The admin key: back to the page asked for, with an HttpOnly, SameSite=Strict cookie on /ui.
    await page.fill("#key", ADMIN_KEY)
    async with page.expect_navigation():
        await page.click("#login-form button[type=submit]")
    assert page.url == base + "/ui?status=2xx"
    cookie = next(c for c in await context.cookies() if c["name"] == "gateway_ui_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert ADMIN_KEY not in cookie["value"]
    assert await _rows(page) == 3

    # Filters: a status class chosen applies at once (ui.js); a model typed in; a metadata field.
    await page.goto(base + "/ui")
    assert await _rows(page) == SENT
    async with page.expect_navigation():
        await page.select_option("#f-status", "4xx")
    assert await _rows(page) == 1
    assert await page.inner_text("table.requests tbody .status") == "400"
    await page.select_option("#f-status", "")  # navigates; wait for it
    await page.wait_for_url(base + "/ui")
    await page.fill("#f-model", "fake-hd")
    async with page.expect_navigation():
        await page.click("#filters button[type=submit]")
    assert await _rows(page) == 1
    await page.goto(base + "/ui")
    await page.fill("#f-metadata", "team=growth")
    async with page.expect_navigation():
        await page.press("#f-metadata", "Enter")
    assert await _rows(page) == 1
    assert "team=growth" in page.url.replace("%3D", "=")

    # The list's thumbnails load (images of at most 256 px a side, made by the log).
    await page.goto(base + "/ui?model=fake-image&status=200")
    assert await _rows(page) == 2
    await page.wait_for_function("[...document.querySelectorAll('img.thumb')].every(i => i.complete)")
    sizes = await page.eval_on_selector_all("img.thumb", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes and all(0 < w <= 256 and 0 < h <= 256 for w, h in sizes)

    # A request's page: the prompt as text (its <script> escaped, no dialog), the attempts, the image.
    async with page.expect_response(lambda r: "/v1/images/files/" in r.url) as image_response:
        async with page.expect_navigation():
            await page.click("table.requests tbody tr:last-child td:nth-child(4)")  # the row itself (ui.js)
    response = await image_response.value
    assert response.status == 200 and response.headers["content-type"] == "image/png"
    fetched = await response.body()
    assert "/ui/requests/" in page.url
    assert await page.inner_text("#prompt") == "a red fox <script>alert('x')</script>"
    assert await page.locator("#attempts tbody tr").count() == 1
    assert "image/png" not in await page.inner_text("#images")  # the format is named, not the MIME type
    assert "320×240 · PNG" in await page.inner_text("#images figcaption")
    img = page.locator("img.full").first
    await page.wait_for_function("document.querySelector('img.full').complete")
    assert await img.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [320, 240]
    image_id = await img.get_attribute("data-image-id")
    assert image_id in response.url and image_id in (await img.get_attribute("src"))
    assert fetched == PNG, "the page's <img> fetched other bytes than the provider's image"
    for (fx, fy), colour in zip(((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)), QUADRANTS):
        assert await _pixel(page, "img.full", fx, fy) == list(colour)

    # The dashboard draws from the same log.
    await page.goto(base + "/ui/dashboard?range=1h")
    assert await page.locator("svg.chart").count() == 5
    totals = await page.inner_text("#totals tbody")
    assert "fake" in totals and f"\t{SENT}\t" in totals

    # A sign-out form without its CSRF token changes nothing: 403, still signed in.
    await page.goto(base + "/ui")
    async with page.expect_navigation() as nav:
        await page.evaluate("""() => {
            const form = document.querySelector("form.logout");
            form.querySelector("input[name=csrf]").remove();
            form.submit();
        }""")
    assert (await nav.value).status == 403
    await page.goto(base + "/ui")
    assert page.url == base + "/ui"

    # Signing out for real: the cookie is gone and the pages send to the sign-in page again.
    async with page.expect_navigation():
        await page.click("form.logout button")
    assert page.url == base + "/ui/login"
    await page.goto(base + "/ui/dashboard")
    assert page.url.startswith(base + "/ui/login?next=")

    # A browser that never signed in: a request's page sends it to sign in, and back.
    detail = f"/ui/requests/{(await services.log_store.query(LogQuery(limit=1)))[0][0].id}"
    other = await browser.new_context()
    fresh = await other.new_page()
    await fresh.goto(base + detail)
    assert fresh.url.startswith(base + "/ui/login?next=")
    await fresh.fill("#key", ADMIN_KEY)
    async with fresh.expect_navigation():
        await fresh.click("#login-form button[type=submit]")
    assert fresh.url == base + detail
    await other.close()
    await context.close()
    # No CSP violation, script error, alert, or a load that failed but the two refusals above.
    expected = {f"Failed to load resource: the server responded with a status of {s}" for s in
                ("401 (Unauthorized)", "403 (Forbidden)")}
    assert [p for p in problems if p not in expected] == []

