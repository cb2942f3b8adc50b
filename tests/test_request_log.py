"""The request log: a record per request (unified routes and passthrough) in the embedded
SQLite store, the images of an answer kept viewable, ``GET /v1/logs`` under the admin key,
retention, a store that is down or slow, migrations, and nothing secret in the database."""
from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import sqlite3
import struct
import time
import types
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.errors import StartupError
from gateway.requestlog.api import parse_query
from gateway.requestlog.params import safe_params
from gateway.requestlog.record import LogRecord, id_floor, new_id
from gateway.requestlog.sqlite import MIGRATIONS, SQLiteLogStore
from gateway.requestlog.sqlite import _where as sqlite_where
from gateway.requestlog.store import InvalidQuery, LogQuery, aggregate, percentile
from gateway.testing import PNG_1X1, Reply, edit_form, fake_provider
from gateway.testing.fake_provider import FakeProvider
from gateway.ui.pages import detail_body

GEN = "/v1/images/generations"
EDITS = "/v1/images/edits"
ADMIN = "admin-key-for-tests-0123456789"
AH = {"Authorization": f"Bearer {ADMIN}"}
CALLER_KEY = "sk-caller-Zq3vT8mN1pL6xR4kW9sY2bH7"
H = {"x-portkey-provider": "fake", "Authorization": f"Bearer {CALLER_KEY}"}
ALICE_KEY = "gk-alice-5f3a9c1e7b2d4f60a8b9"
BOB_KEY = "gk-bob-0a1b2c3d4e5f60718293"


def png(width: int, height: int, noise: bool = True) -> bytes:
    """A PNG of random pixels (incompressible: large) or one colour."""
    if noise:
        rnd = random.Random(width * 7919 + height)
        im = Image.frombytes("RGB", (width, height), bytes(rnd.getrandbits(8) for _ in range(width * height * 3)))
    else:
        im = Image.new("RGB", (width, height), (200, 30, 30))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


BIG = png(600, 300)


flaky_plugin = types.SimpleNamespace(gateway_register_log_stores=lambda: [FlakyStore])


class ExpiringFake(FakeProvider):
    """The fake provider declaring that its result URLs expire (the core keeps its images)."""

    name = "fake-expiring"
    result_urls_expire = True


expiring_plugin = types.SimpleNamespace(gateway_register_providers=lambda: [ExpiringFake])


@pytest.fixture
def gateway_plugins(gateway_plugins):  # noqa: ANN001, ANN201
    return [*gateway_plugins, expiring_plugin, flaky_plugin]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def log_settings() -> dict[str, Any]:
    """Overridden by tests that change ``[request_log]``."""
    return {}


@pytest.fixture
def admin_settings() -> dict[str, Any]:
    return {"key": ADMIN}


@pytest.fixture
def gateway_settings(fake_upstream, data_dir, tmp_path, log_settings, admin_settings) -> dict[str, Any]:  # noqa: ANN001
    fake_provider.install(fake_upstream)
    return {
        "providers": {"fake": {"base_url": fake_upstream.url + "/v1"},
                      "fake-expiring": {"base_url": fake_upstream.url + "/v1"}},
        "request_log": {"path": str(data_dir / "requests.sqlite3"), "flush_interval": 0.01, **log_settings},
        "admin": admin_settings,
        "images": {"directory": str(tmp_path / "images")},
    }


async def logged(services, n: int = 1, timeout: float = 5.0) -> list[LogRecord]:  # noqa: ANN001
    """The log's records, newest first, once there are at least ``n``."""
    deadline = time.monotonic() + timeout
    while True:
        page, _ = await services.log_store.query(LogQuery(limit=200))
        if len(page) >= n or time.monotonic() > deadline:
            assert len(page) >= n, f"{len(page)} records, wanted {n}"
            return page
        await asyncio.sleep(0.02)


async def api(client, path: str, status: int = 200, **headers: str) -> dict:  # noqa: ANN001
    resp = await client.get(path, headers=headers or AH)
    text = await resp.text()
    assert resp.status == status, text
    assert resp.headers["Content-Type"].startswith("application/json")
    return msgspec.json.decode(text)


# -- a record per request -----------------------------------------------------------------


@pytest.fixture
def keyed(gateway_settings) -> dict[str, Any]:  # noqa: ANN001
    gateway_settings["gateway_keys"] = {"alice": {"key": ALICE_KEY}, "bob": {"key": BOB_KEY}}
    return gateway_settings


async def test_a_generation_becomes_a_record_with_every_field(keyed, gateway_client, gateway_services,
                                                             log_capture):  # noqa: ANN001
    body = {"prompt": "a red fox in snow", "size": "512x512", "response_format": "b64_json", "seed": 7}
    before = time.time()
    resp = await gateway_client.post(GEN, data=msgspec.json.encode(body), headers={
        **H, "Content-Type": "application/json", "x-portkey-api-key": ALICE_KEY, "x-portkey-trace-id": "trace-fox-1",
        "x-portkey-metadata": '{"user": "u-42", "team": "art"}'})
    assert resp.status == 200, await resp.text()
    [rec] = await logged(gateway_services)
    assert len(rec.id) == 26 and rec.id.isalnum()
    assert rec.trace_id == "trace-fox-1"
    assert before - 1 <= rec.time <= time.time()
    assert rec.key == "alice"
    assert (rec.endpoint, rec.method, rec.path) == ("images.generations", "POST", GEN)
    assert (rec.provider, rec.model, rec.status) == ("fake", "fake-image", 200)
    assert rec.error_code is None and rec.error is None
    assert rec.ms >= rec.upstream_ms > 0 and rec.overhead_ms >= 0
    assert abs(rec.ms - rec.upstream_ms - rec.overhead_ms) < 0.05
    assert rec.bytes_in == len(msgspec.json.encode(body)) and rec.bytes_out == int(resp.headers["Content-Length"])
    assert rec.attempts == [{"target": "config", "provider": "fake", "model": "fake-image", "attempt": 0, "status": 200,
                             "ms": rec.attempts[0]["ms"], "start_ms": rec.attempts[0]["start_ms"]}]
    assert rec.cache == "DISABLED"
    assert rec.metadata == {"user": "u-42", "team": "art"}
    assert rec.params == body
    assert rec.usage is None
    [line] = log_capture.events("request.finished")  # the cost is the log line's (None without prices)
    assert (rec.cost, rec.cost_exact) == (line.get("cost"), line.get("cost_exact", False))
    assert [(i.content_type, i.width, i.height, i.bytes) for i in rec.images] == [("image/png", 1, 1, len(PNG_1X1))]
    assert rec.headers["x-portkey-provider"] == "fake" and rec.headers["content-type"] == "application/json"
    assert not {"authorization", "x-portkey-api-key", "x-portkey-metadata"} & set(rec.headers)


