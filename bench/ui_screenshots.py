"""Screenshots of the web UI for the docs: ``docs/images/ui-list.png``, ``ui-detail.png``, ``ui-dashboard.png``.

Runs a gateway on loopback with the fake provider (its pictures drawn here with Pillow) and the
request log in a temporary directory, sends a few requests through the openai SDK (a refusal and
a cache hit among them), signs in with Debian's headless Chromium driven by Playwright (the
system browser: ``apt-get install chromium``; nothing is downloaded) and saves the pages.

    .venv/bin/python bench/ui_screenshots.py [--out docs/images]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import openai
from aiohttp.test_utils import TestServer
from PIL import Image, ImageDraw

from gateway.app import create_app
from gateway.keys import GATEWAY
from gateway.requestlog.store import LogQuery
from gateway.testing import FakeUpstream, fake_provider
from gateway.testing.browser import async_playwright, chromium_path

ADMIN_KEY = "screenshots-admin-key-0123456789"
ROOT = Path(__file__).resolve().parent.parent


def _sky(size: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    im = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(im)
    for y in range(size):
        t = y / (size - 1)
        draw.line([(0, y), (size, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    return im


def lighthouse(size: int = 512) -> bytes:
    im = _sky(size, (52, 38, 96), (251, 146, 60))
    d = ImageDraw.Draw(im)
    s = size / 512
    d.ellipse([330 * s, 250 * s, 410 * s, 330 * s], fill=(254, 215, 170))
    d.rectangle([0, 330 * s, size, size], fill=(30, 58, 138))
    for i in range(8):
        y = (345 + i * 20) * s
        d.line([(40 * s + i * 9 * s, y), (470 * s - i * 7 * s, y)], fill=(59, 130, 246), width=max(1, int(2 * s)))
    d.polygon([(120 * s, 340 * s), (200 * s, 340 * s), (185 * s, 150 * s), (135 * s, 150 * s)], fill=(248, 250, 252))
    for y in (190, 250, 310):
        d.rectangle([128 * s, y * s, 192 * s, (y + 22) * s], fill=(220, 38, 38))
    d.rectangle([130 * s, 120 * s, 190 * s, 150 * s], fill=(253, 224, 71))
    d.polygon([(125 * s, 120 * s), (195 * s, 120 * s), (160 * s, 90 * s)], fill=(127, 29, 29))
    return _png(im)


def fox(size: int = 1024) -> bytes:
    im = _sky(size, (186, 230, 253), (240, 249, 255))
    d = ImageDraw.Draw(im)
    s = size / 512
    d.rectangle([0, 360 * s, size, size], fill=(248, 250, 252))
    for x, h in ((60, 120), (420, 150), (470, 90)):
        d.polygon([(x * s, 360 * s), ((x - 30) * s, 360 * s), ((x - 15) * s, (360 - h) * s)], fill=(21, 128, 61))
    orange, dark = (234, 88, 12), (67, 20, 7)
    d.ellipse([170 * s, 270 * s, 340 * s, 370 * s], fill=orange)  # body
    d.polygon([(330 * s, 330 * s), (430 * s, 300 * s), (450 * s, 340 * s), (340 * s, 360 * s)], fill=orange)  # tail
    d.polygon([(430 * s, 300 * s), (450 * s, 340 * s), (470 * s, 310 * s)], fill=(255, 255, 255))
    d.polygon([(140 * s, 230 * s), (230 * s, 230 * s), (185 * s, 300 * s)], fill=orange)  # head
    d.polygon([(140 * s, 230 * s), (155 * s, 190 * s), (170 * s, 230 * s)], fill=orange)
    d.polygon([(200 * s, 230 * s), (215 * s, 190 * s), (230 * s, 230 * s)], fill=orange)
    d.polygon([(160 * s, 270 * s), (210 * s, 270 * s), (185 * s, 300 * s)], fill=(255, 255, 255))
    d.ellipse([180 * s, 292 * s, 190 * s, 302 * s], fill=dark)
    for x in (165, 195):
        d.ellipse([x * s, 245 * s, (x + 10) * s, 255 * s], fill=dark)
    for x in (200, 240, 280, 310):
        d.rectangle([x * s, 350 * s, (x + 14) * s, 395 * s], fill=dark)
    return _png(im)


def robot(size: int = 512, hue: int = 0) -> bytes:
    im = _sky(size, (220, 252, 231), (187, 247, 208) if hue == 0 else (254, 240, 138))
    d = ImageDraw.Draw(im)
    s = size / 512
    d.rectangle([0, 400 * s, size, size], fill=(120, 53, 15))
    d.rounded_rectangle([180 * s, 160 * s, 330 * s, 300 * s], radius=int(18 * s), fill=(148, 163, 184))
    d.rounded_rectangle([200 * s, 300 * s, 310 * s, 400 * s], radius=int(10 * s), fill=(100, 116, 139))
    for x in (215, 275):
        d.ellipse([x * s, 200 * s, (x + 30) * s, 230 * s], fill=(14, 165, 233))
    d.line([(255 * s, 160 * s), (255 * s, 120 * s)], fill=(71, 85, 105), width=int(6 * s))
    d.ellipse([243 * s, 105 * s, 267 * s, 129 * s], fill=(239, 68, 68))
    d.line([(310 * s, 330 * s), (380 * s, 300 * s)], fill=(71, 85, 105), width=int(12 * s))
    d.polygon([(370 * s, 290 * s), (410 * s, 280 * s), (405 * s, 310 * s)], fill=(34, 197, 94))  # watering can
    for i in range(5):
        d.line([(405 * s, 300 * s), ((420 + i * 6) * s, (330 + i * 12) * s)], fill=(56, 189, 248), width=int(3 * s))
    for x in (400, 440):
        d.line([(x * s, 400 * s), (x * s, 360 * s)], fill=(22, 101, 52), width=int(5 * s))
        d.ellipse([(x - 16) * s, 340 * s, (x + 16) * s, 372 * s], fill=(244, 114, 182) if hue else (250, 204, 21))
    return _png(im)


def ramen(size: int = 512) -> bytes:
    im = _sky(size, (254, 243, 199), (253, 230, 138))
    d = ImageDraw.Draw(im)
    s = size / 512
    d.ellipse([70 * s, 150 * s, 442 * s, 300 * s], fill=(254, 215, 170))
    d.chord([70 * s, 80 * s, 442 * s, 440 * s], 0, 180, fill=(185, 28, 28))
    d.ellipse([70 * s, 170 * s, 442 * s, 290 * s], fill=(234, 179, 8))
    for i in range(9):
        x = 110 + i * 32
        d.arc([x * s, 190 * s, (x + 40) * s, 260 * s], 200, 340, fill=(254, 249, 195), width=int(5 * s))
    d.ellipse([150 * s, 195 * s, 215 * s, 245 * s], fill=(255, 255, 255))
    d.ellipse([170 * s, 207 * s, 198 * s, 233 * s], fill=(245, 158, 11))
    d.ellipse([280 * s, 200 * s, 350 * s, 250 * s], fill=(190, 18, 60))
    d.line([(300 * s, 60 * s), (380 * s, 230 * s)], fill=(120, 53, 15), width=int(8 * s))
    d.line([(330 * s, 55 * s), (400 * s, 225 * s)], fill=(120, 53, 15), width=int(8 * s))
    return _png(im)


def _png(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, format="PNG", optimize=True)
    return out.getvalue()


class Slow:
    """``upstream`` as :func:`fake_provider.install` sees it, its handlers answering after ``delay``
    seconds (an image model takes seconds; the list's latency column should say so)."""

    def __init__(self, upstream: FakeUpstream, delay: float) -> None:
        self.upstream, self.delay = upstream, delay

    @property
    def url(self) -> str:
        return self.upstream.url

    def on(self, method: str, path: str, *handlers: Any) -> Slow:
        def slow(handler: Any) -> Any:
            async def run(request: Any, rec: Any) -> Any:
                await asyncio.sleep(self.delay)
                return await handler(request, rec)
            return run

        self.upstream.on(method, path, *(slow(h) for h in handlers))
        return self


async def send(upstream: FakeUpstream, base: str) -> None:
    """The requests the screenshots show, oldest first."""
    client = openai.AsyncOpenAI(api_key="sk-fake", base_url=base + "/v1", max_retries=0,
                                default_headers={"x-portkey-provider": "fake"})
    meta = {"x-portkey-metadata": json.dumps({"team": "marketing", "user": "ana"})}
    cache = {"x-portkey-config": json.dumps({"cache": {"mode": "simple"}})}
    async with client:
        fake_provider.install(Slow(upstream, 2.3), image=ramen())
        await client.images.generate(prompt="a bowl of ramen, flat illustration", model="fake-image", size="512x512")
        fake_provider.install(Slow(upstream, 3.1), image=robot(512, 1))
        await client.images.generate(prompt="a tiny robot watering plants", model="fake-image", size="512x512", n=2,
                                     extra_headers={**meta, **cache})
        await client.images.generate(prompt="a tiny robot watering plants", model="fake-image", size="512x512", n=2,
                                     extra_headers={**meta, **cache})
        try:
            await client.images.generate(prompt="content_policy: something not allowed", model="fake-image",
                                         size="512x512", extra_headers=meta)
        except openai.BadRequestError:
            pass
        fake_provider.install(Slow(upstream, 5.4), image=fox())
        await client.images.generate(prompt="a red fox in fresh snow, morning light", model="fake-hd",
                                     size="1024x1024", quality="hd", extra_headers=meta)
        fake_provider.install(Slow(upstream, 4.2), image=lighthouse())
        await client.images.generate(prompt="a lighthouse at dusk, oil painting, warm light", model="fake-image",
                                     size="512x512", extra_headers={"x-portkey-metadata": '{"team": "growth"}'})


async def main(out: Path) -> int:
    chromium = chromium_path()
    if async_playwright is None or chromium is None:
        logging.error("needs Playwright (the test extra) and Chromium (apt-get install chromium)")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    upstream = await FakeUpstream().start()
    with tempfile.TemporaryDirectory() as tmp:
        settings: dict[str, Any] = {
            "providers": {"fake": {"base_url": upstream.url + "/v1"}}, "admin": {"key": ADMIN_KEY},
            "request_log": {"path": f"{tmp}/requests.sqlite3", "flush_interval": 0.05},
            "images": {"directory": f"{tmp}/images"}, "logging": {"level": "warning"},
        }
        server = TestServer(create_app(settings, plugins=[fake_provider.plugin]), host="127.0.0.1")
        await server.start_server()
        try:
            base = str(server.make_url("")).rstrip("/")
            await send(upstream, base)
            store = server.app[GATEWAY].log_store
            for _ in range(200):
                page, _ = await store.query(LogQuery())
                if len(page) >= 6 and all(r.images for r in page if r.status == 200):
                    break
                await asyncio.sleep(0.05)
            await shoot(chromium, base, out)
        finally:
            await server.close()
            await upstream.close()
    return 0


async def shoot(chromium: str, base: str, out: Path) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 640}, device_scale_factor=1)
        await page.goto(base + "/ui/login")
        await page.fill("#key", ADMIN_KEY)
        async with page.expect_navigation():
            await page.click("#login-form button[type=submit]")
        await page.wait_for_function("[...document.images].every(i => i.complete)")
        await page.screenshot(path=str(out / "ui-list.png"))
        async with page.expect_navigation():
            await page.click("table.requests tbody tr:first-child td:nth-child(4)")
        await page.wait_for_function("[...document.images].every(i => i.complete)")
        height = await page.evaluate("document.documentElement.scrollHeight")
        await page.set_viewport_size({"width": 1280, "height": min(1600, math.ceil(height))})
        await page.screenshot(path=str(out / "ui-detail.png"))
        await page.set_viewport_size({"width": 1280, "height": 1100})
        await page.goto(base + "/ui/dashboard?range=1h")
        await page.screenshot(path=str(out / "ui-dashboard.png"))
        await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    sys.exit(asyncio.run(main(parser.parse_args().out)))
