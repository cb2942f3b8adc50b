"""The web UI without a browser: sessions and CSRF, escaping, the filters' mapping to a LogQuery,
and the pages through a real app (sign-in, redirects, headers, the log's records shown)."""
from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from gateway.app import create_app
from gateway.requestlog.record import LogImage, LogRecord, new_id
from gateway.requestlog.settings import AdminSettings
from gateway.requestlog.store import LogQuery, encode_cursor
from gateway.testing import fake_provider
from gateway.testing.browser import quadrants_png
from gateway.ui import charts, pages
from gateway.ui.filters import FilterError, Filters
from gateway.ui.html import Html, el, escape, render
from gateway.ui.session import LOGIN_COOKIE, SESSION_COOKIE, Sessions, derive_secret
from gateway.ui.views import admin_key_value, safe_next

NOW = 1_750_000_000.0
PNG = quadrants_png(40, 30)


def record(**changes) -> LogRecord:  # noqa: ANN003
    values = dict(id=new_id(NOW), trace_id="trace-1", time=NOW, key="team-a", endpoint="images.generations",
                  method="POST", path="/v1/images/generations", provider="fake", model="fake-image", status=200,
                  error_code=None, error=None, ms=1234.0, upstream_ms=1200.0, overhead_ms=3.5, bytes_in=120,
                  bytes_out=4000, attempts=[{"target": "config", "provider": "fake", "model": "fake-image",
                                             "attempt": 0, "status": 200, "ms": 1200.0}],
                  cache="MISS", metadata={"team": "growth"}, params={"prompt": "a red fox", "n": 1},
                  usage=None, cost=0.04, images=[LogImage(image_id="A" * 32, content_type="image/png", width=64,
                                                          height=48, bytes=1500)])
    values.update(changes)
    return LogRecord(**values)


def image_url(image_id: str) -> str:
    return f"/v1/images/files/{image_id}?expires=1&sig=s"


# -- sessions and CSRF ----------------------------------------------------------------------------------
def test_session_token_is_signed_and_expires():
    sessions = Sessions(derive_secret("an-admin-key-0123456789"), ttl=60)
    token = sessions.issue(now=NOW)
    assert sessions.valid(token, now=NOW + 59)
    assert not sessions.valid(token, now=NOW + 60)
    head, sig = token.rsplit(".", 1)
    assert not sessions.valid(f"{head}.{'A' * len(sig)}", now=NOW)
    # A longer life written into the token breaks its signature.
    version, expires, nonce = head.split(".")
    assert not sessions.valid(f"{version}.{int(expires) + 3600}.{nonce}.{sig}", now=NOW)
    assert not sessions.valid(None) and not sessions.valid("") and not sessions.valid("x" * 500)


def test_session_secret_is_derived_not_the_key():
    key = "an-admin-key-0123456789"
    secret = derive_secret(key)
    assert key.encode() not in secret and len(secret) == 32
    token = Sessions(secret, 60).issue()
    assert key not in token
    # Another key (a rotated one) signs other sessions; the same key in another process, the same.
    assert not Sessions(derive_secret("another-admin-key-98765"), 60).valid(token)
    assert Sessions(derive_secret(key), 60).valid(token)


def test_revoked_session_is_refused():
    sessions = Sessions(b"k" * 32, ttl=60)
    token, other = sessions.issue(), sessions.issue()
    sessions.revoke(token)
    assert not sessions.valid(token) and sessions.valid(other)


def test_csrf_token_belongs_to_its_session():
    sessions = Sessions(b"k" * 32, ttl=60)
    a, b = sessions.issue(), sessions.issue()
    assert sessions.csrf_ok(a, sessions.csrf(a))
    assert not sessions.csrf_ok(a, sessions.csrf(b))
    assert not sessions.csrf_ok(a, None) and not sessions.csrf_ok(a, "")
    assert not sessions.csrf_ok(None, sessions.csrf(a))
    sessions.revoke(a)
    assert not sessions.csrf_ok(a, sessions.csrf(a))