async def test_the_records_timings_are_the_log_lines(gateway_client, gateway_services, log_capture):  # noqa: ANN001
    for _ in range(3):
        assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=H)).status == 200
    records = {r.trace_id: r for r in await logged(gateway_services, 3)}
    lines = log_capture.events("request.finished")
    assert len(lines) == 3
    for line in lines:
        record = records[line["trace_id"]]
        assert (record.ms, record.upstream_ms, record.overhead_ms) == (
            line["ms"], line["upstream_ms"], line["overhead_ms"])


async def test_a_failed_request_records_its_error_code_attempts_and_usage(gateway_client, gateway_services,
                                                                         fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", GEN, Reply(400, json={"error": {"message": "Invalid 'n'", "type": "invalid_request_error",
                                                             "code": "invalid_value", "param": "n"}}),
                     Reply(json={"created": 1, "data": [{"b64_json": "aGk="}],
                                 "usage": {"input_tokens": 9, "output_tokens": 4000, "total_tokens": 4009}}))
    await gateway_client.post(GEN, json={"prompt": "a"}, headers=H)
    await gateway_client.post(GEN, json={"prompt": "b"}, headers=H)
    ok, failed = await logged(gateway_services, 2)
    assert failed.status == 400 and failed.error_code == "invalid_value" and "Invalid 'n'" in (failed.error or "")
    assert failed.attempts[0]["status"] == 400 and failed.attempts[0]["error"] == "invalid_value"
    assert ok.status == 200 and ok.error_code is None
    assert ok.usage == {"input_tokens": 9, "output_tokens": 4000, "total_tokens": 4009}
    assert ok.images == []  # "aGk=" is no image: nothing kept


async def test_a_request_refused_before_routing_is_recorded_too(gateway_client, gateway_services):  # noqa: ANN001
    resp = await gateway_client.post(GEN, json={"prompt": ""}, headers=H)
    assert resp.status == 400
    [rec] = await logged(gateway_services)
    assert (rec.status, rec.error_code, rec.attempts) == (400, "missing_required_parameter", [])


async def test_trace_ids_the_gateway_makes_sort_as_they_were_made_and_find_their_record(gateway_client,
                                                                                        gateway_services):  # noqa: ANN001
    made = []
    for _ in range(3):
        resp = await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=H)
        assert resp.status == 200
        made.append(resp.headers["x-portkey-trace-id"])
        await asyncio.sleep(0.002)  # a later millisecond
    assert made == sorted(made) and len(set(made)) == 3
    assert all(len(t) == 32 and int(t, 16) for t in made)
    assert abs(int(made[0][:12], 16) / 1000 - time.time()) < 60  # milliseconds first
    await logged(gateway_services, 3)
    [found] = (await api(gateway_client, f"/v1/logs?trace_id={made[1]}"))["data"]
    assert found["trace_id"] == made[1]


def test_record_ids_have_a_ulids_layout_and_sort_by_their_millisecond():
    crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

    def ulid(when: float, random_bits: int) -> str:  # the layout, digit by digit
        value = (int(when * 1000) << 80) | random_bits
        return "".join(crockford[(value >> 5 * i) & 31] for i in range(25, -1, -1))

    rng = random.Random(7)
    for when in [0.0, 1.0, time.time(), 2**48 / 1000 - 0.001] + [rng.random() * 4e9 for _ in range(200)]:
        state = random.getstate()
        made = new_id(when)
        random.setstate(state)  # the same 80 random bits, drawn as new_id draws them
        bits = 0
        for _ in range(8):
            bits = bits << 10 | random.getrandbits(10)
        assert made == ulid(when, bits)
        assert id_floor(when) == ulid(when, 0) <= made
    first, second = new_id(1_800_000_000.0), new_id(1_800_000_000.001)
    assert first < second and first[:10] != second[:10] and new_id(1_800_000_000.0)[:10] == first[:10]


