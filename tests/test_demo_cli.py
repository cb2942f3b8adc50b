"""``gateway demo`` as a user runs it: a real process, the examples it prints run as printed."""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from gateway.demo.banner import LAST_LINE, PROMPT

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(tmp_path: Path) -> dict[str, str]:
    """The environment without the operator's settings; the demo's files under ``tmp_path``."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    out.update(PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path))
    return out


class Demo:
    """A running ``gateway demo`` and what it printed before it listened."""

    def __init__(self, proc: subprocess.Popen[str], banner: str) -> None:
        self.proc = proc
        self.banner = banner

    def block(self, after: str) -> list[str]:
        """The indented lines of the example under the line starting with ``after``."""
        lines = self.banner.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(after)) + 1
        out: list[str] = []
        for line in lines[start:]:
            if not line.strip():
                if out:
                    break
                continue
            out.append(line[2:])
        return out

    def field(self, name: str) -> str | None:
        """The value on the banner's ``  <name>   <value>`` line, or None."""
        m = re.search(rf"^  {re.escape(name)} +(\S+)(?:   \(admin key: (\S+)\))?$", self.banner, re.M)
        return None if m is None else m.group(1)

    @property
    def admin_key(self) -> str | None:
        m = re.search(r"\(admin key: (\S+)\)$", self.banner, re.M)
        return None if m is None else m.group(1)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--latency", "0"],
                            cwd=tmp_path, env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"gateway demo exited with {proc.wait()}:\n{''.join(lines)}")
            lines.append(line)
            if line.strip() == LAST_LINE:
                break
        else:  # pragma: no cover
            pytest.fail(f"gateway demo printed no banner within {STARTUP_SECONDS} s:\n{''.join(lines)}")
        yield Demo(proc, "".join(lines))
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, proc.returncode


def curl_request(command: list[str]) -> tuple[str, dict[str, str], str]:
    """URL, headers and body of the printed ``curl URL -H ... -d '...'`` example."""
    args = shlex.split(" ".join(line.rstrip("\\").strip() for line in command))
    assert args[0] == "curl"
    url, headers, body = args[1], {}, ""
    i = 2
    while i < len(args):
        if args[i] == "-H":
            name, value = args[i + 1].split(": ", 1)
            headers[name] = value
        elif args[i] == "-d":
            body = args[i + 1]
        else:  # pragma: no cover
            pytest.fail(f"the curl example has an option this test does not know: {args[i]}")
        i += 2
    return url, headers, body


def assert_png(data: bytes, size: tuple[int, int]) -> None:
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == ("PNG", size)


async def test_the_printed_curl_and_sdk_examples_get_pngs(demo: Demo) -> None:
    """The curl and SDK examples the banner prints get PNGs; the banner's web UI, log API and metrics
    lines name where each is and the admin key made for this run, which signs in to the UI and reads
    ``/v1/logs``, both showing the examples' requests."""
    api = demo.field("API")
    assert api is not None and api.endswith("/v1")
    base = api.removesuffix("/v1")
    key = demo.admin_key
    assert key is not None and len(key) >= 32
    lines = demo.banner.splitlines()
    assert f"  Web UI    {base}/ui   (admin key: {key})" in lines
    assert f"  Logs      {base}/v1/logs   (admin key: {key})" in lines
    assert f"  Metrics   {base}/metrics" in lines
    url, headers, body = curl_request(demo.block("curl:"))
    assert headers["x-portkey-provider"] == "demo" and "Authorization" not in headers
    # unsafe: the UI's cookies come from 127.0.0.1, an address, which aiohttp's default jar refuses.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(url, headers=headers, data=body.encode()) as resp:
            assert resp.status == 200, await resp.text()
            doc = await resp.json()
        assert doc["provider"] == "demo"
        async with http.get(doc["data"][0]["url"]) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
            assert_png(await resp.read(), (1024, 1024))

        # The SDK example, pasted into a Python process as it is printed.
        code = "\n".join(demo.block("The openai SDK"))
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        async with http.get(out.decode().strip()) as resp:
            assert resp.status == 200
            assert_png(await resp.read(), (1024, 1024))

        assert demo.field("Logs") == f"{base}/v1/logs"
        await wait_for_records(http, f"{base}/v1/logs", key, count=2)
        assert demo.field("Web UI") == f"{base}/ui"
        listing = await sign_in(http, f"{base}/ui", key)
        assert listing.count('<tr data-href="/ui/requests/') >= 2 and PROMPT in listing
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200 and "gateway_requests_total{" in await resp.text()


async def sign_in(http: aiohttp.ClientSession, ui: str, admin_key: str) -> str:
    """Sign in to the web UI at ``ui`` as a browser does (the form's CSRF token and cookie); the
    request list it then shows."""
    async with http.get(ui + "/login") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        form = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert form is not None
    async with http.post(ui + "/login", data={"key": admin_key, "csrf": form.group(1), "next": "/ui"}) as resp:
        text = await resp.text()
        assert resp.status == 200 and str(resp.url) == ui, text  # signed in, sent on to the list
        return text


async def wait_for_records(http: aiohttp.ClientSession, url: str, admin_key: str, count: int) -> None:
    """``GET /v1/logs`` until ``count`` records of the demo provider are there (writes are batched)."""
    deadline = time.monotonic() + 10
    found: list[dict] = []
    while time.monotonic() < deadline:
        async with http.get(url, headers={"Authorization": f"Bearer {admin_key}"}) as resp:
            assert resp.status == 200, await resp.text()
            doc = json.loads(await resp.read())
        found = [r for r in doc["data"] if r.get("provider") == "demo" and r.get("status") == 200]
        if len(found) >= count:
            assert all(r["images"] for r in found), found
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"the request log holds {len(found)} of the demo's {count} requests")


def test_a_fail_rate_out_of_range_is_one_clear_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--fail-rate", "2"], cwd=tmp_path,
                          env=env(tmp_path), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "gateway: --latency must be at least 0 and --fail-rate from 0 to 1"


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--port", str(port)], cwd=tmp_path,
                              env=env(tmp_path), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"gateway: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in proc.stderr and "gateway demo" not in proc.stdout
