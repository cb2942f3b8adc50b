"""The ``[request_log]`` and ``[admin]`` settings sections (registered by the built-in
plugin :mod:`gateway.defaults.request_log`)."""
from __future__ import annotations

import os
from typing import Annotated

import msgspec

from gateway.settings import Base, Count, Seconds, Size

#: Days, a fraction allowed (``0.5`` keeps twelve hours).
Days = Annotated[float, msgspec.Meta(gt=0)]


def default_path() -> str:
    """``$TMPDIR/gateway-data/requests.sqlite3``: next to the image store's default directory."""
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), "gateway-data", "requests.sqlite3")


def default_local_key_file() -> str:
    """``$TMPDIR/gateway-data/admin.key``: next to the request log's default file."""
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), "gateway-data", "admin.key")


class RequestLogSettings(Base):
    """``[request_log]``: a record per request, kept in a log store and read at ``GET /v1/logs``."""

    #: Off: nothing is recorded and ``/v1/logs`` answers 404.
    enabled: bool = True
    #: A registered log store: ``sqlite`` (built in, one file) or another a plugin registers
    #: (gateway-log-postgres: ``postgres``, with its own ``[log_postgres]`` section).
    store: str = "sqlite"
    #: The ``sqlite`` store's database file (its directory is created).
    path: str = msgspec.field(default_factory=default_path)
    #: Days a record (and the images it keeps) lives.
    retention_days: Days = 30.0
    #: Bytes the ``sqlite`` store's file may use before the oldest records go (0: no bound).
    max_bytes: Size = 1024 * 1024 * 1024
    #: Seconds between prunings (retention by age and by size).
    prune_interval: Seconds = 300.0
    #: Records waiting to be written; when full (the store slow or down), new ones are dropped and counted.
    queue_size: Count = 10_000
    #: Records written in one insert.
    batch_size: Count = 200
    #: Seconds a record may wait for its batch to fill.
    flush_interval: Seconds = 0.5
    #: Seconds one batch write may take before the store counts as unavailable.
    write_timeout: Seconds = 10.0
    #: Keep the images of 2xx image answers (in the image store, for ``retention_days``).
    images: bool = True
    #: Gateway key names (``[gateway_keys.<name>]``) whose requests' images are not kept.
    no_image_keys: list[str] = msgspec.field(default_factory=list)
    #: Images larger than this many bytes also get a thumbnail (at most 256 px a side).
    thumbnail_over_bytes: Size = 64 * 1024


class AdminSettings(Base):
    """``[admin]``: the admin key that ``GET /v1/logs`` and the web UI ask for.  One of the three;
    prefer ``key_env`` or ``key_file`` (``key`` puts a secret in the settings file)."""

    #: Environment variable holding the admin key.
    key_env: str | None = None
    #: File holding the admin key (surrounding whitespace dropped).
    key_file: str | None = None
    #: The admin key itself (discouraged).
    key: str | None = None
    #: With none of the three set and ``server.host`` a loopback address, the gateway makes an
    #: admin key of its own and keeps it in ``local_key_file`` (readable by its owner only; kept
    #: across restarts), so the web UI works on a first start.  Off, or listening beyond
    #: loopback, the admin routes stay off until a key is set.
    local_key: bool = True
    #: Where a key the gateway made is kept.
    local_key_file: str = msgspec.field(default_factory=default_local_key_file)