async def test_a_passthrough_request_becomes_a_record(gateway_client, gateway_services, fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/native/generate", Reply(json={"id": "job-1"}, headers={"x-request-id": "r1"}))
    resp = await gateway_client.post("/v1/native/generate?key=QUERYSECRET123456789", json={"prompt": "a fox"},
                                     headers={**H, "x-portkey-metadata": '{"user": "u-1"}'})
    assert resp.status == 200, await resp.text()
    [rec] = await logged(gateway_services)
    assert (rec.endpoint, rec.method, rec.path, rec.provider, rec.status) == (
        "proxy", "POST", "/v1/native/generate", "fake", 200)
    assert rec.bytes_in > 0 and rec.bytes_out == len(b'{"id":"job-1"}')
    assert rec.attempts[0]["status"] == 200 and rec.metadata == {"user": "u-1"}
    # A body relayed as it arrives is not kept; the query string never is.
    assert rec.params == {} and "QUERYSECRET" not in msgspec.json.encode(rec).decode()


async def test_a_passthrough_body_read_whole_has_its_fields_logged_safely(gateway_client, gateway_services,
                                                                         fake_upstream):  # noqa: ANN001
    fake_upstream.on("POST", "/v1/native/generate", Reply(json={"id": "job-2"}))
    config = msgspec.json.encode({"provider": "fake", "api_key": "sk-inline-0123456789abcdef",
                                  "retry": {"attempts": 1}}).decode()
    image = "A" * 4000
    resp = await gateway_client.post("/v1/native/generate", json={"prompt": "a fox", "image": image,
                                                                  "api_key": "sk-body-0123456789abcdef"},
                                     headers={"x-portkey-config": config})
    assert resp.status == 200, await resp.text()
    [rec] = await logged(gateway_services)
    assert rec.params["prompt"] == "a fox" and rec.params["api_key"] == "[redacted]"
    assert rec.params["image"] == {"omitted": "base64", "bytes": 3000,
                                   "sha256": hashlib.sha256(b"\x00" * 3000).hexdigest()}
    assert rec.headers["x-portkey-config"].startswith("a value of ")  # an inline config: by fingerprint


async def test_an_edit_records_its_files_by_size_and_hash(gateway_client, gateway_services):  # noqa: ANN001
    resp = await gateway_client.post(EDITS, data=edit_form(PNG_1X1, PNG_1X1, prompt="add a hat", n="2"), headers=H)
    assert resp.status == 200, await resp.text()
    [rec] = await logged(gateway_services)
    file = {"omitted": "file", "bytes": len(PNG_1X1), "sha256": hashlib.sha256(PNG_1X1).hexdigest(),
            "content_type": "image/png"}
    assert rec.endpoint == "images.edits"
    assert rec.params == {"prompt": "add a hat", "n": 2, "image[]": [file, file]}
    assert len(rec.images) == 2


def test_base64_and_data_uris_in_parameters_become_size_and_hash():
    data = bytes(range(256)) * 8
    b64 = __import__("base64").b64encode(data).decode()
    out = safe_params({"prompt": "p " * 300, "image": f"data:image/png;base64,{b64}", "nested": {"mask": b64},
                       "refs": [b64, "short"], "password": "hunter22", "n": 1, "flag": None})
    digest = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert out == {"prompt": "p " * 300, "image": {"omitted": "base64", **digest, "content_type": "image/png"},
                   "nested": {"mask": {"omitted": "base64", **digest}},
                   "refs": [{"omitted": "base64", **digest}, "short"], "password": "[redacted]", "n": 1, "flag": None}
    long = "word " * 20000
    assert safe_params({"prompt": long})["prompt"].endswith("more characters]")


# -- images ------------------------------------------------------------------------------


async def fetch(client, url: str) -> tuple[int, bytes, str]:  # noqa: ANN001
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.read(), resp.headers.get("Content-Type", "")


async def test_an_image_stays_viewable_after_the_providers_url_is_gone(gateway_settings, gateway_client,
                                                                       gateway_services, fake_upstream):  # noqa: ANN001
    image = png(40, 30, noise=False)
    fake_provider.install(fake_upstream, image=image)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"},
                                     headers={**H, "x-portkey-provider": "fake-expiring"})
    assert resp.status == 200, await resp.text()
    answered = (await resp.json())["data"][0]["url"]
    [rec] = await logged(gateway_services)
    # The provider's URL is gone: the log's copy does not need it.
    fake_upstream.on("GET", "/v1/files/image.png", Reply(404, json={"error": "expired"}))
    listed = (await api(gateway_client, "/v1/logs"))["data"][0]
    [shown] = listed["images"]
    assert (shown["width"], shown["height"], shown["bytes"], shown["content_type"]) == (40, 30, len(image), "image/png")
    assert shown["thumbnail_id"] is None and shown["thumbnail_url"] is None
    assert await fetch(gateway_client, shown["url"]) == (200, image, "image/png")
    # Kept for the log's retention (30 days), not the answer's image TTL (a day): stored again.
    assert shown["expires"] >= time.time() + 29 * 86400
    assert rec.images[0].image_id not in answered
    detail = await api(gateway_client, f"/v1/logs/{rec.id}")
    assert detail["images"][0]["image_id"] == shown["image_id"]


async def test_a_large_image_gets_a_thumbnail(gateway_client, gateway_services, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream, image=BIG)
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers=H)
    assert resp.status == 200
    await logged(gateway_services)
    [shown] = (await api(gateway_client, "/v1/logs"))["data"][0]["images"]
    assert len(BIG) > 64 * 1024 and (shown["width"], shown["height"], shown["bytes"]) == (600, 300, len(BIG))
    assert await fetch(gateway_client, shown["url"]) == (200, BIG, "image/png")
    status, thumb, ctype = await fetch(gateway_client, shown["thumbnail_url"])
    assert status == 200 and ctype == "image/jpeg" and len(thumb) < len(BIG) / 4
    assert Image.open(io.BytesIO(thumb)).size == (256, 128)


async def test_a_cache_hit_records_the_same_images_without_storing_them_again(gateway_client,
                                                                              gateway_services):  # noqa: ANN001
    config = msgspec.json.encode({"provider": "fake", "api_key": "sk-x", "cache": {"mode": "simple"}}).decode()
    for _ in range(2):
        resp = await gateway_client.post(GEN, json={"prompt": "cached fox", "response_format": "b64_json"},
                                         headers={"x-portkey-config": config})
        assert resp.status == 200
        await asyncio.sleep(0.1)
    hit, miss = await logged(gateway_services, 2)
    assert (miss.cache, hit.cache) == ("MISS", "HIT")
    assert hit.images and [i.image_id for i in hit.images] == [i.image_id for i in miss.images]


async def test_a_provider_url_handed_on_as_it_is_is_referred_to_not_kept(gateway_client, gateway_services):  # noqa: ANN001
    """A provider's own URL handed on (its URLs do not expire soon: it declares no
    ``result_urls_expire``) is not fetched for the log; the record refers to it, and the detail
    page links to it."""
    resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"}, headers=H)
    url = (await resp.json())["data"][0]["url"]
    assert url.endswith("/v1/files/image.png")
    [rec] = await logged(gateway_services)
    assert rec.status == 200 and rec.images == [] and rec.provider_urls == [url]
    got = await api(gateway_client, f"/v1/logs/{rec.id}")
    assert got["provider_urls"] == [url]
    html = str(detail_body(rec, lambda image_id: f"/files/{image_id}"))
    assert f'<a href="{url}" rel="noreferrer noopener" target="_blank">' in html


#: Five different images of about 24 KB each (noise does not compress), each larger than the one before.
BOUNDED = [png(90 + i, 90) for i in range(5)]


@pytest.fixture
def bounded(gateway_settings):  # noqa: ANN001, ANN201
    """``images.max_bytes`` with room for the two newest images only, swept often."""
    gateway_settings["images"].update(max_bytes=len(BOUNDED[-1]) + len(BOUNDED[-2]), sweep_interval=0.05)
    return gateway_settings


