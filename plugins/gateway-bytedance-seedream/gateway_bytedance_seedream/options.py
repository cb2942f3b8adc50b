"""Where a Seedream request goes: the ``region`` provider option (config target field, virtual
key field, ``x-portkey-seedream-region`` header) and the ``[providers.bytedance-seedream]`` settings.

BytePlus ModelArk serves Seedream from ``ap-southeast-1`` (and ``eu-west-1`` for some models);
Volcengine Ark, ByteDance's platform in mainland China, from ``cn-beijing``. An API key belongs
to one region of one platform, so the region is a host choice: a virtual key's region is its own.
"""
from __future__ import annotations

import re

import msgspec

from gateway.sdk import ProviderSettings

__all__ = ["HEADER_OPTIONS", "REGIONS", "VOLCENGINE_REGIONS", "SeedreamOptions", "SeedreamSettings"]

#: ``region`` -> the Ark API base URL there (BytePlus: docs.byteplus.com ModelArk "Region
#: availability"; Volcengine: volcengine.com/docs/82379 "Base URL").
REGIONS = {
    "ap-southeast-1": "https://ark.ap-southeast.bytepluses.com/api/v3",
    "eu-west-1": "https://ark.eu-west.bytepluses.com/api/v3",
    "cn-beijing": "https://ark.cn-beijing.volces.com/api/v3",
}
#: Regions of Volcengine Ark, whose model IDs carry a ``doubao-`` prefix.
VOLCENGINE_REGIONS = frozenset({"cn-beijing"})

#: ``x-portkey-*`` request headers that set options on a header-only request.
HEADER_OPTIONS = {"x-portkey-seedream-region": "region"}

# A region becomes a choice of host: letters, digits and dashes only, like the ones above.
_REGION = re.compile(r"[a-z]{2,}(?:-[a-z0-9]+){1,3}")


class SeedreamOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of one Seedream target."""

    #: The Ark region whose API the request goes to (``ap-southeast-1``, ``eu-west-1``,
    #: ``cn-beijing``); None: the provider's base URL (BytePlus ``ap-southeast-1`` by default).
    region: str | None = None

    def __post_init__(self) -> None:
        # msgspec turns a ValueError here into a 400 naming the provider and the field.
        if self.region is not None and not _REGION.fullmatch(self.region):
            raise ValueError(f"`region` (x-portkey-seedream-region) {self.region[:40]!r} is not a region name "
                             f"such as {', '.join(REGIONS)}")


class SeedreamSettings(ProviderSettings):
    """``[providers.bytedance-seedream]``: ``base_url`` is where a request without ``region`` goes;
    ``regions`` the base URL of each region a request may name (the three above unless set)."""

    regions: dict[str, str] = msgspec.field(default_factory=lambda: dict(REGIONS))

    def __post_init__(self) -> None:
        for name, url in self.regions.items():
            if not _REGION.fullmatch(name) or not url.startswith(("https://", "http://")):
                raise ValueError(f"`regions`: {name!r} = {url!r} is not a region name and an http(s) base URL")
