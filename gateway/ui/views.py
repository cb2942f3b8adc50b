"""The UI's aiohttp handlers: sign-in, the request list, a request's page, the dashboard.

Every page needs a session (:mod:`gateway.ui.session`) except the sign-in page and the static
files; a request without one is sent to ``/ui/login``.  Every answer carries a strict CSP
(no inline script or style: the pages have none), ``X-Frame-Options: DENY`` and
``Cache-Control: no-store`` (pages show prompts).  Images load from the gateway's signed
image URLs (:meth:`gateway.images.urls.ImageUrls.signed`), as a relative, same-origin path.
"""
from __future__ import annotations

import math
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from aiohttp import web

from gateway.images.urls import stored_path
from gateway.requestlog.admin import SETTING
from gateway.requestlog.store import InvalidQuery, LogStore
from gateway.ui import pages
from gateway.ui.filters import FilterError, Filters
from gateway.ui.html import Html
from gateway.ui.session import LOGIN_COOKIE, LOGIN_TTL, SESSION_COOKIE, Sessions, derive_secret
from gateway.ui.settings import UiSettings

_log = structlog.get_logger("gateway.ui")
#: What every UI answer says about itself.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: A sign-in form is small; anything bigger is not one.
MAX_FORM_BYTES = 8192
#: Image URLs on a page stay good at least this long (and the same for as long, so browsers cache them).
IMAGE_URL_SECONDS = 3600
#: Where a sign-in may send the browser next: a UI page, nothing else (no open redirect).
_NEXT = re.compile(r"^/ui(?:[/?][^\\\s]*)?$")
_RECORD_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_key_value(cfg: Any, environ: Mapping[str, str] | None = None, local_file: str | None = None) -> str | None:
    """The admin key as ``[admin]`` names it (already checked at start-up by the request log's
    plugin), or the one the gateway made in ``local_file``; read once to derive the UI's signing
    secret and then dropped."""
    environ = os.environ if environ is None else environ
    if local_file is not None:
        return _read_key(local_file)
    if cfg is None:
        return None
    if cfg.key_env:
        return environ.get(cfg.key_env) or None
    if cfg.key_file:
        return _read_key(cfg.key_file)
    return cfg.key or None


def _read_key(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def safe_next(value: str | None) -> str:
    """A UI path to go to after signing in; ``/ui`` for anything else (an absolute URL, ``//host``)."""
    if value and _NEXT.match(value) and not value.startswith("/ui//") and len(value) <= 2000:
        return value
    return "/ui"


def secure_request(request: web.BaseRequest, forwarded: bool) -> bool:
    """Whether the browser reached the gateway over https (``X-Forwarded-Proto`` counts only
    when ``images.forwarded_headers`` says a proxy sets it)."""
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "") if forwarded else ""
    return proto.split(",", 1)[0].strip().lower() == "https"