async def test_the_logs_images_are_held_to_the_image_stores_size_bound(bounded, gateway_client, gateway_services,
                                                                      fake_upstream, tmp_path):  # noqa: ANN001
    """Images kept for the log live in the image store under its size bound (``images.max_bytes``):
    logging more image bytes than it allows, the oldest images go (the store's rule: oldest first,
    until the rest fit), and the newest stay viewable from their records."""
    assert sorted(BOUNDED, key=len) == BOUNDED and sum(map(len, BOUNDED)) > 2 * bounded["images"]["max_bytes"]
    for image in BOUNDED:
        fake_provider.install(fake_upstream, image=image)
        resp = await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers=H)
        assert resp.status == 200
        await logged(gateway_services, BOUNDED.index(image) + 1)
        await asyncio.sleep(0.02)  # the sweep goes by the files' modification times: one image at a time
    directory = tmp_path / "images"

    def kept() -> dict[str, int]:
        return {p.stem: (directory / p.stem).stat().st_size for p in directory.glob("*.json")}

    deadline = time.monotonic() + 5
    while sum(kept().values()) > bounded["images"]["max_bytes"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    listed = (await api(gateway_client, "/v1/logs"))["data"]  # newest first
    assert [len(r["images"]) for r in listed] == [1] * 5
    assert [r["images"][0]["bytes"] for r in listed] == [len(i) for i in reversed(BOUNDED)]
    # The two newest are what the store keeps, within the bound; the three oldest went.
    assert kept() == {r["images"][0]["image_id"]: r["images"][0]["bytes"] for r in listed[:2]}
    for i, (shown, image) in enumerate(zip(listed, reversed(BOUNDED), strict=True)):
        status, body, _ = await fetch(gateway_client, shown["images"][0]["url"])
        if i < 2:
            assert (status, body) == (200, image)
        else:
            assert status == 404, i


@pytest.mark.parametrize("log_settings", [{"images": False}])
async def test_images_can_be_turned_off_for_the_gateway(gateway_client, gateway_services, tmp_path):  # noqa: ANN001
    await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"}, headers=H)
    [rec] = await logged(gateway_services)
    assert rec.status == 200 and rec.images == []
    assert not list((tmp_path / "images").glob("*.json"))  # nothing stored for the log


@pytest.mark.parametrize("log_settings", [{"no_image_keys": ["alice"]}])
async def test_images_can_be_turned_off_per_key(keyed, gateway_client, gateway_services):  # noqa: ANN001
    for key in (ALICE_KEY, BOB_KEY):
        await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "b64_json"},
                                  headers={**H, "x-portkey-api-key": key})
    bob, alice = await logged(gateway_services, 2)
    assert (alice.key, alice.images) == ("alice", [])
    assert bob.key == "bob" and len(bob.images) == 1
    # Nor are a provider's URLs recorded for that key.
    for key in (ALICE_KEY, BOB_KEY):
        await gateway_client.post(GEN, json={"prompt": "a fox", "response_format": "url"},
                                  headers={**H, "x-portkey-api-key": key})
    bob, alice = (await logged(gateway_services, 4))[:2]
    assert (alice.key, alice.provider_urls) == ("alice", [])
    assert bob.key == "bob" and len(bob.provider_urls) == 1


# -- the API -------------------------------------------------------------------------------

T0 = 1_750_000_000.0


def rec(i: int, **fields: Any) -> LogRecord:
    """A record that arrived at ``T0 + i`` (or at ``time``), its id made for that time."""
    when = fields.get("time", T0 + i)
    base: dict[str, Any] = dict(
        id=new_id(when), trace_id=f"trace-{i}", time=when, key=None, endpoint="images.generations",
        method="POST", path=GEN, provider="fake", model="fake-image", status=200, error_code=None, error=None,
        ms=100.0 + i, upstream_ms=90.0, overhead_ms=10.0 + i, bytes_in=20, bytes_out=100)
    base.update(fields)
    return LogRecord(**base)


async def test_filters(gateway_client, gateway_services):  # noqa: ANN001
    store = gateway_services.log_store
    await store.write([
        rec(0, provider="openai", model="gpt-image-1", key="alice", metadata={"user": "u1"}),
        rec(1, status=429, error_code="rate_limit_exceeded", key="bob", metadata={"user": "u2", "team": "a"}),
        rec(2, status=502, trace_id="shared", metadata={"user": "u1", "team": "a"}),
        rec(3, status=400, trace_id="shared", provider="openai"),
        rec(4, model="fake-hd", key="alice"),
    ])

    async def ids(query: str) -> list[str]:
        return [r["trace_id"] for r in (await api(gateway_client, "/v1/logs" + query))["data"]]

    assert await ids("") == ["trace-4", "shared", "shared", "trace-1", "trace-0"]
    assert await ids("?provider=openai") == ["shared", "trace-0"]
    assert await ids("?model=fake-hd") == ["trace-4"]
    assert await ids("?status=4xx") == ["shared", "trace-1"]
    assert await ids("?status=502") == ["shared"]
    assert await ids("?status=2XX") == ["trace-4", "trace-0"]
    assert await ids("?key=alice") == ["trace-4", "trace-0"]
    assert await ids("?trace_id=shared") == ["shared", "shared"]
    assert await ids("?metadata.user=u1") == ["shared", "trace-0"]
    assert await ids("?metadata.user=u1&metadata.team=a") == ["shared"]
    assert await ids("?metadata.team=b") == []
    assert await ids(f"?since={T0 + 1}&until={T0 + 3}") == ["shared", "trace-1"]
    assert await ids("?since=2025-06-15T15:06:42Z") == ["trace-4", "shared", "shared"]  # T0 + 2 s, in UTC
    assert await ids("?since=2025-06-15T17:06:41%2B02:00&status=5xx") == ["shared"]
    assert await ids("?provider=fake&key=alice&model=fake-image") == []


