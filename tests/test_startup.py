"""``gateway serve`` as a real process on a real port: defaults, flags, environment, logs,
graceful shutdown, worker processes; and start-up errors of the plugin set."""
from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import gateway_openai
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import hookimpl
from gateway.app import create_app
from gateway.errors import StartupError
from gateway.plugins import get_plugin_manager
from gateway.sdk import Provider
from gateway.testing import FakeUpstream, Reply
from gateway_openai import testing as openai_fake

IMAGES = "/v1/images/generations"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


class GatewayProcess:
    """``python -m gateway.cli serve ARGS`` with stdout and stderr captured to files."""

    _n = itertools.count()

    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
        n = next(self._n)
        self.out_path = tmp_path / f"gateway-{n}.stdout"
        self.err_path = tmp_path / f"gateway-{n}.stderr"
        self._files = [open(self.out_path, "wb"), open(self.err_path, "wb")]  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", *args],
            stdout=self._files[0], stderr=self._files[1], stdin=subprocess.DEVNULL, cwd=tmp_path, env=env,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def lines(self) -> list[dict[str, Any]]:
        return [msgspec.json.decode(line) for line in self.stdout.splitlines() if line.strip()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    async def wait_ready(self, base_url: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.stderr}{self.stdout}")
                try:
                    async with http.get(base_url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"gateway not ready after {timeout}s:\n{self.stderr}{self.stdout}")
                await asyncio.sleep(0.05)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; stdout:\n{self.stdout}\nstderr:\n{self.stderr}")
            await asyncio.sleep(0.02)

    async def wait_exit(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway still running after {timeout}s:\n{self.stderr}")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.proc.poll() is None:
            # The process group would be cleaner, but workers are our grandchildren only
            # through the supervisor, which forwards SIGTERM; fall back to SIGKILL.
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in self._files:
            f.close()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@pytest.fixture
def spawn(tmp_path: Path):  # noqa: ANN201
    procs: list[GatewayProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> GatewayProcess:
        p = GatewayProcess(tmp_path, list(args), env if env is not None else clean_env())
        procs.append(p)
        return p

    try:
        yield start
    finally:
        for p in procs:
            p.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def openai_upstream(fake_upstream: FakeUpstream) -> FakeUpstream:
    return openai_fake.install(fake_upstream)


def write_config(tmp_path: Path, text: str, name: str = "gateway.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def image_headers(key: str = "sk-x", **extra: str) -> dict[str, str]:
    return {
        "x-portkey-provider": "openai", "Authorization": f"Bearer {key}", "Content-Type": "application/json", **extra,
    }


# --------------------------------------------------------------------------- serve


async def test_serve_starts_with_embedded_defaults_and_no_keys(tmp_path, spawn, http):  # noqa: ANN001
    port = free_port()
    gw = spawn("--port", str(port))
    base = f"http://127.0.0.1:{port}"
    await gw.wait_ready(base)

    async with http.get(base + "/healthz") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ok"}
    async with http.get(base + "/readyz") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ready"}
    # No gateway keys by default: a request gets past authentication to config resolution.
    async with http.post(base + IMAGES, data=b'{"prompt":"x"}', headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "missing_provider"

    [started] = gw.events("gateway.started")
    assert started["host"] == "127.0.0.1" and started["port"] == port
    assert started["url"] == base
    assert started["pid"] == gw.pid
    assert "openai" in started["providers"]
    assert started["level"] == "info" and "timestamp" in started

    gw.terminate()
    assert await gw.wait_exit() == 0
    assert [e["pid"] for e in gw.events("gateway.stopped")] == [gw.pid]
    assert not listening(port)
    assert gw.stderr == ""


async def test_serve_flags_config_file_and_console_logs(tmp_path, spawn, http, openai_upstream):  # noqa: ANN001
    host = "127.0.0.2"
    try:
        port = free_port(host)
    except OSError:  # pragma: no cover - not Linux-style loopback
        pytest.skip("127.0.0.2 is not a local address here")
    file_port = free_port()
    cfg = write_config(
        tmp_path, f'[server]\nport = {file_port}\n[providers.openai]\nbase_url = "{openai_upstream.url}/v1"\n'
    )
    gw = spawn("--config", cfg, "--host", host, "--port", str(port), "--log-format", "console")
    base = f"http://{host}:{port}"
    await gw.wait_ready(base)
    assert not listening(port, "127.0.0.1")  # --host took effect
    assert not listening(file_port)  # --port beat the file

    async with http.post(base + IMAGES, data=b'{"prompt":"a fox","model":"dall-e-3"}', headers=image_headers()) as resp:
        assert resp.status == 200, await resp.text()
    assert openai_upstream.last.json()["prompt"] == "a fox"  # the file's base_url was used

    gw.terminate()
    assert await gw.wait_exit() == 0
    out = gw.stdout
    assert "gateway.started" in out and "request.finished" in out and "gateway.stopped" in out
    for line in out.splitlines():
        assert not line.startswith("{"), line  # console, not JSON
    finished = next(line for line in out.splitlines() if "request.finished" in line)
    assert "status=200" in finished and "provider=openai" in finished and "model=dall-e-3" in finished


async def test_environment_overrides_beat_the_config_file(tmp_path, spawn, http, openai_upstream):  # noqa: ANN001
    file_port, env_port = free_port(), free_port()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    cfg = write_config(tmp_path, f'[server]\nport = {file_port}\n[providers.openai]\nbase_url = "{dead}"\n')
    gw = spawn("--config", cfg, env=clean_env(
        GATEWAY__SERVER__PORT=str(env_port),
        GATEWAY__PROVIDERS__OPENAI__BASE_URL=openai_upstream.url + "/v1",
        GATEWAY__SECURITY__GATEWAY_KEYS='["gk-1"]',
    ))
    base = f"http://127.0.0.1:{env_port}"
    await gw.wait_ready(base)
    assert not listening(file_port)
    assert gw.events("gateway.started")[0]["port"] == env_port

    async with http.post(base + IMAGES, data=b'{"prompt":"x"}', headers=image_headers()) as resp:
        assert resp.status == 401  # the JSON-typed list from the environment is in force
    headers = image_headers(**{"x-portkey-api-key": "gk-1"})
    async with http.post(base + IMAGES, data=b'{"prompt":"x"}', headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    assert len(openai_upstream.requests) == 1


async def test_config_file_from_gateway_config_variable(tmp_path, spawn, http):  # noqa: ANN001
    port = free_port()
    cfg = write_config(tmp_path, f'[server]\nport = {port}\n')
    gw = spawn(env=clean_env(GATEWAY_CONFIG=cfg))
    await gw.wait_ready(f"http://127.0.0.1:{port}")
    assert gw.events("gateway.started")[0]["port"] == port


async def test_one_json_log_line_per_request(tmp_path, spawn, http, openai_upstream):  # noqa: ANN001
    port = free_port()
    cfg = write_config(tmp_path, f'[providers.openai]\nbase_url = "{openai_upstream.url}/v1"\n')
    gw = spawn("--config", cfg, "--port", str(port), "--log-format", "json")
    base = f"http://127.0.0.1:{port}"
    await gw.wait_ready(base)

    sent: list[dict[str, Any]] = []

    async def call(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> None:
        async with http.request(method, base + path, data=body, headers=headers) as resp:
            payload = await resp.read()
            sent.append({"method": method, "path": path, "status": resp.status, "bytes_in": len(body or b""),
                         "bytes_out": len(payload), "trace_id": resp.headers["x-portkey-trace-id"]})

    await call("POST", IMAGES, b'{"prompt":"a cat","model":"dall-e-3","size":"1024x1024"}', image_headers())
    await call("POST", IMAGES, b'{"prompt":"content_policy cat","model":"dall-e-3"}', image_headers())  # provider 400
    await call("POST", IMAGES, b'{"prompt":', image_headers())  # malformed JSON
    # passthrough, 404 from the provider
    await call("GET", "/v1/models", None, image_headers(**{"x-portkey-trace-id": "my-trace-1"}))

    await gw.wait_for(lambda: len(gw.events("request.finished")) >= len(sent))
    gw.terminate()
    assert await gw.wait_exit() == 0
    lines = gw.lines()  # every stdout line is one JSON object
    finished = [line for line in lines if line["event"] == "request.finished"]
    assert len(finished) == len(sent)
    assert sent[3]["trace_id"] == "my-trace-1"
    for line, req in zip(finished, sent, strict=True):
        for key in ("trace_id", "method", "path", "provider", "model", "status", "ms", "upstream_ms",
                    "bytes_in", "bytes_out", "attempts"):
            assert key in line, (key, line)
        assert line["trace_id"] == req["trace_id"]
        assert (line["method"], line["path"], line["status"]) == (req["method"], req["path"], req["status"])
        assert line["bytes_in"] == req["bytes_in"]
        assert line["bytes_out"] == req["bytes_out"]
        assert line["ms"] >= line["upstream_ms"] >= 0
        assert line["level"] == "info"

    ok, provider_err, malformed, proxied = finished
    assert ok["status"] == 200 and ok["provider"] == "openai" and ok["model"] == "dall-e-3"
    assert ok["attempts"] == 1 and ok["upstream_ms"] > 0 and "error" not in ok
    assert provider_err["status"] == 400 and provider_err["attempts"] == 1 and "safety system" in provider_err["error"]
    assert malformed["status"] == 400 and malformed["attempts"] == 0 and malformed["upstream_ms"] == 0
    assert malformed["provider"] is None and "Malformed JSON" in malformed["error"]
    assert proxied["status"] == 404 and proxied["provider"] == "openai" and proxied["attempts"] == 1


async def test_sigterm_lets_the_in_flight_request_finish(tmp_path, spawn, http, fake_upstream):  # noqa: ANN001
    answer = {"created": 1, "data": [{"url": "https://img.example/1.png"}]}
    fake_upstream.on("POST", "/v1/images/generations", Reply(200, json=answer, delay=1.0))
    port = free_port()
    cfg = write_config(tmp_path, f'[providers.openai]\nbase_url = "{fake_upstream.url}/v1"\n')
    gw = spawn("--config", cfg, "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    await gw.wait_ready(base)

    async def slow_request() -> tuple[int, Any]:
        async with http.post(base + IMAGES, data=b'{"prompt":"x"}', headers=image_headers()) as resp:
            return resp.status, await resp.json()

    task = asyncio.create_task(slow_request())
    await gw.wait_for(lambda: len(fake_upstream.requests) == 1)  # in flight at the provider
    t0 = time.monotonic()
    gw.terminate()
    status, body = await asyncio.wait_for(task, 10)
    assert (status, body) == (200, {**answer, "provider": "openai"})
    assert await gw.wait_exit() == 0
    assert time.monotonic() - t0 < 10  # did not sit out the whole shutdown_timeout
    assert fake_upstream.cancelled == 0
    [finished] = gw.events("request.finished")
    assert finished["status"] == 200 and finished["upstream_ms"] >= 900
    assert gw.events("gateway.stopped")
    assert not listening(port)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (state 0A in /proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the accepted socket of the loopback connection client_port -> server_port."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                return inode
    return None


@pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")),
                    reason="needs SO_REUSEPORT and /proc")
async def test_workers_share_the_port_and_stop_together(tmp_path, spawn):  # noqa: ANN001
    port = free_port()
    gw = spawn("--port", str(port), "--workers", "2")
    await gw.wait_ready(f"http://127.0.0.1:{port}")
    await gw.wait_for(lambda: len(gw.events("gateway.started")) == 2)
    await gw.wait_for(lambda: _listening_sockets(port) == 2)  # one listening socket per worker
    workers = {e["pid"] for e in gw.events("gateway.started")}
    assert len(workers) == 2 and gw.pid not in workers
    assert all(e["port"] == port for e in gw.events("gateway.started"))

    # Open many connections and find, through /proc, which process accepted each one.
    answered_by: list[int] = []
    conns = []
    try:
        for _ in range(32):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            conns.append(writer)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head
            match = re.search(rb"content-length: *(\d+)", head, re.I)
            assert match is not None
            assert await reader.readexactly(int(match.group(1))) == b'{"status": "ok"}'
            inode = _server_side_inode(port, writer.get_extra_info("sockname")[1])
            assert inode is not None
            owners = [pid for pid in workers if inode in _socket_inodes(pid)]
            assert len(owners) == 1, owners
            answered_by.append(owners[0])
    finally:
        for writer in conns:
            writer.close()
            await writer.wait_closed()
    assert set(answered_by) == workers  # both workers answered (P(all 32 on one) = 2**-31)

    gw.terminate()
    assert await gw.wait_exit() == 0
    assert {e["pid"] for e in gw.events("gateway.stopped")} == workers
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()
    assert not listening(port)
    assert "Traceback" not in gw.stderr


# --------------------------------------------------------------------------- secrets never logged

SECRETS = {
    "bearer": "sk-secret-bearer-7f3a91",
    "gateway_key": "gk-secret-valid-2b8c44",
    "wrong_gateway_key": "gk-secret-wrong-9d0e17",
    "aws_secret": "aws-secret-access-5e6f28",
    "aws_session": "aws-secret-session-3c4d39",
    "config_key": "sk-secret-in-config-1a2b3c",
    "bad_config_key": "sk-secret-in-bad-config-4d5e6f",
    "broken_config_key": "sk-secret-in-broken-json-7a8b9c",
    "unknown_provider_key": "sk-secret-unknown-provider-0d1e2f",
    "rejected": "sk-secret-rejected-4321",
    "unreachable": "sk-secret-unreachable-5a6b7c",
    "proxy": "sk-secret-passthrough-8d9e0f",
    "custom_host_password": "sk-secret-in-custom-host-1f2e3d",
}


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_secrets_never_reach_the_logs(tmp_path, spawn, http, fake_upstream, log_format):  # noqa: ANN001
    openai_fake.install(fake_upstream)
    rejection = {"error": {
        "message": "Incorrect API key provided: sk-secr*************4321. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key",
    }}
    fake_upstream.on("POST", "/rejecting/images/generations", Reply(401, json=rejection))
    port = free_port()
    cfg = write_config(tmp_path, (
        f'[providers.openai]\nbase_url = "{fake_upstream.url}/v1"\n'
        f'[security]\ngateway_keys = ["{SECRETS["gateway_key"]}"]\n'
    ))
    gw = spawn("--config", cfg, "--port", str(port), "--log-format", log_format,
               env=clean_env(GATEWAY__LOGGING__LEVEL="debug", GATEWAY_TRACE_HOOKS="1"))
    base = f"http://127.0.0.1:{port}"
    await gw.wait_ready(base)
    gk = {"x-portkey-api-key": SECRETS["gateway_key"]}
    aws = {
        "x-portkey-aws-secret-access-key": SECRETS["aws_secret"],
        "x-portkey-aws-session-token": SECRETS["aws_session"],
    }
    body = b'{"prompt":"a red fox"}'
    broken_config = '{"provider":"openai","api_key":"%s"' % SECRETS["broken_config_key"]  # truncated JSON

    def config(**fields: Any) -> str:
        return msgspec.json.encode(fields).decode()

    requests: list[tuple[str, str, bytes | None, dict[str, str], int]] = [
        # successful
        ("POST", IMAGES, body, image_headers(SECRETS["bearer"], **gk, **aws), 200),
        ("POST", IMAGES, body, {**gk, "Content-Type": "application/json",
                                "x-portkey-config": config(provider="openai", api_key=SECRETS["config_key"])}, 200),
        # failing: gateway key wrong or missing, provider 401, provider unreachable
        ("POST", IMAGES, body, image_headers(SECRETS["bearer"], **{"x-portkey-api-key": SECRETS["wrong_gateway_key"]}),
         401),
        ("POST", IMAGES, body, image_headers(SECRETS["bearer"], **aws), 401),
        ("POST", IMAGES, body, image_headers(SECRETS["rejected"], **gk, **{
            "x-portkey-custom-host": fake_upstream.url + "/rejecting"}), 401),
        ("POST", IMAGES, body, image_headers(SECRETS["unreachable"], **gk, **{
            "x-portkey-custom-host": f"http://127.0.0.1:{free_port()}/v1"}), 502),
        ("GET", "/v1/models", None, image_headers(SECRETS["proxy"], **gk, **aws), 404),
        # malformed
        ("POST", IMAGES, b'{"prompt": ', image_headers(SECRETS["bearer"], **gk, **aws), 400),
        ("POST", IMAGES, body, {**gk, "Content-Type": "application/json", "x-portkey-config": config(
            provider="openai", api_key=SECRETS["bad_config_key"], retry={"attempts": 99})}, 400),
        ("POST", IMAGES, body, {**gk, "Content-Type": "application/json", "x-portkey-config": broken_config}, 400),
        ("POST", IMAGES, body, {**gk, "Content-Type": "application/json", "x-portkey-config": config(
            provider="opnai", api_key=SECRETS["unknown_provider_key"])}, 400),
        ("POST", IMAGES, body, image_headers(SECRETS["bearer"], **gk, **{
            "x-portkey-custom-host": f"https://user:{SECRETS['custom_host_password']}@10.0.0.1/v1"}), 400),
        ("POST", IMAGES, body, image_headers(SECRETS["bearer"], **gk, **{"Content-Type": "text/plain"}), 415),
    ]
    for method, path, data, headers, expected in requests:
        async with http.request(method, base + path, data=data, headers=headers) as resp:
            text = await resp.text()
            assert resp.status == expected, (headers, resp.status, text)
    # The key inside the inline config was the one sent upstream.
    assert [r.headers["Authorization"] for r in fake_upstream.requests[:2]] == [
        f"Bearer {SECRETS['bearer']}", f"Bearer {SECRETS['config_key']}"]

    await gw.wait_for(lambda: gw.stdout.count("request.finished") >= len(requests))
    gw.terminate()
    assert await gw.wait_exit() == 0
    captured = gw.stdout + gw.stderr
    assert captured.count("request.finished") == len(requests)
    assert "hook.called" in captured  # debug-level hook tracing was on
    leaked = {name: secret for name, secret in SECRETS.items() if secret in captured}
    assert not leaked, f"secrets in the gateway's output: {leaked}"
    assert "sk-secret" not in captured and "gk-secret" not in captured and "aws-secret" not in captured


# --------------------------------------------------------------------------- start-up errors of the plugin set


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


def test_misspelled_hook_implementation_names_the_plugin() -> None:
    def gateway_register_provider() -> list[type]:  # missing "s"
        return []

    plugin = _module("acme_misspelled", gateway_register_provider=gateway_register_provider)
    with pytest.raises(StartupError) as info:
        get_plugin_manager(load_entrypoints=False, extra=[plugin])
    msg = str(info.value)
    assert "acme_misspelled" in msg and "unknown hook 'gateway_register_provider'" in msg
    assert "\n" not in msg


def test_misspelled_hook_on_a_plugin_object() -> None:
    class AcmeTags:
        def gateway_log_field(self, ctx: Any) -> dict[str, Any]:  # missing "s"
            return {}

    with pytest.raises(StartupError, match=r"AcmeTags.*unknown hook 'gateway_log_field'"):
        get_plugin_manager(load_entrypoints=False, extra=[AcmeTags()])


def test_hook_implementation_with_unknown_argument_is_one_line() -> None:
    @hookimpl
    def gateway_authenticate(ctx: Any, request: Any) -> None:
        return None

    with pytest.raises(StartupError) as info:
        get_plugin_manager(
            load_entrypoints=False, extra=[_module("acme_auth", gateway_authenticate=gateway_authenticate)]
        )
    msg = str(info.value)
    assert msg.startswith("plugin 'acme_auth': ")
    assert "request" in msg and "\n" not in msg


def _provider(provider_name: str) -> type[Provider]:
    return type("P", (Provider,), {"name": provider_name, "default_base_url": "https://example.com"})


def test_two_plugins_registering_the_same_provider_name() -> None:
    one = _module("acme_one", gateway_register_providers=hookimpl(lambda: [_provider("dup")]))
    two = _module("acme_two", gateway_register_providers=hookimpl(lambda: [_provider("dup")]))
    with pytest.raises(StartupError) as info:
        create_app({}, plugins=[one, two], load_entrypoints=False)
    msg = str(info.value)
    assert "provider 'dup'" in msg and "'acme_one'" in msg and "'acme_two'" in msg


def test_a_plugin_claiming_an_installed_provider_name() -> None:
    rival = _module("acme_openai", gateway_register_providers=hookimpl(lambda: [_provider("openai")]))
    with pytest.raises(StartupError) as info:
        create_app({}, plugins=[rival], load_entrypoints=True)
    msg = str(info.value)
    assert "provider 'openai'" in msg and "'acme_openai'" in msg and "'openai'" in msg.replace("provider 'openai'", "")


@pytest.mark.parametrize("name", ["gateway.defaults.routing", "gateway.defaults.errors_json"])
def test_essential_plugin_in_plugins_disable(name: str) -> None:
    with pytest.raises(StartupError, match=rf"plugin '{re.escape(name)}' is essential and cannot be disabled"):
        create_app({"plugins": {"disable": [name]}}, load_entrypoints=False)


def test_non_essential_default_can_be_disabled() -> None:
    app = create_app({"plugins": {"disable": ["gateway.defaults.auth_keys"]}}, load_entrypoints=False)
    from gateway.keys import GATEWAY

    assert not app[GATEWAY].chain.has_impls("gateway_authenticate")


def test_disabling_an_entry_point_plugin_by_name() -> None:
    from gateway.keys import GATEWAY

    app = create_app({"plugins": {"disable": ["openai"]}}, load_entrypoints=True)
    assert "openai" not in app[GATEWAY].registry.providers
    app = create_app({}, load_entrypoints=True)
    assert isinstance(app[GATEWAY].registry.providers["openai"], gateway_openai.OpenAIProvider)


class _NewStyleWrapper:
    @hookimpl(wrapper=True)
    def gateway_route(self, ctx: Any):  # noqa: ANN201
        return (yield)


class _OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def gateway_authenticate(self, ctx: Any):  # noqa: ANN201
        yield


@pytest.mark.parametrize(("plugin", "hook"), [(_NewStyleWrapper(), "gateway_route"),
                                              (_OldStyleWrapper(), "gateway_authenticate")])
def test_request_chain_hook_as_wrapper_is_refused(plugin: Any, hook: str) -> None:
    with pytest.raises(StartupError) as info:
        create_app({}, plugins=[plugin], load_entrypoints=False)
    msg = str(info.value)
    assert type(plugin).__name__ in msg
    assert f"{hook} is a request-chain hook and cannot be a wrapper" in msg


def test_wrapper_on_a_startup_hook_is_allowed() -> None:
    seen = []

    class LifespanWrapper:
        @hookimpl(wrapper=True)
        def gateway_lifespan(self, app: Any):  # noqa: ANN201
            seen.append("wrapped")
            return (yield)

    create_app({}, plugins=[LifespanWrapper()], load_entrypoints=False)
    assert seen == ["wrapped"]


@pytest.mark.parametrize("method,status", [("HEAD", 200), ("GET", 204), ("GET", 304), ("POST", 204)])
async def test_bodiless_passthrough_answers_twice_then_healthz(tmp_path, spawn, fake_upstream, method, status):  # noqa: ANN001
    """A HEAD, or an upstream 204/304, has no body: relaying two in a row must not spin the loop."""
    fake_upstream.on(method, "/v1/models", *[Reply(status, headers={"x-upstream": "yes"})] * 2)
    port = free_port()
    cfg = write_config(tmp_path, f'[providers.openai]\nbase_url = "{fake_upstream.url}/v1"\n')
    gw = spawn("--config", cfg, "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    await gw.wait_ready(base)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for _ in range(2):
            data = b"{}" if method == "POST" else None
            async with http.request(method, base + "/v1/models", data=data, headers=image_headers()) as resp:
                assert resp.status == status
                assert resp.headers["x-upstream"] == "yes"
                assert await resp.read() == b""
        async with http.get(base + "/healthz") as resp:
            assert resp.status == 200
    assert len(fake_upstream.requests) == 2


@pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")),
                    reason="needs SO_REUSEPORT")
async def test_metrics_count_every_worker_whichever_answers_the_scrape(tmp_path, spawn):  # noqa: ANN001
    port = free_port()
    gw = spawn("--port", str(port), "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    await gw.wait_ready(base)
    await gw.wait_for(lambda: len(gw.events("gateway.started")) == 2)
    # A new connection per request: the kernel spreads them over both workers.
    for _ in range(40):
        async with aiohttp.ClientSession() as http, http.post(base + IMAGES, json={"prompt": "x"}) as resp:
            assert resp.status == 400
    totals = set()
    for _ in range(8):
        async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "gateway_requests_total" and s.labels["status"] == "400":
                    totals.add(s.value)
    assert totals == {40.0}
    gw.terminate()
    assert await gw.wait_exit() == 0
