"""The ``[ui]`` settings section (registered by the built-in plugin :mod:`gateway.defaults.ui`)."""
from __future__ import annotations

from gateway.settings import Base, Seconds


class UiSettings(Base):
    """``[ui]``: the web UI at ``/ui`` (the request log's pages, behind the ``[admin]`` key)."""

    #: Off: no ``/ui`` routes (``/ui`` answers the gateway's JSON 404).
    enabled: bool = True
    #: Seconds a sign-in lasts.
    session_ttl: Seconds = 8 * 3600.0