@pytest.mark.parametrize(("query", "param"), [
    ("?status=abc", "status"), ("?status=6xx", "status"), ("?limit=0", "limit"), ("?limit=201", "limit"),
    ("?limit=ten", "limit"), ("?since=yesterday", "since"), ("?cursor=nonsense", "cursor"),
    ("?provder=fake", "provder"), ("?metadata.=x", "metadata."),
])
async def test_a_bad_query_is_a_400_naming_the_parameter(gateway_client, query, param):  # noqa: ANN001
    err = (await api(gateway_client, "/v1/logs" + query, 400))["error"]
    assert (err["param"], err["code"], err["type"]) == (param, "invalid_log_query", "invalid_request_error")
    if param == "provder":
        assert "did you mean 'provider'" in err["message"]


async def test_cursor_pagination_walks_every_record_once_newest_first(gateway_client, gateway_services):  # noqa: ANN001
    # Some records share a time: the cursor orders by time, then id.
    records = [rec(i // 3, trace_id=f"r{i}") for i in range(125)]
    await gateway_services.log_store.write(records)
    seen, cursor, pages = [], None, 0
    while True:
        page = await api(gateway_client, "/v1/logs?limit=50" + (f"&cursor={cursor}" if cursor else ""))
        pages += 1
        seen.extend((r["time"], r["id"]) for r in page["data"])
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 125 == len(set(seen))
    assert seen == sorted(((r.time, r.id) for r in records), reverse=True)
    # Filters hold across pages.
    first = await api(gateway_client, f"/v1/logs?limit=2&since={T0 + 40}")
    rest = await api(gateway_client, f"/v1/logs?limit=200&since={T0 + 40}&cursor={first['next_cursor']}")
    assert len(first["data"]) + len(rest["data"]) == 5 and rest["next_cursor"] is None


async def test_one_record_by_id(gateway_client, gateway_services):  # noqa: ANN001
    await gateway_services.log_store.write([rec(1, params={"prompt": "x"})])
    [listed] = (await api(gateway_client, "/v1/logs"))["data"]
    assert await api(gateway_client, f"/v1/logs/{listed['id']}") == listed
    err = (await api(gateway_client, "/v1/logs/01NOSUCHRECORD000000000000", 404))["error"]
    assert err["code"] == "log_not_found"


@pytest.mark.parametrize("path", ["/v1/logs", "/v1/logs/01ABC"])
async def test_the_api_needs_the_admin_key(gateway_client, path):  # noqa: ANN001
    for headers in ({}, {"Authorization": "Bearer wrong-admin-key-0123456789"}, {"x-portkey-api-key": "nope"},
                    {"Authorization": f"Basic {ADMIN}"}):
        resp = await gateway_client.get(path, headers=headers)
        assert resp.status == 401, await resp.text()
        assert (await resp.json())["error"]["code"] == "invalid_admin_key"
    resp = await gateway_client.get("/v1/logs", headers={"x-portkey-api-key": ADMIN, "Authorization": "Bearer sk-x"})
    assert resp.status == 200


@pytest.mark.parametrize("admin_settings", [{"local_key": False}])
async def test_without_an_admin_key_the_api_is_off(gateway_client):  # noqa: ANN001
    resp = await gateway_client.get("/v1/logs", headers=AH)
    assert resp.status == 403
    err = (await resp.json())["error"]
    assert err["code"] == "admin_key_not_set" and "[admin] key_env" in err["message"]


@pytest.mark.parametrize("log_settings", [{"enabled": False}])
async def test_with_the_log_off_nothing_is_written_and_the_api_says_so(gateway_client, gateway_services,
                                                                       data_dir):  # noqa: ANN001
    await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=H)
    assert gateway_services.request_log is None and gateway_services.log_store is None
    err = (await api(gateway_client, "/v1/logs", 404))["error"]
    assert err["code"] == "request_log_off"
    assert not data_dir.exists()


def test_admin_key_settings_are_checked():
    with pytest.raises(StartupError, match="at least 16 characters"):
        create_app({"admin": {"key": "short"}}, load_entrypoints=False)
    with pytest.raises(StartupError, match="GW_TEST_UNSET_ADMIN is not set"):
        create_app({"admin": {"key_env": "GW_TEST_UNSET_ADMIN"}}, load_entrypoints=False)
    with pytest.raises(StartupError, match="set one of key_env, key_file, key"):
        create_app({"admin": {"key": ADMIN, "key_env": "X"}}, load_entrypoints=False)
    with pytest.raises(StartupError, match=r"'sqlit' is not installed \(did you mean 'sqlite'\?\)"):
        create_app({"request_log": {"store": "sqlit"}}, load_entrypoints=False)


def test_query_parsing():
    q = parse_query({"since": "1750000000", "until": "2025-06-15T16:00:00", "metadata.user": "u", "limit": "7"})
    assert (q.since, q.until, q.metadata, q.limit) == (1750000000.0, 1750003200.0, {"user": "u"}, 7)
    with pytest.raises(InvalidQuery):
        LogQuery(status="20x").check()


# -- retention, migrations -----------------------------------------------------------------


async def test_retention_by_age(tmp_path):  # noqa: ANN001
    store = SQLiteLogStore(str(tmp_path / "r.sqlite3"), retention_days=30)
    await store.start()
    try:
        now = time.time()
        await store.write([rec(0, time=now - 31 * 86400, metadata={"u": "1"}), rec(1, time=now - 29 * 86400),
                           rec(2, time=now)])
        assert await store.prune(now) == 1
        page, _ = await store.query(LogQuery())
        assert [r.trace_id for r in page] == ["trace-2", "trace-1"]
        assert await store.query(LogQuery(metadata={"u": "1"})) == ([], None)
        assert await store.prune(now) == 0
    finally:
        await store.close()


async def test_retention_by_size_keeps_the_newest_within_the_bound(tmp_path):  # noqa: ANN001
    path = tmp_path / "r.sqlite3"
    store = SQLiteLogStore(str(path), retention_days=30, max_bytes=300_000)
    await store.start()
    try:
        now = time.time()
        for batch in range(10):
            await store.write([rec(batch * 200 + i, time=now - 5000 + batch * 200 + i,
                                   params={"prompt": f"{batch}-{i} " + "x" * 900}) for i in range(200)])
        assert await store.used_bytes() > 2_000_000
        removed = await store.prune(now)
        assert 1500 < removed < 2000
        assert await store.used_bytes() <= 300_000
        assert os.path.getsize(path) <= 400_000  # the freed pages went back to the file system
        page, _ = await store.query(LogQuery(limit=1))
        assert page[0].time == now - 5000 + 1999  # the newest stayed
    finally:
        await store.close()


async def test_migrations_run_once_and_again_do_nothing(tmp_path):  # noqa: ANN001
    path = str(tmp_path / "m.sqlite3")
    stores = [SQLiteLogStore(path, 30) for _ in range(3)]
    await asyncio.gather(*(s.start() for s in stores))  # three processes starting at once, say
    try:
        assert [await s.migrate() for s in stores] == [[], [], []]
        await stores[0].write([rec(1)])
        await stores[1].start()  # a restart
        assert len((await stores[2].query(LogQuery()))[0]) == 1
    finally:
        for s in stores:
            await s.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,), (3,)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_file_of_the_first_schema_is_upgraded_and_its_filters_use_the_partial_indexes(tmp_path):  # noqa: ANN001
    path = str(tmp_path / "v1.sqlite3")
    with sqlite3.connect(path, isolation_level=None) as db:  # a file an earlier gateway made
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for statement in MIGRATIONS[0][1]:
            db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (1)")
    old = [rec(0, key="team-a"), rec(1, status=502), rec(2)]
    store = SQLiteLogStore(path, 30)
    await store.start()
    try:
        await store.write(old[:2])  # the writer binds None and bytes through identity adapters
        assert await store.migrate() == []
        await store.write(old[2:])
        for query, want in [(LogQuery(key="team-a"), [0]), (LogQuery(status="5xx"), [1]), (LogQuery(status="502"), [1]),
                            (LogQuery(status="2xx"), [2, 0]), (LogQuery(status="200"), [2, 0]), (LogQuery(), [2, 1, 0])]:
            page, _ = await store.query(query)
            assert [r.trace_id for r in page] == [f"trace-{i}" for i in want], query
            assert page[0].key == old[want[0]].key and isinstance(page[0].ms, float)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,), (3,)]
        partial = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE name IN ('requests_status', 'requests_key')"))
        assert "WHERE status NOT BETWEEN 200 AND 299" in partial["requests_status"]
        assert "WHERE key IS NOT NULL" in partial["requests_key"]
        for query, index in [(LogQuery(status="5xx"), "requests_status"), (LogQuery(status="404"), "requests_status"),
                             (LogQuery(key="team-a"), "requests_key")]:
            where, args = sqlite_where(query)
            plan = db.execute(f"EXPLAIN QUERY PLAN SELECT record FROM requests{where} ORDER BY id DESC LIMIT 51",
                              args).fetchall()
            assert any(index in row[-1] for row in plan), (query, plan)
        # Successful keyless rows are in neither index.
        assert db.execute("SELECT count(*) FROM requests INDEXED BY requests_status WHERE status NOT BETWEEN 200 AND 299"
                          ).fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM requests INDEXED BY requests_key WHERE key IS NOT NULL").fetchone() == (1,)