def test_login_form_token_is_double_submitted_and_signed():
    sessions = Sessions(b"k" * 32, ttl=60)
    token = sessions.login_token(now=NOW)
    assert sessions.login_ok(token, token, now=NOW)
    assert not sessions.login_ok(token, sessions.login_token(now=NOW), now=NOW)
    assert not sessions.login_ok(token, token, now=NOW + 7200)
    forged = "9999999999.abc.def"
    assert not sessions.login_ok(forged, forged, now=NOW)
    assert not Sessions(b"j" * 32, ttl=60).login_ok(token, token, now=NOW)


@pytest.mark.parametrize("given, expected", [
    ("/ui", "/ui"), ("/ui/requests/01ABC", "/ui/requests/01ABC"), ("/ui?status=5xx", "/ui?status=5xx"),
    ("/ui/dashboard?range=7d", "/ui/dashboard?range=7d"), ("https://evil.example/ui", "/ui"),
    ("//evil.example/ui", "/ui"), ("/ui//evil.example", "/ui"), ("/uix", "/ui"), ("/v1/logs", "/ui"),
    ("/ui/\\evil", "/ui"), (None, "/ui"), ("", "/ui"),
])
def test_safe_next(given, expected):
    assert safe_next(given) == expected


def test_admin_key_value_reads_each_source(tmp_path):
    path = tmp_path / "key"
    path.write_text("from-a-file-0123456789\n")
    assert admin_key_value(AdminSettings(key_env="K"), {"K": "from-env-0123456789"}) == "from-env-0123456789"
    assert admin_key_value(AdminSettings(key_file=str(path)), {}) == "from-a-file-0123456789"
    assert admin_key_value(AdminSettings(key="inline-0123456789"), {}) == "inline-0123456789"
    assert admin_key_value(AdminSettings(), {}) is None and admin_key_value(None, {}) is None


