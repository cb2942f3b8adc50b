"""The settings ``gateway demo`` runs the gateway with, on top of the operator's own.

The demo provider's base URL is its service's address; the log lines are console lines; and
when the request log and the web UI are installed (their settings sections are registered),
the request log is on, in a file of the demo's own, and an admin key is made for this run.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Where the demo keeps its request log and images: apart from a real gateway's.
DATA_DIR = os.path.join(os.environ.get("TMPDIR", "/tmp"), "gateway-demo")


@dataclass(frozen=True)
class DemoSettings:
    """The raw settings the demo runs with, and what the banner says about the admin key."""

    raw: dict[str, Any]
    #: The key made for this run (None: no ``[admin]`` section, or the operator's settings set one).
    admin_key: str | None
    #: Whether an admin key is set at all (made here, or the operator's).
    admin: bool


def demo_settings(raw: Mapping[str, Any], *, host: str | None, port: int | None, base_url: str,
                  sections: Mapping[str, type]) -> DemoSettings:
    """``raw`` with the demo's settings added; ``sections`` are the settings sections the
    plugins register (name to struct type)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    server = _section(out, "server")
    server.setdefault("host", "127.0.0.1")
    if host is not None:
        server["host"] = host
    if port is not None:
        server["port"] = port
    server["workers"] = 1
    _section(out, "logging").setdefault("format", "console")
    providers = _section(out, "providers")
    providers["demo"] = {**providers.get("demo", {}), "base_url": base_url}
    _section(out, "images").setdefault("directory", os.path.join(DATA_DIR, "images"))
    log = sections.get("request_log")
    if log is not None:
        fields = getattr(log, "__struct_fields__", ())
        request_log = _section(out, "request_log")
        if "enabled" in fields:
            request_log["enabled"] = True
        if "path" in fields:
            request_log.setdefault("path", os.path.join(DATA_DIR, "requests.sqlite3"))
    if "admin" not in sections:
        return DemoSettings(out, None, admin=False)
    if any(v is not None for v in _section(out, "admin").values()):
        return DemoSettings(out, None, admin=True)
    admin_key = secrets.token_urlsafe(24)
    out["admin"] = {"key": admin_key}
    return DemoSettings(out, admin_key, admin=True)


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """``raw[name]``, a new table when absent (a value that is not a table is left for validation)."""
    node = raw.setdefault(name, {})
    return node if isinstance(node, dict) else {}