async def test_stats_per_bucket_and_provider(tmp_path):  # noqa: ANN001
    store = SQLiteLogStore(str(tmp_path / "s.sqlite3"), 30)
    await store.start()
    try:
        await store.write([rec(0, ms=10.0, cost=0.04, cost_saved=0.03, cache="HIT"),
                           rec(1, ms=30.0, status=500, cache="MISS"), rec(2, ms=20.0, status=404),
                           rec(3, provider="openai", ms=5.0), rec(70, ms=1.0)])
        rows = await store.stats(T0, T0 + 120, 60)
    finally:
        await store.close()
    b0 = int(T0 // 60) * 60
    assert rows == [
        {"bucket": b0, "provider": "fake", "requests": 3, "errors_4xx": 1, "errors_5xx": 1, "p50_ms": 20.0,
         "p95_ms": 30.0, "cost": 0.04, "cost_saved": 0.03, "cache_hits": 1, "cache_lookups": 2},
        {"bucket": b0, "provider": "openai", "requests": 1, "errors_4xx": 0, "errors_5xx": 0, "p50_ms": 5.0,
         "p95_ms": 5.0, "cost": 0.0, "cost_saved": 0.0, "cache_hits": 0, "cache_lookups": 0},
        {"bucket": b0 + 60, "provider": "fake", "requests": 1, "errors_4xx": 0, "errors_5xx": 0, "p50_ms": 1.0,
         "p95_ms": 1.0, "cost": 0.0, "cost_saved": 0.0, "cache_hits": 0, "cache_lookups": 0},
    ]
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0 and percentile([], 0.5) is None
    assert aggregate([], 60) == []


# -- a store that is down or slow ----------------------------------------------------------


class FlakyStore(SQLiteLogStore):
    """The SQLite store with a switch: down (every write fails), slow (every write waits) or held
    (every write waits until ``gate`` is set; ``holding`` counts the writes waiting)."""

    name = "flaky"
    down = False
    slow = 0.0
    gate: asyncio.Event | None = None
    holding = 0

    async def write(self, records: list[LogRecord]) -> None:
        if self.slow:
            await asyncio.sleep(self.slow)
        if self.gate is not None:
            self.holding += 1
            try:
                await self.gate.wait()
            finally:
                self.holding -= 1
        if self.down:
            raise ConnectionRefusedError("the store is down")
        await super().write(records)


async def until(condition, timeout: float = 5.0) -> None:  # noqa: ANN001
    """Wait for ``condition()`` to hold (the writer works in a task of its own)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def log_metrics(client) -> tuple[float, float]:  # noqa: ANN001
    """``gateway_request_log_queue`` and ``gateway_request_log_dropped_total`` as ``GET /metrics`` says."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    found = {s.name: s.value for family in text_string_to_metric_families(await resp.text())
             for s in family.samples}
    return found["gateway_request_log_queue"], found["gateway_request_log_dropped_total"]