# -- escaping ---------------------------------------------------------------------------------------------
def test_escape_and_elements():
    assert escape('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert escape(Html("<b>")) == "<b>"
    assert el("td", {"title": '"><script>'}, "<i>") == '<td title="&quot;&gt;&lt;script&gt;">&lt;i&gt;</td>'
    assert el("img", {"src": "/x?a=1&b=2", "alt": None}) == '<img src="/x?a=1&amp;b=2">'
    assert el("option", {"value": "a", "selected": True}) == '<option value="a" selected></option>'


def test_template_values_are_escaped():
    out = render("message.html", heading="<h1>", text="<script>alert(1)</script>", kind="error",
                 link="/ui?a=1&b=2", link_text="x")
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert 'href="/ui?a=1&amp;b=2"' in out


def test_detail_page_escapes_everything_a_caller_sent():
    attack = '<script>alert("x")</script>'
    r = record(params={"prompt": attack, "style": attack, attack: 1}, metadata={attack: attack}, trace_id=attack,
               error=attack, error_code="content_policy_violation", status=400, model=attack, key=attack,
               attempts=[{"target": attack, "provider": "fake", "status": 400, "ms": 1.0, "error": attack}],
               usage={"note": attack})
    html = pages.page("Request", pages.detail_body(r, image_url), csrf="c")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    # The only script element is the UI's own file.
    assert html.count("<script") == 1 and '<script src="/ui/static/ui.js' in html


def test_list_page_escapes_and_links():
    r = record(provider='"><img src=x onerror=alert(1)>', model="<b>m</b>")
    html = pages.list_body([r], Filters(model="<b>m</b>"), "next<cursor>", image_url)
    assert "<img src=x" not in html and "<b>m</b>" not in html
    assert 'value="&lt;b&gt;m&lt;/b&gt;"' in html
    assert f'href="/ui/requests/{r.id}"' in html
    assert 'src="/v1/images/files/' + "A" * 32 + '?expires=1&amp;sig=s"' in html
    assert "cursor=next%3Ccursor%3E" in html


def test_detail_page_shows_what_the_record_holds():
    r = record(params={"prompt": "a red fox", "size": "512x512",
                       "image": {"omitted": "file", "bytes": 2048, "sha256": "ab" * 32}},
               usage={"total_tokens": 42}, cost=0.04, cost_exact=True,
               attempts=[{"target": "config.targets[0]", "provider": "a", "status": 503, "ms": 10.0,
                          "error": "overloaded"},
                         {"target": "config.targets[1]", "provider": "fake", "status": 200, "ms": 900.0}],
               images=[LogImage(image_id="B" * 32, thumbnail_id="C" * 32, content_type="image/webp", width=1024,
                                height=768, bytes=300_000)])
    html = pages.detail_body(r, image_url)
    assert '<pre class="prompt" id="prompt">a red fox</pre>' in html
    assert "(a file, 2.0 KB, sha256 abababababababab…, not kept)" in html
    assert "config.targets[0]" in html and "overloaded" in html and "config.targets[1]" in html
    assert "$0.0400 (exact, from usage)" in html and "&quot;total_tokens&quot;: 42" in html
    # Full size on the detail page (not the thumbnail), with its size and format.
    assert "B" * 32 in html and "C" * 32 not in html
    assert "1024×768 · WebP · 293.0 KB" in html
    assert "x-portkey-trace-id" in html and "team-a" in html


# -- filters -> LogQuery -----------------------------------------------------------------------------------
def test_filters_map_to_the_log_query():
    cursor = encode_cursor(record())
    f = Filters.from_query({"since": "1h", "until": "2025-06-15T16:00", "provider": "fake", "model": "fake-hd",
                            "status": "5XX", "key": "team-a", "trace_id": "t-1", "metadata": "team=growth, env=prod",
                            "metadata.user": "u1", "cursor": cursor, "ignored": "x"})
    q = f.to_query(NOW)
    assert q == LogQuery(since=NOW - 3600, until=datetime(2025, 6, 15, 16, tzinfo=UTC).timestamp(), provider="fake",
                         model="fake-hd", status="5xx", key="team-a", trace_id="t-1",
                         metadata={"team": "growth", "env": "prod", "user": "u1"}, cursor=cursor, limit=50)


def test_empty_filters_are_an_unfiltered_query():
    assert Filters.from_query({}).to_query(NOW) == LogQuery(limit=50)
    assert Filters.from_query({"provider": "  ", "status": ""}).to_query(NOW) == LogQuery(limit=50)


@pytest.mark.parametrize("value, expected", [
    ("15m", NOW - 900), ("7d", NOW - 7 * 86400), ("1750000000", 1750000000.0),
    ("2025-06-15T12:00:00Z", datetime(2025, 6, 15, 12, tzinfo=UTC).timestamp()),
    ("2025-06-15T14:00:00+02:00", datetime(2025, 6, 15, 12, tzinfo=UTC).timestamp()),
])
def test_since_forms(value, expected):
    assert Filters(since=value).to_query(NOW).since == expected


@pytest.mark.parametrize("query, param", [
    ({"since": "yesterday"}, "since"), ({"until": "1h"}, "until"), ({"status": "2x"}, "status"),
    ({"status": "600"}, "status"), ({"metadata": "novalue"}, "metadata"), ({"metadata": "a b=c"}, "metadata"),
    ({"since": "2025-06-15T12:00", "until": "2025-06-15T11:00"}, "until"), ({"model": "m" * 300}, "model"),
])
def test_bad_filters_name_the_filter(query, param):
    with pytest.raises(FilterError) as e:
        Filters.from_query(query).to_query(NOW)
    assert e.value.param == param


def test_filter_urls_keep_the_filters():
    f = Filters(provider="fake", status="4xx", cursor="c1")
    assert f.url(cursor="c2") == "/ui?provider=fake&status=4xx&cursor=c2"
    assert f.url(cursor="") == "/ui?provider=fake&status=4xx"
    assert Filters().url() == "/ui"


# -- the dashboard -----------------------------------------------------------------------------------------
def test_dashboard_draws_each_provider():
    rows = [{"bucket": 3600.0 * i, "provider": p, "requests": 3 + i, "errors_4xx": 1, "errors_5xx": 0,
             "p50_ms": 100.0 * i, "p95_ms": 200.0 * i, "cost": 0.5, "cache_hits": 1, "cache_lookups": 2}
            for i in range(3) for p in ("fake", "<openai>")]
    totals = [{**rows[0], "provider": "fake"}, {**rows[1], "provider": "<openai>"}]
    html = pages.dashboard_body(rows, totals, "24h", 0.0, 3 * 3600.0, 3600)
    assert html.count('<svg class="chart"') == 5
    assert "&lt;openai&gt;" in html and "<openai>" not in html
    assert "style=" not in html  # the CSP allows no inline style
    assert 'stroke-dasharray="5 3"' in html  # p95 dashed
    assert "50% of 2" in html


def test_chart_scale_and_gaps():
    assert [charts.nice_max(v) for v in (0, 0.3, 1, 7, 12, 99, 101)] == [1, 0.5, 1, 10, 20, 100, 200]
    svg = charts.line_chart("t", {"a": [(0, 1.0), (1, None), (2, 2.0), (3, 3.0)]}, 0, 4, str, {"a": "#000"})
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3


def test_a_cursor_not_handed_out_is_a_filter_error():
    with pytest.raises(FilterError) as e:
        Filters(cursor="not-a-cursor!").to_query(NOW)
    assert e.value.param == "cursor"


# -- through a real app ------------------------------------------------------------------------------------
ADMIN_KEY = "unit-test-admin-key-0123456789"
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def gateway_settings(fake_upstream, tmp_path) -> dict[str, Any]:  # noqa: ANN001
    return {"providers": {"fake": {"base_url": fake_upstream.url + "/v1"}}, "admin": {"key": ADMIN_KEY},
            "request_log": {"path": str(tmp_path / "requests.sqlite3"), "flush_interval": 0.02},
            "images": {"directory": str(tmp_path / "images")}}


@pytest.fixture
async def ui(aiohttp_client, gateway_server):  # noqa: ANN001, ANN201
    """A client that keeps no cookies by itself: each test says which it sends."""
    return await aiohttp_client(gateway_server, cookie_jar=aiohttp.DummyCookieJar())


async def signin(ui, key: str = ADMIN_KEY, **extra: str):  # noqa: ANN001, ANN201
    """POST the sign-in form as a browser would; the answer (not followed)."""
    form = await ui.get("/ui/login")
    login_cookie = form.cookies[LOGIN_COOKIE].value
    csrf = _CSRF.search(await form.text()).group(1)
    return await ui.post("/ui/login", data={"key": key, "csrf": csrf, "next": extra.pop("next", "/ui")},
                         headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie}", **extra}, allow_redirects=False)


async def session_of(ui) -> str:  # noqa: ANN001
    resp = await signin(ui)
    assert resp.status == 303
    return resp.cookies[SESSION_COOKIE].value


def check_headers(resp) -> None:  # noqa: ANN001
    assert resp.headers["Content-Security-Policy"].startswith(CSP)
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_pages_need_a_session(ui):  # noqa: ANN001
    for path in ("/ui", "/ui/dashboard?range=7d", "/ui/requests/01ABC"):
        resp = await ui.get(path, allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"] == f"/ui/login?{urlencode({'next': path})}"
        check_headers(resp)
    resp = await ui.get("/ui", headers={"Cookie": f"{SESSION_COOKIE}=v1.9999999999.forged.sig"},
                        allow_redirects=False)
    assert resp.status == 303


async def test_sign_in_sets_a_strict_http_only_cookie(ui):  # noqa: ANN001
    form = await ui.get("/ui/login")
    check_headers(form)
    assert form.headers["Cache-Control"] == "no-store"
    resp = await signin(ui, next="/ui/dashboard")
    assert resp.status == 303 and resp.headers["Location"] == "/ui/dashboard"
    cookie = resp.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/ui"
    assert not cookie["secure"]  # plain http here
    assert ADMIN_KEY not in resp.headers.getall("Set-Cookie")[0]
    page = await ui.get("/ui/dashboard", headers={"Cookie": f"{SESSION_COOKIE}={cookie.value}"})
    assert page.status == 200 and "<h1>Dashboard</h1>" in await page.text()
    check_headers(page)


async def test_wrong_key_or_missing_form_token_is_refused(ui):  # noqa: ANN001
    resp = await signin(ui, key="not-the-admin-key-0000000")
    assert resp.status == 401 and SESSION_COOKIE not in resp.cookies
    assert "not the admin key" in await resp.text()
    # No login cookie (a form posted from another site): refused even with the right key.
    form = await ui.get("/ui/login")
    csrf = _CSRF.search(await form.text()).group(1)
    resp = await ui.post("/ui/login", data={"key": ADMIN_KEY, "csrf": csrf}, allow_redirects=False)
    assert resp.status == 403 and SESSION_COOKIE not in resp.cookies


async def test_sign_in_goes_only_to_ui_pages(ui):  # noqa: ANN001
    for target in ("//evil.example/", "https://evil.example/ui", "/v1/logs"):
        resp = await signin(ui, next=target)
        assert resp.headers["Location"] == "/ui"


async def test_secure_cookie_behind_an_https_proxy_only_when_trusted(aiohttp_client, tmp_path):  # noqa: ANN001
    settings = {"admin": {"key": ADMIN_KEY}, "request_log": {"path": str(tmp_path / "r.sqlite3")},
                "images": {"directory": str(tmp_path / "images"), "forwarded_headers": True}}
    client = await aiohttp_client(create_app(settings, plugins=[fake_provider.plugin]),
                                  cookie_jar=aiohttp.DummyCookieJar())
    resp = await signin(client, **{"X-Forwarded-Proto": "https"})
    assert resp.cookies[SESSION_COOKIE]["secure"]
    # Without images.forwarded_headers, the header is not believed.
    ui_plain = await aiohttp_client(create_app({**settings, "images": {"directory": str(tmp_path / "i2")}},
                                               plugins=[fake_provider.plugin]), cookie_jar=aiohttp.DummyCookieJar())
    resp = await signin(ui_plain, **{"X-Forwarded-Proto": "https"})
    assert not resp.cookies[SESSION_COOKIE]["secure"]


async def test_logout_needs_its_csrf_token(ui):  # noqa: ANN001
    session = await session_of(ui)
    cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
    page = await ui.get("/ui", headers=cookie)
    csrf = _CSRF.search(await page.text()).group(1)
    for data in ({}, {"csrf": ""}, {"csrf": csrf[:-2] + "AA"}):
        resp = await ui.post("/ui/logout", data=data, headers=cookie, allow_redirects=False)
        assert resp.status == 403
        check_headers(resp)
        assert (await ui.get("/ui", headers=cookie, allow_redirects=False)).status == 200
    # Another session's token does not do either.
    other = await session_of(ui)
    other_page = await ui.get("/ui", headers={"Cookie": f"{SESSION_COOKIE}={other}"})
    other_csrf = _CSRF.search(await other_page.text()).group(1)
    assert (await ui.post("/ui/logout", data={"csrf": other_csrf}, headers=cookie)).status == 403
    resp = await ui.post("/ui/logout", data={"csrf": csrf}, headers=cookie, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/login"
    assert resp.cookies[SESSION_COOKIE].value == ""
    # The session is over, even for a copy of the cookie.
    assert (await ui.get("/ui", headers=cookie, allow_redirects=False)).status == 303


async def test_no_admin_key_names_the_setting(aiohttp_client, tmp_path):  # noqa: ANN001
    # No admin key set, and the gateway making none of its own (as when it listens beyond loopback).
    app = create_app({"request_log": {"path": str(tmp_path / "r.sqlite3")}, "admin": {"local_key": False}},
                     plugins=[fake_provider.plugin])
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    resp = await client.get("/ui", allow_redirects=False)
    assert resp.status == 303
    resp = await client.get("/ui/login")
    text = await resp.text()
    assert resp.status == 403 and 'id="admin-key-not-set"' in text
    assert "[admin]" in text and "key_env" in text and "<form" not in text
    check_headers(resp)
    resp = await client.post("/ui/login", data={"key": "anything-at-all-000000"}, allow_redirects=False)
    assert resp.status == 403 and SESSION_COOKIE not in resp.cookies


async def test_ui_can_be_turned_off(aiohttp_client, tmp_path):  # noqa: ANN001
    app = create_app({"ui": {"enabled": False}, "admin": {"key": ADMIN_KEY},
                      "request_log": {"path": str(tmp_path / "r.sqlite3")}}, plugins=[fake_provider.plugin])
    client = await aiohttp_client(app)
    resp = await client.get("/ui/login")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_request_log_off(aiohttp_client, tmp_path):  # noqa: ANN001
    app = create_app({"admin": {"key": ADMIN_KEY}, "request_log": {"enabled": False}}, plugins=[fake_provider.plugin])
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    session = await session_of(client)
    resp = await client.get("/ui", headers={"Cookie": f"{SESSION_COOKIE}={session}"})
    assert resp.status == 404 and "The request log is off" in await resp.text()


async def test_static_files(ui):  # noqa: ANN001
    css = await ui.get("/ui/static/ui.css")
    assert css.status == 200 and css.content_type == "text/css"
    check_headers(css)
    js = await ui.get("/ui/static/ui.js")
    assert js.status == 200 and js.content_type == "text/javascript"
    for name in ("nope.js", "..%2Fhtml.py", "base.html"):
        assert (await ui.get(f"/ui/static/{name}")).status == 404


async def _logged(gateway_services, count: int) -> list[LogRecord]:  # noqa: ANN001
    for _ in range(500):
        store = gateway_services.log_store
        page, _ = await store.query(LogQuery())
        if len(page) >= count:
            return page
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} records were written")


async def test_pages_show_the_log_escaped(ui, gateway_services, fake_upstream):  # noqa: ANN001
    fake_provider.install(fake_upstream, image=PNG)
    attack = "<script>alert(1)</script>"
    body = {"prompt": f"a fox {attack}", "size": "512x512"}
    headers = {"x-portkey-provider": "fake", "Authorization": "Bearer sk-fake",
               "x-portkey-metadata": json.dumps({"team": attack})}
    assert (await ui.post("/v1/images/generations", json=body, headers=headers)).status == 200
    body["prompt"] = "content_policy please"
    assert (await ui.post("/v1/images/generations", json=body, headers=headers)).status == 400
    records = await _logged(gateway_services, 2)
    cookie = {"Cookie": f"{SESSION_COOKIE}={await session_of(ui)}"}

    listing = await (await ui.get("/ui", headers=cookie)).text()
    assert attack not in listing and listing.count('<tr data-href="/ui/requests/') == 2
    assert 'class="status s4xx"' in listing and 'class="status s2xx"' in listing
    only_errors = await (await ui.get("/ui?status=4xx", headers=cookie)).text()
    assert only_errors.count('<tr data-href="/ui/requests/') == 1
    by_metadata = await (await ui.get("/ui", params={"metadata": f"team={attack}"}, headers=cookie)).text()
    assert by_metadata.count('<tr data-href="/ui/requests/') == 2

    ok = next(r for r in records if r.status == 200)
    detail = await ui.get(f"/ui/requests/{ok.id}", headers=cookie)
    html = await detail.text()
    assert detail.status == 200 and attack not in html
    assert "a fox &lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The image, through the gateway's own signed URL, is the provider's.
    src = re.search(r'<img class="full" src="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert src.startswith("/v1/images/files/")
    image = await ui.get(src)
    assert image.status == 200 and await image.read() == PNG

    assert (await ui.get("/ui/requests/01NOSUCHRECORD0000000000000", headers=cookie)).status == 404
    bad = await ui.get("/ui?status=600", headers=cookie)
    assert bad.status == 400 and 'id="filter-error"' in await bad.text()
    dashboard = await (await ui.get("/ui/dashboard?range=1h", headers=cookie)).text()
    assert dashboard.count('<svg class="chart"') == 5 and ">fake<" in dashboard


def test_count_charts_have_whole_labels():
    svg = charts.line_chart("t", {"a": [(0, 6.0), (1, 0.0)]}, 0, 2, "{:g}".format, {"a": "#000"}, whole=True)
    labels = re.findall(r'<text x="50" [^>]*>([^<]+)</text>', svg)  # the y axis's
    assert labels == ["0", "2", "4", "6", "8"]
    rate = charts.line_chart("t", {"a": [(0, 0.5)]}, 0, 2, "{:.0%}".format, {"a": "#000"}, top=1.0)
    assert ">100%<" in rate


class _ListRows(HTMLParser):
    """The list page's request rows: record id (from the row's link) -> the text of each cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("data-href") or ""
        if tag == "tr" and href.startswith("/ui/requests/"):
            self._row = self.rows[href.rsplit("/", 1)[1]] = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def list_rows(html: str) -> dict[str, dict[str, str]]:
    """The rows of a list page by record id, each cell by its column's heading in ``list.html``."""
    parser = _ListRows()
    parser.feed(html)
    columns = ("time", "status", "provider", "model", "prompt", "endpoint", "latency", "cost", "cache", "image")
    out = {}
    for record_id, cells in parser.rows.items():
        assert len(cells) == len(columns), cells
        out[record_id] = dict(zip(columns, cells, strict=True))
    return out


async def test_list_rows_show_each_requests_latency_cost_and_cache_status(ui, gateway_services,
                                                                          fake_upstream):  # noqa: ANN001
    """The request list's latency, cost and cache cells hold each record's values: a priced cache MISS
    ($0.01, the fake's 512x512 price) and the HIT repeating it through the gateway, and records of known
    latency (milliseconds under a second, seconds above) and unknown cost written to the store."""
    fake_provider.install(fake_upstream, image=PNG)
    config = json.dumps({"provider": "fake", "api_key": "sk-fake", "cache": {"mode": "simple"}})
    for _ in range(2):
        resp = await ui.post("/v1/images/generations", headers={"x-portkey-config": config},
                             json={"prompt": "a priced fox", "size": "512x512", "response_format": "b64_json"})
        assert resp.status == 200, await resp.text()
        await asyncio.sleep(0.1)  # the miss's cache entry is written after its answer: the next call hits it
    hit, miss = await _logged(gateway_services, 2)
    assert (miss.cache, hit.cache) == ("MISS", "HIT")
    fast = record(id=new_id(NOW), trace_id="fast", ms=87.4, cost=None, cache="DISABLED")
    slow = record(id=new_id(NOW - 1), time=NOW - 1, trace_id="slow", ms=1234.0, cost=0.04, cache="REFRESH")
    await gateway_services.log_store.write([fast, slow])
    cookie = {"Cookie": f"{SESSION_COOKIE}={await session_of(ui)}"}
    resp = await ui.get("/ui", headers=cookie)
    assert resp.status == 200
    rows = list_rows(await resp.text())
    assert set(rows) == {miss.id, hit.id, fast.id, slow.id}
    cells = {rid: (row["latency"], row["cost"], row["cache"]) for rid, row in rows.items()}
    # A real request's latency is what it took: its record's milliseconds, whole (both well under a second).
    assert miss.ms < 1000 and hit.ms < 1000
    assert cells[miss.id] == (f"{round(miss.ms)} ms", "$0.0100", "MISS")
    # A hit costs nothing: no provider billed it.
    assert cells[hit.id] == (f"{round(hit.ms)} ms", "$0.0000", "HIT")
    assert cells[fast.id] == ("87 ms", "—", "DISABLED")
    assert cells[slow.id] == ("1.23 s", "$0.0400", "REFRESH")
    assert rows[miss.id]["provider"] == "fake" and rows[miss.id]["model"] == "fake-image"
