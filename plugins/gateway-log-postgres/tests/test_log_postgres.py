"""The PostgreSQL log store against a real PostgreSQL server (started here, on a free port in a
temporary directory), in process and with two real gateway processes sharing one log."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import html
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

import gateway_log_postgres
from gateway.sdk import LogQuery, LogRecord, StartupError
from gateway.testing import PNG_1X1, Reply, fake_provider, make_app, services_of
from gateway_log_postgres.store import PostgresLogStore, PostgresSettings, dsn

GEN = "/v1/images/generations"
ADMIN = "admin-key-postgres-tests-0123"
AH = {"Authorization": f"Bearer {ADMIN}"}
H = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-PLANTED-caller-7Hs2Jd9Fk4"}
GATEWAY_BIN = str(Path(sys.executable).with_name("gateway"))
T0 = 1_750_000_000.0


def _binary(name: str) -> str | None:
    for found in [shutil.which(name), *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)]:
        if found and os.access(found, os.X_OK):
            return found
    return None


POSTGRES, INITDB = _binary("postgres"), _binary("initdb")
if POSTGRES is None or INITDB is None:
    message = "PostgreSQL's postgres and initdb are not installed (Debian's postgresql package; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytestmark = pytest.mark.skip(reason=message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresProcess:
    """A throwaway PostgreSQL server: its own data directory, trust auth on 127.0.0.1, no fsync.
    PostgreSQL refuses to run as root: as root it runs as the ``postgres`` (else ``nobody``) user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        self.data = self.dir / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        assert INITDB is not None
        subprocess.run([INITDB, "-D", str(self.data), "-U", "gateway", "-A", "trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, user=self.user, cwd=self.dir)

    @property
    def dsn(self) -> str:
        return f"postgresql://gateway@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        assert POSTGRES is not None
        self.log = (self.dir / "postgres.log").open("ab")
        self.proc = subprocess.Popen(
            [POSTGRES, "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=60"],
            stdout=self.log, stderr=subprocess.STDOUT, user=self.user, cwd=self.dir,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + (self.dir / "postgres.log").read_text())
            try:
                ready = (self.data / "postmaster.pid").read_text().splitlines()[7].strip() == "ready"
            except (OSError, IndexError):
                ready = False
            if ready:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres did not start: " + (self.dir / "postgres.log").read_text())

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT: a fast shutdown (SIGTERM's smart one waits for the gateways' connections to end).
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(20)
            self.proc = None
            self.log.close()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresProcess]:
    pg = PostgresProcess()
    pg.start()
    try:
        yield pg
    finally:
        pg.remove()


@pytest.fixture
async def database(server: PostgresProcess) -> AsyncIterator[str]:
    """A fresh database on the module's server; its DSN."""
    name = "gw_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(server.dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield server.dsn.rsplit("/", 1)[0] + "/" + name
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def store(database: str) -> AsyncIterator[PostgresLogStore]:
    s = PostgresLogStore(database, retention_days=30)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def rec(i: int, **fields: Any) -> LogRecord:
    base: dict[str, Any] = dict(
        id=f"01{i:024d}", trace_id=f"trace-{i}", time=T0 + i, key=None, endpoint="images.generations",
        method="POST", path=GEN, provider="fake", model="fake-image", status=200, error_code=None, error=None,
        ms=100.0 + i, upstream_ms=90.0, overhead_ms=10.0 + i, bytes_in=20, bytes_out=100)
    base.update(fields)
    return LogRecord(**base)


# -- the store ---------------------------------------------------------------------------


async def test_records_round_trip_and_filter(store: PostgresLogStore) -> None:
    await store.write([
        rec(0, provider="openai", model="gpt-image-1", key="alice", metadata={"user": "u1"},
            params={"prompt": "a fox\u00e9", "n": 2}, usage={"total_tokens": 9}, cost=0.04, cost_exact=True),
        rec(1, status=429, error_code="rate_limit_exceeded", key="bob", metadata={"user": "u2", "team": "a"}),
        rec(2, status=502, trace_id="shared", metadata={"user": "u1", "team": "a", "nul": "x\x00y"}),
        rec(3, status=400, trace_id="shared", provider="openai"),
        rec(4, model="fake-hd", key="alice"),
    ])
    await store.write([rec(4, model="changed")])  # an id already there is left as it is

    async def ids(**filters: Any) -> list[str]:
        return [r.trace_id for r in (await store.query(LogQuery(**filters)))[0]]

    assert await ids() == ["trace-4", "shared", "shared", "trace-1", "trace-0"]
    assert await ids(provider="openai") == ["shared", "trace-0"]
    assert await ids(model="fake-hd") == ["trace-4"]
    assert await ids(status="4xx") == ["shared", "trace-1"]
    assert await ids(status="502") == ["shared"]
    assert await ids(key="alice") == ["trace-4", "trace-0"]
    assert await ids(trace_id="shared") == ["shared", "shared"]
    assert await ids(metadata={"user": "u1"}) == ["shared", "trace-0"]
    assert await ids(metadata={"user": "u1", "team": "a"}) == ["shared"]
    assert await ids(since=T0 + 1, until=T0 + 3) == ["shared", "trace-1"]
    first = await store.get(rec(0).id)
    assert first == rec(0, provider="openai", model="gpt-image-1", key="alice", metadata={"user": "u1"},
                        params={"prompt": "a fox\u00e9", "n": 2}, usage={"total_tokens": 9}, cost=0.04, cost_exact=True)
    assert (await store.get(rec(2).id)).metadata["nul"] == "x\x00y"  # kept in the record, not filterable
    assert await store.get("nope") is None


async def test_cursor_pagination(store: PostgresLogStore) -> None:
    records = [rec(i, time=T0 + i // 3) for i in range(125)]
    await store.write(records)
    seen, cursor = [], None
    while True:
        page, cursor = await store.query(LogQuery(limit=50, cursor=cursor))
        seen.extend((r.time, r.id) for r in page)
        if cursor is None:
            break
    assert seen == sorted(((r.time, r.id) for r in records), reverse=True)


async def test_stats_match_the_sqlite_store(store: PostgresLogStore) -> None:
    await store.write([rec(0, ms=10.0, cost=0.04, cost_saved=0.03, cache="HIT"),
                       rec(1, ms=30.0, status=500, cache="MISS"), rec(2, ms=20.0, status=404),
                       rec(3, provider="openai", ms=5.0), rec(70, ms=1.0)])
    b0 = int(T0 // 60) * 60
    assert await store.stats(T0, T0 + 120, 60) == [
        {"bucket": b0, "provider": "fake", "requests": 3, "errors_4xx": 1, "errors_5xx": 1, "p50_ms": 20.0,
         "p95_ms": 30.0, "cost": 0.04, "cost_saved": 0.03, "cache_hits": 1, "cache_lookups": 2},
        {"bucket": b0, "provider": "openai", "requests": 1, "errors_4xx": 0, "errors_5xx": 0, "p50_ms": 5.0,
         "p95_ms": 5.0, "cost": 0.0, "cost_saved": 0.0, "cache_hits": 0, "cache_lookups": 0},
        {"bucket": b0 + 60, "provider": "fake", "requests": 1, "errors_4xx": 0, "errors_5xx": 0, "p50_ms": 1.0,
         "p95_ms": 1.0, "cost": 0.0, "cost_saved": 0.0, "cache_hits": 0, "cache_lookups": 0},
    ]


async def test_retention_by_age_and_by_size(database: str) -> None:
    s = PostgresLogStore(database, retention_days=30, max_bytes=200_000)
    await s.start()
    try:
        now = time.time()
        await s.write([rec(0, time=now - 31 * 86400), rec(1, time=now - 29 * 86400)])
        assert await s.prune(now) == 1
        await s.write([rec(10 + i, time=now - 5000 + i, params={"prompt": "x" * 900}) for i in range(1000)])
        assert await s.used_bytes() > 1_000_000
        removed = await s.prune(now)
        assert 800 < removed < 1000
        assert await s.used_bytes() <= 200_000
        page, _ = await s.query(LogQuery(limit=1))
        assert page[0].time == now - 5000 + 999
    finally:
        await s.close()


async def test_migrations_run_once_even_when_instances_start_together(database: str) -> None:
    stores = [PostgresLogStore(database, 30) for _ in range(3)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        assert [await s.migrate() for s in stores] == [[], [], []]
        await stores[0].start()  # a restart
        conn = await asyncpg.connect(database)
        try:
            assert [r[0] for r in await conn.fetch("SELECT version FROM gateway_log_schema_version")] == [1, 2]
        finally:
            await conn.close()
    finally:
        for s in stores:
            await s.close()


def test_settings_name_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_LOG_DSN", "postgresql://x@db/log")
    assert dsn(PostgresSettings(dsn_env="GW_LOG_DSN")) == "postgresql://x@db/log"
    with pytest.raises(StartupError, match="set one of dsn, dsn_env"):
        dsn(PostgresSettings())
    with pytest.raises(StartupError, match="GW_LOG_UNSET is not set"):
        dsn(PostgresSettings(dsn_env="GW_LOG_UNSET"))


# -- through a gateway ---------------------------------------------------------------------


@pytest.fixture
def gateway_plugins() -> list[Any]:
    return [fake_provider.plugin, gateway_log_postgres]


@pytest.fixture
def gateway_settings(fake_upstream, database) -> dict[str, Any]:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
            "request_log": {"store": "postgres", "flush_interval": 0.01},
            "log_postgres": {"dsn": database}, "admin": {"key": ADMIN}}


async def logged(services, n: int = 1, timeout: float = 10.0) -> list[LogRecord]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        page, _ = await services.log_store.query(LogQuery(limit=200))
        if len(page) >= n or time.monotonic() > deadline:
            assert len(page) >= n, f"{len(page)} records, wanted {n}"
            return page
        await asyncio.sleep(0.02)


async def test_a_request_through_the_gateway_lands_in_postgres(gateway_client, gateway_services,
                                                                database) -> None:  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers={
        **H, "x-portkey-trace-id": "pg-1", "x-portkey-metadata": '{"user": "u-9"}'})
    assert resp.status == 200, await resp.text()
    [record] = await logged(gateway_services)
    assert (record.trace_id, record.provider, record.status, record.params) == (
        "pg-1", "fake", 200, {"prompt": "a fox", "response_format": "b64_json"})
    assert len(record.images) == 1
    listed = await (await gateway_client.get("/v1/logs?metadata.user=u-9", headers=AH)).json()
    assert [r["trace_id"] for r in listed["data"]] == ["pg-1"]
    conn = await asyncpg.connect(database)
    try:
        dump = "".join(str(tuple(r)) for r in await conn.fetch("SELECT * FROM gateway_requests"))
    finally:
        await conn.close()
    assert "sk-PLANTED" not in dump and "pg-1" in dump


@pytest.fixture
async def own_server() -> AsyncIterator[PostgresProcess]:
    pg = PostgresProcess()
    pg.start()
    try:
        yield pg
    finally:
        pg.remove()


async def test_postgres_down_then_back(own_server, fake_upstream, gateway_plugins, aiohttp_client,
                                       log_capture) -> None:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    app = make_app({"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}},
                    "request_log": {"store": "postgres", "flush_interval": 0.01},
                    "log_postgres": {"dsn": own_server.dsn, "connect_timeout": 2}, "admin": {"key": ADMIN}},
                   plugins=gateway_plugins)
    client = await aiohttp_client(app)
    services = services_of(app)
    writer = services.request_log
    await client.post(GEN, json={"prompt": "before"}, headers=H)
    await logged(services, 1)
    own_server.stop()
    for i in range(4):
        resp = await client.post(GEN, json={"prompt": f"down {i}"}, headers=H)
        assert resp.status == 200
    deadline = time.monotonic() + 15
    while writer.dropped < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert writer.dropped == 4
    assert len(log_capture.events("request_log.unavailable")) == 1
    own_server.start()
    deadline = time.monotonic() + 30
    while not log_capture.events("request_log.recovered") and time.monotonic() < deadline:
        await client.post(GEN, json={"prompt": "back"}, headers=H)
        await asyncio.sleep(0.3)
    [recovered] = log_capture.events("request_log.recovered")
    assert recovered["dropped"] >= 4
    page = await logged(services, 2)
    assert page[0].params["prompt"] == "back" and page[-1].params["prompt"] == "before"


# -- two gateway processes, one log ------------------------------------------------------------


class GatewayProcess:
    def __init__(self, config: Path) -> None:
        self.port = free_port()
        self.log = config.with_suffix(f".{self.port}.log")
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen([GATEWAY_BIN, "serve", "--port", str(self.port), "--config", str(config)],
                                     stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(self.url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError("gateway did not start: " + self.log.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._out.close()

    def lines(self) -> list[dict]:
        out = []
        for line in self.log.read_bytes().splitlines():
            with contextlib.suppress(msgspec.DecodeError):
                out.append(msgspec.json.decode(line))
        return out


async def ui_sign_in(session: aiohttp.ClientSession, url: str) -> None:
    """Sign in to the web UI of the gateway at ``url`` with the admin key, as a browser does (the
    form's CSRF token and cookie); the session cookie stays in ``session``'s jar."""
    async with session.get(url + "/ui/login") as resp:
        assert resp.status == 200, await resp.text()
        form = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert form is not None
    async with session.post(url + "/ui/login", data={"key": ADMIN, "csrf": form.group(1), "next": "/ui"},
                            allow_redirects=False) as resp:
        assert (resp.status, resp.headers.get("Location")) == (303, "/ui"), await resp.text()


async def ui_rows(session: aiohttp.ClientSession, url: str, query: str = "") -> list[str]:
    """The record ids the request list at ``url`` shows, in its order (signed in: no redirect)."""
    async with session.get(url + "/ui" + query, allow_redirects=False) as resp:
        assert resp.status == 200, (resp.status, resp.headers.get("Location"))
        return re.findall(r'<tr data-href="/ui/requests/([0-9A-Za-z]+)"', await resp.text())


async def test_two_gateways_write_one_log_that_either_reads_in_full(tmp_path, database,
                                                                    fake_upstream) -> None:  # noqa: ANN001
    """Two gateway processes share one PostgreSQL log: each reads every record both wrote, through
    ``GET /v1/logs`` and through its web UI (one sign-in serving both: the session is signed with
    a secret derived from the admin key they share), images included (one image store: a shared
    directory, as docs/request-log.md says)."""
    fake_upstream.on("POST", GEN, Reply(json={"created": 1, "data": [{"b64_json": base64.b64encode(PNG_1X1).decode()}]}))
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[providers.openai]
base_url = "{fake_upstream.url}/v1"

[images]
directory = "{tmp_path / 'images'}"

[request_log]
store = "postgres"
flush_interval = 0.05

[log_postgres]
dsn = "{database}"

[admin]
key = "{ADMIN}"
""")
    a, b = GatewayProcess(config), GatewayProcess(config)
    session = aiohttp.ClientSession()
    try:
        await a.ready(session)
        await b.ready(session)
        sent = []
        for i in range(12):
            gw = (a, b)[i % 2]
            trace = f"{'ab'[i % 2]}-{i}"
            async with session.post(gw.url + GEN, json={"prompt": f"fox {i}"}, headers={
                    "x-portkey-provider": "openai", "Authorization": "Bearer sk-PLANTED-two-gateways-0193",
                    "x-portkey-trace-id": trace}) as resp:
                assert resp.status == 200, await resp.text()
            sent.append(trace)
        for reader in (a, b):
            deadline = time.monotonic() + 15
            while True:
                async with session.get(reader.url + "/v1/logs?limit=200", headers=AH) as resp:
                    assert resp.status == 200, await resp.text()
                    page = await resp.json()
                if len(page["data"]) >= len(sent) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert sorted(r["trace_id"] for r in page["data"]) == sorted(sent)
            assert {r["provider"] for r in page["data"]} == {"openai"}
            # A record another instance wrote, by id.
            other = next(r for r in page["data"] if r["trace_id"].startswith("b" if reader is a else "a"))
            async with session.get(reader.url + f"/v1/logs/{other['id']}", headers=AH) as resp:
                assert (await resp.json())["trace_id"] == other["trace_id"]
        # The UI of either instance: the list holds every record, newest first, whichever instance
        # wrote it. unsafe: the jar keeps cookies of an address (127.0.0.1); cookies know no port, so
        # the session from signing in to a goes to b too, as a browser's would.
        newest_first = [r["id"] for r in sorted(page["data"], key=lambda r: (r["time"], r["id"]), reverse=True)]
        by_trace = {r["trace_id"]: r["id"] for r in page["data"]}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            await ui_sign_in(browser, a.url)
            for reader in (a, b):
                assert await ui_rows(browser, reader.url) == newest_first
                # A trace id of the other instance's, filtered, and its page.
                other = "b-1" if reader is a else "a-0"
                assert await ui_rows(browser, reader.url, f"?trace_id={other}") == [by_trace[other]]
                async with browser.get(reader.url + f"/ui/requests/{by_trace[other]}") as resp:
                    detail = await resp.text()
                    assert resp.status == 200 and other in detail and f"fox {other.split('-')[1]}" in detail
                # The image the other instance kept, served by this one.
                src = re.search(r'<img class="full" src="([^"]+)"', detail)
                assert src is not None, detail
                async with browser.get(reader.url + html.unescape(src.group(1))) as resp:
                    assert resp.status == 200 and await resp.read() == PNG_1X1
        # Each instance ran the migrations at start-up: one applied them, the other found them done.
        conn = await asyncpg.connect(database)
        try:
            assert await conn.fetchval("SELECT count(*) FROM gateway_log_schema_version") == 2
            dump = "".join(str(tuple(r)) for r in await conn.fetch("SELECT * FROM gateway_requests"))
        finally:
            await conn.close()
        assert "sk-PLANTED" not in dump
    finally:
        await session.close()
        a.stop()
        b.stop()
    assert not [line for line in a.lines() + b.lines() if line.get("event", "").startswith("request_log.")
                and line.get("event") != "request_log.pruned"]


async def test_a_cache_hit_records_what_it_saved(gateway_client, gateway_services, database) -> None:  # noqa: ANN001
    """A HIT costs 0 and keeps what its MISS cost as ``cost_saved``: in the record, its own column
    (summed by the dashboard's figures) and ``GET /v1/logs/{id}``."""
    config = {"provider": "fake", "api_key": "sk-a", "cache": {"mode": "simple", "max_age": 60}}
    headers = {"x-portkey-config": msgspec.json.encode(config).decode()}
    miss = await gateway_client.post(GEN, json={"prompt": "a fox", "n": 2}, headers=headers)
    assert (miss.status, miss.headers["x-portkey-cache-status"], miss.headers["x-gateway-cost"]) == (
        200, "MISS", "0.040000")
    await gateway_services.drain()
    hit = await gateway_client.post(GEN, json={"prompt": "a fox", "n": 2}, headers=headers)
    assert (hit.headers["x-portkey-cache-status"], hit.headers["x-gateway-cost-saved"]) == ("HIT", "0.040000")
    hit_record, miss_record = await logged(gateway_services, 2)
    assert (miss_record.cache, miss_record.cost, miss_record.cost_saved) == ("MISS", 0.04, None)
    assert (hit_record.cache, hit_record.cost, hit_record.cost_saved) == ("HIT", 0.0, 0.04)
    one = await (await gateway_client.get(f"/v1/logs/{hit_record.id}", headers=AH)).json()
    assert (one["cost"], one["cost_saved"]) == (0.0, 0.04)
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT cache, cost, cost_saved FROM gateway_requests ORDER BY id")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("MISS", 0.04, None), ("HIT", 0.0, 0.04)]
    [totals] = await gateway_services.log_store.stats(0, time.time() + 60, 10 ** 10)
    assert (totals["cost"], totals["cost_saved"], totals["cache_hits"]) == (0.04, 0.04, 1)
