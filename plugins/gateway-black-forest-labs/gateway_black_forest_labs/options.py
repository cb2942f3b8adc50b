"""Where a Black Forest Labs request goes: the ``region`` provider option (a config target
field, a virtual key field, or the ``x-portkey-bfl-region`` header) and the
``[providers.black-forest-labs]`` settings."""
from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from gateway.sdk import Base, ProviderSettings

__all__ = ["HEADER_OPTIONS", "BlackForestLabsOptions", "BlackForestLabsSettings", "RegionUrls"]

#: ``x-portkey-*`` request headers that set options on a header-only request.
HEADER_OPTIONS = {"x-portkey-bfl-region": "region"}


class BlackForestLabsOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of one Black Forest Labs target."""

    #: ``global`` (the base URL, ``https://api.bfl.ai``: any cluster, with failover), ``eu``
    #: (EU clusters only, ``https://api.eu.bfl.ai``) or ``us`` (``https://api.us.bfl.ai``).
    region: Literal["global", "eu", "us"] | None = None


class RegionUrls(Base):
    """``[providers.black-forest-labs.region_urls]``: the API base of each regional endpoint."""

    eu: str = "https://api.eu.bfl.ai"
    us: str = "https://api.us.bfl.ai"

    def __post_init__(self) -> None:
        for name in ("eu", "us"):
            url = getattr(self, name)
            try:
                parts = urlsplit(url)
            except ValueError:
                parts = None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                    or parts.fragment or url.endswith("/"):
                raise ValueError(f"`region_urls.{name}` {url[:80]!r} is not an http(s) base URL such as "
                                 "https://api.eu.bfl.ai (no query, no trailing slash)")


class BlackForestLabsSettings(ProviderSettings):
    """``[providers.black-forest-labs]`` settings."""

    #: Seconds the gateway waits for one task in all (then a 504); the request's own timeout
    #: (``x-portkey-request-timeout``) ends the wait sooner.
    max_wait: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    #: Tasks this process keeps running at once per key (BFL's account limit is 24): a task over
    #: it waits for one to end instead of being refused by BFL.  ``flux-kontext-max`` has 6 of its own.
    max_active_tasks: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 24
    region_urls: RegionUrls = msgspec.field(default_factory=RegionUrls)