class UI:
    """The UI of one app: its services, the session signer, the handlers."""

    def __init__(self, services: Any, cfg: UiSettings, environ: Mapping[str, str] | None = None) -> None:
        self.services = services
        self.cfg = cfg
        admin = getattr(services, "admin", None)
        #: None while no admin key is set: the pages then say which setting to set.
        self.sessions: Sessions | None = None
        if admin is not None and admin.configured:
            key = admin_key_value(services.settings.sections.get("admin"), environ, admin.local_file)
            # An admin key set other than through [admin] (a plugin's own): sessions signed with
            # this process's own secret (good in this process only).
            secret = derive_secret(key) if key is not None else secrets.token_bytes(32)
            self.sessions = Sessions(secret, cfg.session_ttl)
        self.forwarded = bool(services.settings.images.forwarded_headers)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/ui", self._page(self.list_page))
        router.add_get("/ui/", self._headers(self._redirect_home))
        router.add_get("/ui/login", self._headers(self.login_form))
        router.add_post("/ui/login", self._headers(self.login))
        router.add_post("/ui/logout", self._headers(self.logout))
        router.add_get("/ui/requests/{record_id}", self._page(self.detail_page))
        router.add_get("/ui/dashboard", self._page(self.dashboard_page))
        router.add_get("/ui/static/{name}", self._headers(self.static))

    # -- plumbing -------------------------------------------------------------------------------------
    @staticmethod
    def _headers(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            response = await handler(request)
            response.headers.update(SECURITY_HEADERS)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return run

    def _page(self, handler: Callable[[web.Request, str], Awaitable[web.StreamResponse]]) -> Handler:
        """``handler`` for a signed-in browser (it gets the session's CSRF token); else a redirect
        to the sign-in page, which comes back here."""
        async def run(request: web.Request) -> web.StreamResponse:
            session = request.cookies.get(SESSION_COOKIE)
            if self.sessions is None or not self.sessions.valid(session):
                return redirect(f"/ui/login?{urlencode({'next': request.path_qs})}")
            assert session is not None
            return await handler(request, self.sessions.csrf(session))

        return self._headers(run)

    @staticmethod
    async def _redirect_home(request: web.Request) -> web.StreamResponse:
        return redirect("/ui", 308)

    @staticmethod
    def _html(body: Html, status: int = 200) -> web.Response:
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    def _image_url(self) -> Callable[[str], str]:
        """Signed, relative (same-origin) URLs of stored images, the same for an hour so they cache."""
        now = time.time()
        expires = int(math.ceil(now / IMAGE_URL_SECONDS) * IMAGE_URL_SECONDS + IMAGE_URL_SECONDS)
        urls = self.services.image_urls
        return lambda image_id: urls.signed(stored_path(image_id, expires))

    def _store(self) -> LogStore | None:
        return getattr(self.services, "log_store", None)

    # -- sign in and out ---------------------------------------------------------------------------------
    async def login_form(self, request: web.Request) -> web.StreamResponse:
        if self.sessions is None:
            return self._html(pages.login_unset_page(f"Until then /ui answers this page ({SETTING})."), 403)
        if self.sessions.valid(request.cookies.get(SESSION_COOKIE)):
            return redirect(safe_next(request.query.get("next")))
        return self._login_answer(request, safe_next(request.query.get("next")))

    def _login_answer(self, request: web.Request, next_path: str, message: str | None = None,
                      status: int = 200) -> web.Response:
        assert self.sessions is not None
        token = self.sessions.login_token()
        response = self._html(pages.login_page(token, next_path, message, self.services.admin.local_file), status)
        response.set_cookie(LOGIN_COOKIE, token, max_age=LOGIN_TTL, path="/ui", httponly=True, samesite="Strict",
                            secure=secure_request(request, self.forwarded) or None)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        if self.sessions is None:
            return self._html(pages.login_unset_page(f"Until then /ui answers this page ({SETTING})."), 403)
        form = await _small_form(request)
        if form is None:
            return self._html(pages.message_page("Form too large", "A sign-in form is small; this one was not.",
                                                 link="/ui/login", link_text="Sign in"), 413)
        next_path = safe_next(form.get("next"))
        if not self.sessions.login_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return self._login_answer(request, next_path, "The sign-in form expired or did not come from this "
                                                          "page: sign in again.", 403)
        if not self.services.admin.check(form.get("key")):
            _log.warning("ui.login_failed", remote=request.remote)
            return self._login_answer(request, next_path, "That is not the admin key.", 401)
        response = redirect(next_path)
        secure = secure_request(request, self.forwarded) or None
        response.set_cookie(SESSION_COOKIE, self.sessions.issue(), max_age=int(self.sessions.ttl), path="/ui",
                            httponly=True, samesite="Strict", secure=secure)
        response.del_cookie(LOGIN_COOKIE, path="/ui")
        _log.info("ui.login", remote=request.remote)
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        form = await _small_form(request)
        session = request.cookies.get(SESSION_COOKIE)
        if self.sessions is None or form is None or not self.sessions.csrf_ok(session, form.get("csrf")):
            return self._html(pages.message_page(
                "Forbidden", "This form's CSRF token is missing or wrong (or the session ended): nothing was "
                             "changed. Reload the page and try again.", link="/ui", link_text="Back"), 403)
        self.sessions.revoke(session)
        response = redirect("/ui/login")
        response.del_cookie(SESSION_COOKIE, path="/ui")
        return response

    # -- pages ------------------------------------------------------------------------------------------
    async def list_page(self, request: web.Request, csrf: str) -> web.StreamResponse:
        filters = Filters.from_query(request.query)
        store = self._store()
        if store is None:
            return self._log_off(csrf)
        try:
            query = filters.to_query(time.time())
            records, next_cursor = await store.query(query)
        except (FilterError, InvalidQuery) as e:
            body = pages.list_body([], filters, None, self._image_url(), error=str(e))
            return self._html(pages.page("Requests", body, csrf, "requests"), 400)
        body = pages.list_body(records, filters, next_cursor, self._image_url())
        return self._html(pages.page("Requests", body, csrf, "requests"))

    async def detail_page(self, request: web.Request, csrf: str) -> web.StreamResponse:
        store = self._store()
        if store is None:
            return self._log_off(csrf)
        record_id = request.match_info["record_id"]
        record = await store.get(record_id) if _RECORD_ID.match(record_id) else None
        if record is None:
            return self._html(pages.message_page("Not found", "No such request in the log (retention may have "
                                                              "removed it).", csrf=csrf), 404)
        body = pages.detail_body(record, self._image_url())
        return self._html(pages.page(f"Request {record.id}", body, csrf, "requests"))

    async def dashboard_page(self, request: web.Request, csrf: str) -> web.StreamResponse:
        store = self._store()
        if store is None:
            return self._log_off(csrf)
        range_name = request.query.get("range", "24h")
        if range_name not in pages.RANGES:
            range_name = "24h"
        span, bucket = pages.RANGES[range_name]
        until = math.ceil(time.time() / bucket) * bucket
        since = until - span
        rows = await store.stats(since, until, bucket)
        # Buckets start at multiples of their size since the epoch: one bucket longer than the
        # time since the epoch holds the whole range (exact p50/p95 per provider over it).
        totals = await store.stats(since, until, int(until) + 1)
        body = pages.dashboard_body(rows, totals, range_name, since, until, bucket)
        return self._html(pages.page("Dashboard", body, csrf, "dashboard"))

    def _log_off(self, csrf: str) -> web.Response:
        return self._html(pages.message_page(
            "The request log is off", "Nothing is recorded: set [request_log] enabled = true (the default) "
                                      "and restart.", kind="notice", link="/ui/dashboard", link_text="Dashboard",
            csrf=csrf), 404)

    @staticmethod
    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        data = pages.static_file(name)
        if data is None:
            return web.Response(status=404, text="No such file", content_type="text/plain")
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        # Versioned URLs (?v=<hash>): a changed file gets a new URL, so caching long is safe.
        return web.Response(body=data, content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "public, max-age=86400"})


def redirect(location: str, status: int = 303) -> web.Response:
    """A redirect answer (the caller's wrapper adds the security headers)."""
    return web.Response(status=status, headers={"Location": location})


async def _small_form(request: web.Request) -> Mapping[str, str] | None:
    """The urlencoded form of a POST (text fields only), or None when it is too large."""
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        return None
    raw = await request.content.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        return None
    try:
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20))
    except ValueError:  # more fields than any of the UI's forms has
        return None
