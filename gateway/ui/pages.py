"""The UI's pages, rendered from log records (pure functions: no request, no store).

Every value from a record goes through :mod:`gateway.ui.html`, escaped; the only markup is
the templates' and what this module builds with :func:`~gateway.ui.html.el`.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import msgspec

from gateway.requestlog.record import LogImage, LogRecord
from gateway.ui import charts
from gateway.ui.filters import AGES, Filters
from gateway.ui.html import Html, el, join, render

#: Makes the URL an ``<img>`` loads for an image id (signed, same origin).
ImageUrl = Callable[[str], str]
#: The dashboard's ranges: name -> (seconds shown, bucket seconds).
RANGES: dict[str, tuple[int, int]] = {
    "1h": (3600, 60), "24h": (86400, 1800), "7d": (7 * 86400, 6 * 3600), "30d": (30 * 86400, 86400),
}
_STATUSES = (("", "any"), ("2xx", "2xx"), ("4xx", "4xx"), ("5xx", "5xx"), ("200", "200"), ("400", "400"),
             ("401", "401"), ("403", "403"), ("404", "404"), ("429", "429"), ("500", "500"), ("502", "502"),
             ("503", "503"), ("504", "504"))
_pretty = msgspec.json.Encoder(order="sorted")
#: Characters of a prompt the list shows (the whole prompt is on the request's page).
PROMPT_CHARS = 80
_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP", "image/gif": "GIF"}


# -- static files ---------------------------------------------------------------------------------
@cache
def static_file(name: str) -> bytes | None:
    """``static/<name>`` (read once); None for a name that is not one of the UI's files."""
    if name not in ("ui.css", "ui.js"):
        return None
    return resources.files(__package__).joinpath("static", name).read_bytes()


@cache
def static_version(name: str) -> str:
    """A short hash of a static file: its URL changes when the file does (long browser caching)."""
    return hashlib.sha256(static_file(name) or b"").hexdigest()[:12]


# -- formatting ---------------------------------------------------------------------------------------
def fmt_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def fmt_cost(cost: float | None, exact: bool | None = None) -> str:
    if cost is None:
        return "—"
    text = f"${cost:.4f}" if cost < 100 else f"${cost:,.2f}"
    if exact is None:
        return text
    return f"{text} ({'exact, from usage' if exact else 'estimated'})"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def status_class(status: int) -> str:
    return f"s{status // 100}xx" if 100 <= status < 600 else "s0xx"


def status_badge(record: LogRecord) -> Html:
    title = record.error_code or ""
    return el("span", {"class": f"status {status_class(record.status)}", "title": title or None}, record.status)


def image_format(content_type: str) -> str:
    return _FORMATS.get(content_type, content_type)


def as_json(value: Any) -> str:
    """``value`` as indented JSON (for ``<pre>``)."""
    return msgspec.json.format(_pretty.encode(value), indent=2).decode()


# -- the layout -----------------------------------------------------------------------------------------
def page(title: str, body: Html, csrf: str | None = None, current: str | None = None) -> Html:
    """A whole page: the layout around ``body``; with ``csrf`` (signed in) the navigation and its
    sign-out form."""
    nav = Html("")
    if csrf is not None:
        on = Html(' aria-current="page"')
        nav = render("nav.html", csrf=csrf, requests_current=on if current == "requests" else Html(""),
                     dashboard_current=on if current == "dashboard" else Html(""))
    return render("base.html", title=title, body=body, nav=nav, css_version=static_version("ui.css"),
                  js_version=static_version("ui.js"))


def login_page(csrf: str, next_path: str, message: str | None = None, local_file: str | None = None) -> Html:
    """The sign-in form; with ``local_file``, where the admin key the gateway made is kept."""
    notice = el("p", {"class": "notice error", "id": "login-error", "role": "alert"}, message) if message else Html("")
    if local_file is not None:
        notice = Html(notice + render("login_local_key.html", file=local_file))
    return page("Sign in", render("login.html", csrf=csrf, next=next_path, message=notice))


def login_unset_page(detail: str) -> Html:
    return page("No admin key", render("login_unset.html", detail=detail))


def message_page(heading: str, text: str, kind: str = "error", link: str = "/ui", link_text: str = "Requests",
                 csrf: str | None = None) -> Html:
    return page(heading, render("message.html", heading=heading, text=text, kind=kind, link=link,
                                link_text=link_text), csrf=csrf)