@pytest.mark.parametrize("log_settings", [{"store": "flaky"}])
async def test_a_store_that_is_down_loses_records_not_requests(gateway_plugins, gateway_client, gateway_services,
                                                               log_capture):  # noqa: ANN001
    store, writer = gateway_services.log_store, gateway_services.request_log
    store.down = True
    for i in range(6):
        resp = await gateway_client.post(GEN, json={"prompt": f"fox {i}"}, headers=H)
        assert resp.status == 200
    deadline = time.monotonic() + 5
    while writer.dropped < 6 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert writer.dropped == 6
    [down] = log_capture.events("request_log.unavailable")
    assert down["store"] == "flaky" and "ConnectionRefusedError" in down["reason"] and down["level"] == "warning"
    store.down = False
    await gateway_client.post(GEN, json={"prompt": "back"}, headers=H)
    [back] = await logged(gateway_services)
    assert back.params["prompt"] == "back"
    [recovered] = log_capture.events("request_log.recovered")
    assert recovered["dropped"] == 6
    assert len(log_capture.events("request_log.unavailable")) == 1


@pytest.mark.parametrize("log_settings", [{"store": "flaky", "write_timeout": 0.1, "queue_size": 3,
                                           "batch_size": 1}])
async def test_a_slow_store_never_slows_a_request(gateway_plugins, gateway_client, gateway_services,
                                                  log_capture):  # noqa: ANN001
    gateway_services.log_store.slow = 5.0
    started = time.monotonic()
    answers = await asyncio.gather(*(gateway_client.post(GEN, json={"prompt": f"fox {i}"}, headers=H)
                                     for i in range(20)))
    assert [r.status for r in answers] == [200] * 20
    assert time.monotonic() - started < 3.0
    writer = gateway_services.request_log
    assert writer.dropped >= 16 and writer.depth <= 3
    assert len(log_capture.events("request_log.unavailable")) == 1


async def test_the_queue_and_drops_are_metrics(gateway_client):  # noqa: ANN001
    text = await (await gateway_client.get("/metrics")).text()
    assert "gateway_request_log_queue " in text and "gateway_request_log_dropped_total 0.0" in text


@pytest.mark.parametrize("log_settings", [{"store": "flaky", "flush_interval": 0.01}])
async def test_drops_are_counted_on_metrics_and_logged_once_per_outage(gateway_plugins, gateway_client,
                                                                       gateway_services, log_capture):  # noqa: ANN001
    """Two outages of the store: ``/metrics`` counts every record dropped in each, the queue gauge
    drains to 0, and each outage logs ``request_log.unavailable`` once, however many writes fail,
    and ``request_log.recovered`` once with that outage's drops."""
    store, writer = gateway_services.log_store, gateway_services.request_log

    async def outage(requests: int) -> None:
        store.down = True
        dropped = writer.dropped
        for i in range(requests):
            resp = await gateway_client.post(GEN, json={"prompt": f"lost {i}"}, headers=H)
            assert resp.status == 200
            # One at a time: the writer fails (and backs off) once per record or batch.
            await until(lambda d=dropped + i + 1: writer.dropped == d)
        store.down = False
        recovered = len(log_capture.events("request_log.recovered"))
        assert (await gateway_client.post(GEN, json={"prompt": "back"}, headers=H)).status == 200
        await until(lambda: len(log_capture.events("request_log.recovered")) > recovered)

    assert await log_metrics(gateway_client) == (0.0, 0.0)
    await outage(3)
    assert await log_metrics(gateway_client) == (0.0, 3.0)
    assert len(log_capture.events("request_log.unavailable")) == 1
    await outage(2)
    assert await log_metrics(gateway_client) == (0.0, 5.0)
    down = log_capture.events("request_log.unavailable")
    assert len(down) == 2 and all("ConnectionRefusedError" in d["reason"] for d in down)
    assert [r["dropped"] for r in log_capture.events("request_log.recovered")] == [3, 2]
    # What was not dropped was written: the two records sent once the store was back.
    assert [r.params["prompt"] for r in await logged(gateway_services, 2)] == ["back", "back"]


@pytest.mark.parametrize("log_settings", [{"store": "flaky", "queue_size": 3, "batch_size": 1,
                                           "write_timeout": 30}])
async def test_a_slow_stores_queue_and_drops_show_on_metrics(gateway_plugins, gateway_client, gateway_services,
                                                             log_capture):  # noqa: ANN001
    """While a write hangs, ``gateway_request_log_queue`` is the number of records waiting (before any
    drop, too: a slow store is what an operator alerts on) and, once the queue is full, every record
    past it is dropped and counted in ``gateway_request_log_dropped_total``; when the store answers,
    the queue drains and the drops stay counted."""
    store, writer = gateway_services.log_store, gateway_services.request_log
    store.gate = asyncio.Event()

    async def send(n: int) -> None:
        for _ in range(n):
            assert (await gateway_client.post(GEN, json={"prompt": "a fox"}, headers=H)).status == 200

    await send(1)
    await until(lambda: store.holding == 1)  # the writer took the first record and waits on the store
    await send(2)
    await until(lambda: writer.depth == 2)  # (a record is queued as its request ends: maybe after the answer)
    # The gauge reads the depth every second, whatever the writer is doing.
    assert await metrics_become(gateway_client, (2.0, 0.0))
    await send(3)  # one more fills the queue (3); two are dropped
    await until(lambda: (writer.depth, writer.dropped) == (3, 2))
    assert await metrics_become(gateway_client, (3.0, 2.0))
    [down] = log_capture.events("request_log.unavailable")
    assert "the queue is full" in down["reason"]
    store.gate.set()
    await logged(gateway_services, 4)
    await until(lambda: bool(log_capture.events("request_log.recovered")))
    assert await log_metrics(gateway_client) == (0.0, 2.0)
    assert [r["dropped"] for r in log_capture.events("request_log.recovered")] == [2]
    assert len(log_capture.events("request_log.unavailable")) == 1


