"""``GET /v1/logs`` and ``GET /v1/logs/{id}``: the request log as JSON, for scripts, under the
admin key (``Authorization: Bearer <admin key>`` or ``x-portkey-api-key``).

``/v1/logs`` takes the filters of :class:`~gateway.requestlog.store.LogQuery` as query
parameters: ``since`` / ``until`` (unix seconds or ISO 8601), ``provider``, ``model``,
``status`` (``200`` or ``4xx``), ``key`` (a gateway key's name), ``trace_id``,
``metadata.<field>=<value>`` (any number), ``limit`` (1-200, 50 by default) and
``cursor`` (the ``next_cursor`` of the page before).  Newest first.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from gateway.errors import BadRequest, GatewayError, NotFound, UpstreamError
from gateway.requestlog.images import image_links
from gateway.requestlog.record import LogRecord
from gateway.requestlog.store import MAX_LIMIT, InvalidQuery, LogQuery
from gateway.settings import suggest

if TYPE_CHECKING:  # pragma: no cover
    from gateway.requestlog.admin import AdminKey
    from gateway.requestlog.store import LogStore
    from gateway.services import Services

_encode = msgspec.json.Encoder().encode
PARAMS = ("since", "until", "provider", "model", "status", "key", "trace_id", "cursor", "limit")
METADATA_PREFIX = "metadata."
#: Admin answers are never kept by a browser or a proxy.
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def parse_time(name: str, raw: str) -> float:
    """Unix seconds (``1718000000``, ``1718000000.5``) or ISO 8601 (``2025-06-10T08:00:00Z``;
    without an offset, UTC)."""
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidQuery(name, f"{name} must be unix seconds or an ISO 8601 time "
                                 f"(2025-06-10T08:00:00Z), not {raw[:40]!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def parse_query(query: Mapping[str, str]) -> LogQuery:
    """A :class:`LogQuery` from ``/v1/logs``'s query parameters; :class:`InvalidQuery` naming
    the first one that is wrong."""
    q = LogQuery()
    for name, value in query.items():
        if name.startswith(METADATA_PREFIX):
            field = name[len(METADATA_PREFIX):]
            if not field:
                raise InvalidQuery(name, "a metadata filter names its field: metadata.<field>=<value>")
            q.metadata[field] = value
        elif name not in PARAMS:
            raise InvalidQuery(name, f"unknown query parameter {name!r}{suggest(name, PARAMS)}; "
                                     f"/v1/logs takes {', '.join(PARAMS)} and metadata.<field>")
        elif name in ("since", "until"):
            setattr(q, name, parse_time(name, value))
        elif name == "limit":
            if not (value.isascii() and value.isdecimal() and len(value) <= 6):
                raise InvalidQuery("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
            q.limit = int(value)
        else:
            setattr(q, name, value)
    q.check()
    return q


def record_json(record: LogRecord, services: Services, base: str) -> dict[str, Any]:
    """A record as the API answers it: every field, and each image's signed URLs."""
    out: dict[str, Any] = msgspec.to_builtins(record)
    out["images"] = [image_links(services.image_urls, image, base) for image in record.images]
    return out


class LogApi:
    """The two handlers; ``store()`` is the open log store, or None when the log is off."""

    def __init__(self, services: Services, admin: Callable[[], AdminKey],
                 store: Callable[[], LogStore | None]) -> None:
        self.services = services
        self._admin = admin
        self._store = store

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/logs", self.list)
        router.add_get("/v1/logs/{id}", self.one)

    async def list(self, request: web.Request) -> web.Response:
        try:
            store = self._check(request)
            try:
                q = parse_query(request.query)
                page, cursor = await store.query(q)
            except InvalidQuery as e:
                raise BadRequest(f"Invalid /v1/logs query: {e}", param=e.param, code="invalid_log_query") from None
            except Exception as e:  # noqa: BLE001 - the store's own errors
                raise _unavailable(e) from None
            base = self.services.image_urls.base(request)
            body = {"object": "list", "data": [record_json(r, self.services, base) for r in page],
                    "next_cursor": cursor, "has_more": cursor is not None}
            return web.Response(body=_encode(body), content_type="application/json", headers=_HEADERS)
        except GatewayError as e:
            return _error(e)

    async def one(self, request: web.Request) -> web.Response:
        try:
            store = self._check(request)
            try:
                record = await store.get(request.match_info["id"])
            except Exception as e:  # noqa: BLE001 - the store's own errors
                raise _unavailable(e) from None
            if record is None:
                raise NotFound("No such request in the log (it may be past the log's retention)",
                               code="log_not_found")
            body = record_json(record, self.services, self.services.image_urls.base(request))
            return web.Response(body=_encode(body), content_type="application/json", headers=_HEADERS)
        except GatewayError as e:
            return _error(e)

    def _check(self, request: web.Request) -> LogStore:
        self._admin().require(request.headers)
        store = self._store()
        if store is None:
            raise NotFound("The request log is off (request_log.enabled = false)", code="request_log_off")
        return store


def _unavailable(e: Exception) -> GatewayError:
    return UpstreamError(f"The log store is unavailable ({e.__class__.__name__})", status=503,
                         code="log_store_unavailable")


def _error(error: GatewayError) -> web.Response:
    return web.Response(status=error.status, body=error.encode(), content_type="application/json",
                        headers={**_HEADERS, **error.headers})