# -- the list ---------------------------------------------------------------------------------------------
def list_body(records: Sequence[LogRecord], filters: Filters, next_cursor: str | None, image_url: ImageUrl,
              error: str | None = None, notice: str | None = None) -> Html:
    rows = [_row(r, image_url) for r in records]
    if not rows:
        text = "No requests match these filters." if filters.any() else "No requests logged yet."
        rows = [el("tr", {"class": "empty"}, el("td", {"colspan": 10}, notice or text))]
    pager: list[Html] = []
    if filters.cursor:
        pager.append(el("a", {"href": filters.url(cursor=""), "id": "newest"}, "← Newest"))
    if next_cursor:
        pager.append(el("a", {"href": filters.url(cursor=next_cursor), "id": "older", "rel": "next"}, "Older →"))
    statuses = [el("option", {"value": v, "selected": filters.status.lower() == v}, label) for v, label in _STATUSES]
    return render(
        "list.html", since=filters.since, until=filters.until, provider=filters.provider, model=filters.model,
        key=filters.key, trace_id=filters.trace_id, metadata=filters.metadata, statuses=join(statuses),
        ages=join(el("option", {"value": a}) for a in AGES),
        error=el("p", {"class": "notice error", "id": "filter-error", "role": "alert"}, error) if error else Html(""),
        rows=join(rows, "\n"), pager=el("p", {"class": "pager"}, *pager) if pager else Html(""))


def _short(text: str) -> str:
    return text if len(text) <= PROMPT_CHARS else text[:PROMPT_CHARS - 1] + "…"


def _row(r: LogRecord, image_url: ImageUrl) -> Html:
    link = f"/ui/requests/{r.id}"
    prompt = r.params.get("prompt")
    prompt = prompt if isinstance(prompt, str) else ""
    cells = [
        el("td", {}, el("a", {"href": link}, el("time", {"datetime": iso_time(r.time)}, fmt_time(r.time)))),
        el("td", {}, status_badge(r)),
        el("td", {}, r.provider or "—"),
        el("td", {}, r.model or "—"),
        el("td", {"class": "prompt", "title": prompt if len(prompt) > PROMPT_CHARS else None}, _short(prompt)),
        el("td", {"class": "endpoint"}, r.endpoint),
        el("td", {"class": "num"}, fmt_ms(r.ms)),
        el("td", {"class": "num"}, fmt_cost(r.cost)),
        el("td", {}, el("span", {"class": f"cache {r.cache.lower()}"}, r.cache)),
        el("td", {}, _thumbnail(r, image_url)),
    ]
    return el("tr", {"data-href": link, "class": f"row {status_class(r.status)}"}, *cells)


def _thumbnail(r: LogRecord, image_url: ImageUrl) -> Html:
    if not r.images:
        return Html("")
    first = r.images[0]
    img = el("img", {"class": "thumb", "src": image_url(first.thumbnail_id or first.image_id),
                     "alt": f"image 1 of {len(r.images)}", "loading": "lazy"})
    more = el("span", {"class": "more"}, f"+{len(r.images) - 1}") if len(r.images) > 1 else Html("")
    return join([img, more])


# -- the detail page ---------------------------------------------------------------------------------------
def detail_body(r: LogRecord, image_url: ImageUrl) -> Html:
    params = dict(r.params)
    prompt = params.pop("prompt", None)
    error = Html("")
    if r.error or r.error_code:
        error = join([el("dt", {}, "Error"),
                      el("dd", {"class": "error"}, el("code", {}, r.error_code or ""), " ", r.error or "")])
    return render(
        "detail.html", id=r.id, status_badge=status_badge(r), time=el("time", {"datetime": iso_time(r.time)},
                                                                       f"{fmt_time(r.time)} UTC"),
        trace_id=r.trace_id, trace_link=Filters(trace_id=r.trace_id).url(), endpoint=r.endpoint, method=r.method,
        path=r.path, key=r.key or "— (no gateway keys)", provider=r.provider or "—", model=r.model or "—",
        ms=fmt_ms(r.ms), upstream_ms=fmt_ms(r.upstream_ms), overhead_ms=fmt_ms(r.overhead_ms),
        bytes_in=fmt_bytes(r.bytes_in), bytes_out=fmt_bytes(r.bytes_out), cache=r.cache,
        cost=_cost(r), saved=_saved(r), error=error,
        prompt=el("pre", {"class": "prompt", "id": "prompt"}, _param_text(prompt)) if prompt is not None
        else el("p", {"class": "hint"}, "No prompt (a passthrough request, or an endpoint without one)."),
        params=_table(("Parameter", "Value"), [(k, _param_text(v)) for k, v in sorted(params.items())], "params"),
        attempts=_attempts(r.attempts), headers=_table(("Header", "Value"), headers_of(r), "headers"),
        metadata=_table(("Field", "Value"), sorted(r.metadata.items()), "metadata"),
        usage=el("pre", {"id": "usage"}, as_json(r.usage)) if r.usage is not None
        else el("p", {"class": "hint"}, "The provider reported no usage."),
        images=_images(r, image_url))


