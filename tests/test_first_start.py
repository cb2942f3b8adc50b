"""A fresh clone started as the README says (``gateway serve``, no settings file, no key): the
web UI is there, and the admin key it asks for is one the gateway made and keeps on disk."""
from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.errors import StartupError
from gateway.requestlog.admin import AdminKey, local_key
from gateway.requestlog.settings import AdminSettings
from gateway.ui.session import LOGIN_COOKIE, SESSION_COOKIE

STARTUP_SECONDS = 30
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, deadline: float) -> None:
    """Start-up logs before the socket accepts: wait until it does."""
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:  # pragma: no cover
                raise
            time.sleep(0.05)


class Served:
    def __init__(self, proc: subprocess.Popen[str], url: str, lines: list[str]) -> None:
        self.proc, self.url, self.lines = proc, url, lines

    def event(self, name: str) -> dict[str, object]:
        for line in self.lines:
            if line.startswith("{") and json.loads(line).get("event") == name:
                return json.loads(line)
        raise AssertionError(f"no {name} line in:\n{''.join(self.lines)}")


def serve(tmp_path: Path, *args: str) -> Iterator[Served]:
    """``gateway serve`` with nothing set but ``TMPDIR`` (so its files land in ``tmp_path``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env.update(PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path), GATEWAY__LOGGING__FORMAT="json")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), *args],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"gateway serve exited with {proc.wait()}:\n{''.join(lines)}")
            lines.append(line)
            if '"admin.local_key"' in line or '"request_log.' in line:
                break
        else:  # pragma: no cover
            pytest.fail(f"gateway serve did not start within {STARTUP_SECONDS} s:\n{''.join(lines)}")
        wait_listening(port, deadline)
        yield Served(proc, f"http://127.0.0.1:{port}", lines)
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(lines)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path)


async def test_a_fresh_start_shows_the_ui_and_says_where_its_admin_key_is(served: Served, tmp_path: Path) -> None:
    key_file = tmp_path / "gateway-data" / "admin.key"
    said = served.event("admin.local_key")
    assert said["file"] == str(key_file) and str(key_file) in str(said["hint"])
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key not in "".join(served.lines)  # the key itself is never logged

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(served.url + "/ui", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/ui/login")
        async with http.get(served.url + "/ui/login") as form:
            assert form.status == 200
            page = await form.text()
            login_cookie = form.cookies[LOGIN_COOKIE].value
        assert 'id="local-key"' in page and str(key_file) in page and key not in page
        csrf = _CSRF.search(page).group(1)
        async with http.post(served.url + "/ui/login", data={"key": key, "csrf": csrf, "next": "/ui"},
                             headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie}"}, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            session = resp.cookies[SESSION_COOKIE].value
        async with http.get(served.url + "/ui", headers={"Cookie": f"{SESSION_COOKIE}={session}"}) as resp:
            assert resp.status == 200
            assert "Requests" in await resp.text()
        async with http.get(served.url + "/v1/logs", headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(served.url + "/v1/logs", headers={"Authorization": "Bearer not-the-admin-key-at-all"}) as resp:
            assert resp.status == 401


def test_the_key_is_kept_across_restarts(tmp_path: Path) -> None:
    for served in serve(tmp_path):
        first = (tmp_path / "gateway-data" / "admin.key").read_text()
    for served in serve(tmp_path):  # noqa: B007
        assert served.event("admin.local_key")
        assert (tmp_path / "gateway-data" / "admin.key").read_text() == first


def test_two_workers_agree_on_one_key(tmp_path: Path) -> None:
    for served in serve(tmp_path, "--workers", "2"):
        key = (tmp_path / "gateway-data" / "admin.key").read_text().strip()
        deadline = time.monotonic() + STARTUP_SECONDS
        # Both workers log the file; each answers with the one key (connections land on either).
        while sum('"admin.local_key"' in line for line in served.lines) < 2 and time.monotonic() < deadline:
            served.lines.append(served.proc.stdout.readline())  # type: ignore[union-attr]
        for _ in range(8):
            req = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                                  f"Authorization: Bearer {key}", served.url + "/v1/logs"],
                                 capture_output=True, text=True, timeout=10)
            assert req.stdout == "200"
    assert not [p for p in (tmp_path / "gateway-data").iterdir() if p.name.startswith("admin.key.")]


def test_beyond_loopback_or_with_local_key_off_no_key_is_made(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    for host in ("0.0.0.0", "10.1.2.3", "::"):
        admin = AdminKey.from_settings(AdminSettings(local_key_file=str(path)), [], server_host=host)
        assert not admin.configured and admin.local_file is None
    admin = AdminKey.from_settings(AdminSettings(local_key=False, local_key_file=str(path)), [], server_host="127.0.0.1")
    assert not admin.configured
    assert not path.exists()
    # A key named in the settings wins; nothing is made.
    admin = AdminKey.from_settings(AdminSettings(key="k" * 20, local_key_file=str(path)), [], server_host="::1")
    assert admin.configured and admin.local_file is None and admin.check("k" * 20)
    assert not path.exists()


def test_a_key_file_that_holds_no_key_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    path.write_text("short\n")
    errors: list[str] = []
    admin = AdminKey.from_settings(AdminSettings(local_key_file=str(path)), errors, server_host="localhost")
    assert not admin.configured
    assert errors and "local_key_file" in errors[0] and "set local_key = false" in errors[0]
    with pytest.raises(StartupError, match="local_key_file"):
        raise StartupError(errors[0])


def test_local_key_is_made_once(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "admin.key"
    first = local_key(str(path))
    assert local_key(str(path)) == first
    assert [p.name for p in path.parent.iterdir()] == ["admin.key"]
