"""A real browser for tests of the web UI: Debian's headless Chromium, driven by Playwright.

No browser is downloaded (``playwright install`` is never run): Playwright drives the system's
``chromium`` (``apt-get install chromium``; another binary with ``GATEWAY_TEST_CHROMIUM``).
Under ``CI=true`` a missing browser fails the test with what to install; elsewhere it skips.
"""
from __future__ import annotations

import io
import os
import shutil

import pytest
from PIL import Image

try:
    from playwright.async_api import async_playwright
except ImportError:  # only the browser tests need it (the test extra installs it)
    async_playwright = None

__all__ = ["DEBIAN_PACKAGE", "QUADRANTS", "async_playwright", "chromium_path", "quadrants_png", "require_chromium"]

#: The Debian package that provides the browser (``.ci/run`` installs it).
DEBIAN_PACKAGE = "chromium"


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None."""
    given = os.environ.get("GATEWAY_TEST_CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """The Chromium binary, and Playwright importable; else fail under CI, skip elsewhere."""
    problem = None
    if async_playwright is None:
        problem = "Playwright is not installed: pip install -c constraints.txt -e '.[test]'"
    path = chromium_path()
    if problem is None and path is None:
        problem = (f"no Chromium found: apt-get install -y {DEBIAN_PACKAGE} (or set GATEWAY_TEST_CHROMIUM to a "
                   "Chromium binary); Playwright drives the system browser and downloads none")
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser test cannot run under CI: {problem}", pytrace=False)
        pytest.skip(problem)
    assert path is not None
    return path


#: The four colours of :func:`quadrants_png`, top-left, top-right, bottom-left, bottom-right.
QUADRANTS = ((220, 38, 38), (37, 99, 235), (22, 163, 74), (250, 204, 21))


def quadrants_png(width: int = 320, height: int = 240) -> bytes:
    """A PNG of four coloured quadrants (:data:`QUADRANTS`): pixels a test can check where it is shown."""
    im = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    for i, colour in enumerate(QUADRANTS):
        x, y = (i % 2) * half_w, (i // 2) * half_h
        im.paste(colour, (x, y, x + (width - half_w if i % 2 else half_w), y + (height - half_h if i // 2 else half_h)))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()