def _cost(r: LogRecord) -> str:
    """The request's cost as the detail page says it: a cache hit's 0 is no estimate."""
    if r.cost is not None and r.cache.endswith("HIT"):
        return f"{fmt_cost(r.cost)} (a cache hit: no provider was called)"
    return fmt_cost(r.cost, r.cost_exact)


def _saved(r: LogRecord) -> Html:
    """What a cache hit saved (what the cached answer cost when it was made), when known."""
    if r.cost_saved is None:
        return Html("")
    return join([el("dt", {}, "Saved by the cache"), el("dd", {"id": "cost-saved"}, fmt_cost(r.cost_saved))])


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "omitted" in value:
        kind = "base64 data" if value.get("omitted") == "base64" else "a file"
        sha = str(value.get("sha256", ""))[:16]
        return f"({kind}, {fmt_bytes(value.get('bytes'))}, sha256 {sha}…, not kept)"
    return as_json(value)


def _table(head: tuple[str, str], rows: Sequence[tuple[Any, Any]], table_id: str) -> Html:
    if not rows:
        return el("p", {"class": "hint"}, "None.")
    body = [el("tr", {}, el("th", {"scope": "row"}, k), el("td", {}, el("code", {}, v))) for k, v in rows]
    return el("table", {"class": "kv", "id": table_id},
              el("thead", {}, el("tr", {}, el("th", {}, head[0]), el("th", {}, head[1]))), el("tbody", {}, *body))


def _attempts(attempts: Sequence[Mapping[str, Any]]) -> Html:
    if not attempts:
        return el("p", {"class": "hint"}, "No attempt reached a provider (answered by the gateway or its cache).")
    head = el("tr", {}, *(el("th", {}, h) for h in ("#", "Target", "Provider", "Model", "Try", "Status",
                                                       "Latency", "Error")))
    rows = []
    for i, a in enumerate(attempts, 1):
        status = a.get("status")
        badge = el("span", {"class": f"status {status_class(status)}"}, status) if isinstance(status, int) else "—"
        ms = a.get("ms")
        rows.append(el("tr", {}, el("td", {}, i), el("td", {}, el("code", {}, a.get("target", ""))),
                       el("td", {}, a.get("provider") or "—"), el("td", {}, a.get("model") or "—"),
                       el("td", {}, a.get("attempt", "")), el("td", {}, badge),
                       el("td", {"class": "num"}, fmt_ms(ms) if isinstance(ms, (int, float)) else "—"),
                       el("td", {}, a.get("error") or "")))
    return el("table", {"class": "attempts", "id": "attempts"}, el("thead", {}, head), el("tbody", {}, *rows))


def headers_of(r: LogRecord) -> list[tuple[str, str]]:
    """The answer headers that matter, as the record knows them (no credential is ever in a record)."""
    out = [("x-portkey-trace-id", r.trace_id)]
    if r.provider:
        out.append(("x-portkey-provider", r.provider))
    out.append(("x-portkey-cache-status", r.cache))
    if r.metadata:
        out.append(("x-portkey-metadata", msgspec.json.encode(r.metadata).decode()))
    out.append(("x-gateway-overhead-ms", f"{r.overhead_ms:.2f}"))
    if r.cost is not None:
        out.append(("x-gateway-cost", f"{r.cost:.6f}"))
    if r.cost_saved is not None:
        out.append(("x-gateway-cost-saved", f"{r.cost_saved:.6f}"))
    if r.key:
        out.append(("x-portkey-api-key", f"(the key named {r.key!r}; keys are never logged)"))
    return out


def _images(r: LogRecord, image_url: ImageUrl) -> Html:
    parts = []
    if r.images:
        figures = [_figure(i, len(r.images), img, image_url) for i, img in enumerate(r.images, 1)]
        parts.append(el("div", {"class": "images", "id": "images"}, *figures))
    if r.provider_urls:
        # Only http(s) URLs are recorded; each opens on the provider's site, told nothing of this page.
        links = [el("li", {}, el("a", {"href": url, "rel": "noreferrer noopener", "target": "_blank"}, url))
                 for url in r.provider_urls]
        parts.append(el("div", {"id": "provider-urls"}, el("p", {"class": "hint"}, (
            "The provider's own image URLs, handed on as they were (the gateway did not keep these images): "
            "they work as long as the provider keeps the files.")), el("ul", {}, *links)))
    if not parts:
        return el("p", {"class": "hint"}, "No images kept for this request (not a 2xx image answer, or image "
                                          "logging is off for the gateway or this key).")
    return join(parts)