async def metrics_become(client, expected: tuple[float, float], within: float = 3.0) -> bool:  # noqa: ANN001
    """Whether ``log_metrics`` reads ``expected`` within ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while (got := await log_metrics(client)) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/metrics reads {got}, not {expected}")
        await asyncio.sleep(0.1)
    return True


def wal_commits(database: Path) -> int:
    """Transactions committed to an SQLite file's write-ahead log since the log last started over:
    its frames that end a commit (their header holds the file's size after the commit) and carry
    the log's current salts (older frames, left over from before a checkpoint, do not)."""
    try:
        wal = (database.parent / (database.name + "-wal")).read_bytes()
    except FileNotFoundError:
        return 0
    if len(wal) < 32:
        return 0
    page_size, salts = struct.unpack(">I", wal[8:12])[0], wal[16:24]
    commits = 0
    for offset in range(32, len(wal) - 24 - page_size + 1, 24 + page_size):
        if wal[offset + 8:offset + 16] != salts:
            break
        if struct.unpack(">I", wal[offset + 4:offset + 8])[0]:
            commits += 1
    return commits


@pytest.mark.parametrize("log_settings", [{"batch_size": 8, "flush_interval": 60}])
async def test_records_are_written_in_batches_of_one_transaction(gateway_client, gateway_services,
                                                                 data_dir):  # noqa: ANN001
    """The writer holds records until a batch is full (or ``flush_interval`` passes) and writes the
    batch in one insert: eight requests' records are eight rows of one SQLite transaction (one commit
    in the file's write-ahead log), not eight."""
    database, writer = data_dir / "requests.sqlite3", gateway_services.request_log
    before = wal_commits(database)
    assert before >= 1  # the migrations' commit: the count reads the file the store writes
    metadata = {"x-portkey-metadata": '{"user": "u-1"}'}  # a metadata row per record, too
    for i in range(7):
        resp = await gateway_client.post(GEN, json={"prompt": f"fox {i}"}, headers={**H, **metadata})
        assert resp.status == 200
    await asyncio.sleep(0.3)
    # Seven of a batch of eight, with a minute to fill it: nothing written yet.
    assert (writer.depth, writer.written) == (7, 0)
    assert (await gateway_services.log_store.query(LogQuery()))[0] == []
    assert wal_commits(database) == before
    resp = await gateway_client.post(GEN, json={"prompt": "fox 7"}, headers={**H, **metadata})
    assert resp.status == 200
    records = await logged(gateway_services, 8)
    assert sorted(r.params["prompt"] for r in records) == [f"fox {i}" for i in range(8)]
    assert (writer.depth, writer.written) == (0, 8)
    assert wal_commits(database) == before + 1
    with sqlite3.connect(database) as db:  # the rows are in the file, metadata and all
        assert db.execute("SELECT count(*) FROM request_metadata WHERE name = 'user'").fetchone() == (8,)


# -- nothing secret reaches the database ---------------------------------------------------

PROVIDER_KEY = "sk-proj-PLANTEDprovider7Yq2Lm9Xc4Vb8Nn"
GATEWAY_KEY = "gk-PLANTEDgateway-3Kd8Wq1Zr6Tt0Pp5"
STORED_KEY = "sk-PLANTEDstored-9Hs2Jd7Fk4Lq1Mz8"
QUERY_KEY = "PLANTEDcustomhostquery5Rt8Yu2Io6"
CONFIG_KEY = "sk-PLANTEDinlineconfig-4Gh7Jk1Lz3"
BODY_KEY = "sk-PLANTEDbodyfield-8Bn2Mq5Wx7Ce1"
PASS_QUERY_KEY = "PLANTEDpassthroughquery-6Vb9Nm3"
SECRETS = (PROVIDER_KEY, GATEWAY_KEY, STORED_KEY, QUERY_KEY, CONFIG_KEY, BODY_KEY, PASS_QUERY_KEY)


@pytest.fixture
def planted(gateway_settings):  # noqa: ANN001, ANN201
    gateway_settings["gateway_keys"] = {"ops-team": {"key": GATEWAY_KEY, "allow_custom_hosts": True}}
    gateway_settings["virtual_keys"] = {"fake-prod": {"provider": "fake", "api_key": STORED_KEY}}
    return gateway_settings


async def test_no_secret_reaches_the_database_file(planted, gateway_client, gateway_services, fake_upstream,
                                                   data_dir):  # noqa: ANN001
    gk = {"x-portkey-api-key": GATEWAY_KEY}
    own = {**gk, "x-portkey-provider": "fake", "Authorization": f"Bearer {PROVIDER_KEY}"}
    sent = [
        # The provider key in Authorization, the gateway key, a body field named like a key.
        (GEN, {"prompt": "a fox", "api_key": BODY_KEY, "response_format": "b64_json"}, own),
        # A virtual key: its stored key goes upstream (and the fake's error quotes it, below).
        (GEN, {"prompt": "a fox"}, {**gk, "x-portkey-virtual-key": "fake-prod"}),
        # A custom host with a key in its query.
        (GEN, {"prompt": "a fox"}, {**own, "x-portkey-custom-host": f"{fake_upstream.url}/v1?key={QUERY_KEY}"}),
        # An inline config carrying a key.
        (GEN, {"prompt": "a fox"}, {**gk, "x-portkey-config": msgspec.json.encode(
            {"provider": "fake", "api_key": CONFIG_KEY}).decode()}),
        # Passthrough with a key in the query and Authorization.
        (f"/v1/native/thing?key={PASS_QUERY_KEY}", {"prompt": "a fox"}, own),
        # A key pasted where a name goes.
        (GEN, {"prompt": "a fox"}, {**gk, "x-portkey-virtual-key": STORED_KEY}),
    ]
    fake_upstream.on("POST", "/v1/native/thing", Reply(json={"ok": True}))
    for path, body, headers in sent:
        await gateway_client.post(path, json=body, headers=headers)

    async def quote_the_key(request, rec):  # noqa: ANN001, ANN202
        return fake_provider.error(401, f"Incorrect API key provided: {rec.headers['Authorization']}")

    fake_upstream.on("POST", GEN, quote_the_key)
    await gateway_client.post(GEN, json={"prompt": "a fox"}, headers={**gk, "x-portkey-virtual-key": "fake-prod"})
    records = await logged(gateway_services, len(sent) + 1)
    assert {r.key for r in records} == {"ops-team"}
    assert any(r.status == 401 and "[redacted]" in (r.error or "") for r in records)
    # Every file of the database (the WAL holds the newest pages until a checkpoint).
    files = sorted(data_dir.glob("requests.sqlite3*"))
    assert Path(data_dir / "requests.sqlite3") in files
    raw = b"".join(f.read_bytes() for f in files)
    assert b"ops-team" in raw and b"fake-prod" in raw  # the records are there
    for secret in SECRETS:
        assert secret.encode() not in raw, f"{secret} is in the database"
        # Nor a good part of it (a prefix cut off, say).
        assert secret[-16:].encode() not in raw, f"the end of {secret} is in the database"
