"""The list page's filters: its query string, as the form shows it, turned into a
:class:`~gateway.requestlog.store.LogQuery`.

Names follow ``GET /v1/logs``: ``since``, ``until``, ``provider``, ``model``, ``status`` (a code
or ``4xx``), ``key``, ``trace_id``, ``metadata`` (``field=value``, several separated by commas;
``metadata.<field>=value`` parameters too), ``cursor``.  A time is ISO 8601 (without a zone:
UTC, as the form's ``datetime-local`` inputs send it), unix seconds, or for ``since`` an age
such as ``15m``, ``1h``, ``24h``, ``7d``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

import msgspec

from gateway.requestlog.store import InvalidQuery, LogQuery

#: The list's page size.
PAGE_SIZE = 50
#: Ages the form offers for ``since``.
AGES = ("15m", "1h", "24h", "7d", "30d")
_AGE = re.compile(r"^([0-9]{1,6})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STATUS = re.compile(r"^(?:[1-5][0-9][0-9]|[1-5]xx)$", re.IGNORECASE)
_FIELD = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
#: Text filters are at most this long (a longer one is a mistake, not a name).
_MAX_TEXT = 256


class FilterError(ValueError):
    """A filter the form cannot use: the page shows the message next to the form."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class Filters(msgspec.Struct, kw_only=True):
    """The filters as typed (shown back in the form), all text."""

    since: str = ""
    until: str = ""
    provider: str = ""
    model: str = ""
    status: str = ""
    key: str = ""
    trace_id: str = ""
    metadata: str = ""
    cursor: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        """The filters of a query string (unknown parameters are ignored; ``metadata.<field>``
        parameters join ``metadata``)."""
        values = {name: query.get(name, "").strip() for name in cls.__struct_fields__}
        extra = [f"{k[len('metadata.'):]}={v}" for k, v in query.items() if k.startswith("metadata.")]
        if extra:
            values["metadata"] = ",".join(p for p in [values["metadata"], *extra] if p)
        return cls(**values)

    def to_query(self, now: float, limit: int = PAGE_SIZE) -> LogQuery:
        """The store's query for these filters; :class:`FilterError` names a filter it cannot read."""
        for name in self.__struct_fields__:
            if len(getattr(self, name)) > (2000 if name in ("metadata", "cursor") else _MAX_TEXT):
                raise FilterError(name, f"{name} is too long")
        since = parse_time("since", self.since, now, ages=True)
        until = parse_time("until", self.until, now, ages=False)
        if since is not None and until is not None and since >= until:
            raise FilterError("until", "until must be after since")
        if self.status and not _STATUS.match(self.status):
            raise FilterError("status", "status must be a code like 200 or a class like 4xx")
        query = LogQuery(since=since, until=until, provider=self.provider or None, model=self.model or None,
                         status=self.status.lower() or None, key=self.key or None, trace_id=self.trace_id or None,
                         metadata=parse_metadata(self.metadata), cursor=self.cursor or None, limit=limit)
        try:
            query.check()  # what GET /v1/logs checks (a cursor this gateway handed out, ...)
        except InvalidQuery as e:
            raise FilterError(e.param, str(e)) from None
        return query

    def params(self, **changes: str) -> dict[str, str]:
        """The non-empty filters as query parameters, with ``changes`` applied."""
        values = {name: getattr(self, name) for name in self.__struct_fields__}
        values.update(changes)
        return {k: v for k, v in values.items() if v}

    def url(self, path: str = "/ui", **changes: str) -> str:
        """``path`` with these filters (and ``changes``) as its query string."""
        params = self.params(**changes)
        return f"{path}?{urlencode(params)}" if params else path

    def any(self) -> bool:
        return any(getattr(self, name) for name in self.__struct_fields__ if name != "cursor")


def parse_time(param: str, value: str, now: float, *, ages: bool) -> float | None:
    """A time filter as unix seconds (None when empty)."""
    if not value:
        return None
    if ages:
        m = _AGE.match(value)
        if m:
            return now - int(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(value) if re.fullmatch(r"[0-9]{1,12}(?:\.[0-9]+)?", value) else _iso(value)
    except ValueError:
        ages_hint = ", or an age like 1h or 7d" if ages else ""
        raise FilterError(param, f"{param} must be a time like 2025-01-31T12:00 (UTC) or unix seconds"
                                 f"{ages_hint}") from None


def _iso(value: str) -> float:
    when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_metadata(value: str) -> dict[str, str]:
    """``field=value`` pairs separated by commas as a dict."""
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        field, sep, wanted = pair.partition("=")
        field = field.strip()
        if not sep or not _FIELD.match(field):
            raise FilterError("metadata", "metadata must be field=value pairs separated by commas "
                                          "(a field is letters, digits and _ . : -)")
        out[field] = wanted.strip()
    return out