def _figure(i: int, count: int, img: LogImage, image_url: ImageUrl) -> Html:
    url = image_url(img.image_id)
    size = f"{img.width}×{img.height}" if img.width and img.height else "size unknown"
    caption = f"Image {i} of {count} · {size} · {image_format(img.content_type)} · {fmt_bytes(img.bytes)}"
    image = el("img", {"class": "full", "src": url, "alt": f"image {i} of {count}", "width": img.width,
                       "height": img.height, "data-image-id": img.image_id})
    return el("figure", {}, el("a", {"href": url}, image), el("figcaption", {}, caption))


# -- the dashboard ---------------------------------------------------------------------------------------
def dashboard_body(rows: Sequence[Mapping[str, Any]], totals: Sequence[Mapping[str, Any]], range_name: str,
                   since: float, until: float, bucket: int) -> Html:
    providers = sorted({str(row.get("provider") or "(none)") for row in [*rows, *totals]})
    palette = charts.colours(providers)
    by_key = {(int(row["bucket"]), str(row.get("provider") or "(none)")): row for row in rows}
    # Every bucket of the range: a count is 0 where a provider had no request, a latency or rate a gap.
    buckets = range(int(since) // bucket * bucket, int(until), bucket)
    Value = Callable[[Mapping[str, Any] | None], float | None]

    def series(value: Value) -> dict[str, list[tuple[float, float | None]]]:
        return {p: [(b + bucket / 2, value(by_key.get((b, p)))) for b in buckets] for p in providers}

    def count(*fields: str) -> Value:
        return lambda row: 0.0 if row is None else float(sum(row.get(f) or 0 for f in fields))

    def opt(field: str) -> Value:
        return lambda row: None if row is None or row.get(field) is None else float(row[field])

    def hit_rate(row: Mapping[str, Any] | None) -> float | None:
        lookups = (row or {}).get("cache_lookups") or 0
        return (row or {}).get("cache_hits", 0) / lookups if lookups else None

    def chart(title: str, s: Any, fmt: Callable[[float], str], dashed: Any = None, **scale: float) -> Html:
        return charts.line_chart(title, s, since, until, fmt, palette, dashed, **scale)

    number = "{:g}".format
    body = {
        "requests": chart("Requests", series(count("requests")), number, whole=True),
        "errors": chart("Errors", series(count("errors_4xx", "errors_5xx")), number, whole=True),
        "latency": chart("Latency", series(opt("p50_ms")), fmt_ms, series(opt("p95_ms"))),
        "cost": chart("Cost", series(count("cost")), lambda v: f"${v:.2f}" if v >= 1 or v == 0 else f"${v:.3f}"),
        "cache": chart("Cache hit rate", series(hit_rate), lambda v: f"{v:.0%}", top=1.0),
    }
    ranges = join(el("option", {"value": name, "selected": name == range_name}, name) for name in RANGES)
    empty = el("p", {"class": "notice", "id": "no-data"}, "No requests in this range.") if not rows else Html("")
    return render("dashboard.html", ranges=ranges, span_text=f"From {fmt_time(since)} to {fmt_time(until)}",
                  bucket_text=_duration(bucket), empty=empty, table=_totals(totals),
                  legend=charts.legend(palette) if providers else Html(""), **body)


def _totals(totals: Sequence[Mapping[str, Any]]) -> Html:
    if not totals:
        return el("p", {"class": "hint"}, "None.")
    head = el("tr", {}, *(el("th", {"class": c}, h) for h, c in (
        ("Provider", None), ("Requests", "num"), ("4xx", "num"), ("5xx", "num"), ("p50", "num"), ("p95", "num"),
        ("Cost", "num"), ("Saved by the cache", "num"), ("Cache hit rate", "num"))))
    rows = []
    for t in sorted(totals, key=lambda t: str(t.get("provider") or "")):
        lookups = t.get("cache_lookups") or 0
        rate = f"{(t.get('cache_hits') or 0) / lookups:.0%} of {lookups}" if lookups else "—"
        rows.append(el("tr", {}, el("td", {}, t.get("provider") or "(none)"),
                       *(el("td", {"class": "num"}, v) for v in (
                           t.get("requests", 0), t.get("errors_4xx", 0), t.get("errors_5xx", 0),
                           fmt_ms(t.get("p50_ms")), fmt_ms(t.get("p95_ms")), fmt_cost(t.get("cost")),
                           # A store of another plugin may not sum savings: unknown, not 0.
                           fmt_cost(t.get("cost_saved")), rate))))
    return el("table", {"class": "totals", "id": "totals"}, el("thead", {}, head), el("tbody", {}, *rows))


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"
