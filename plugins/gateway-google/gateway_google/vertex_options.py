"""Vertex AI's provider options: a config target's (or virtual key's) fields, and their
``x-portkey-vertex-*`` headers, under Portkey's names."""
from __future__ import annotations

import re
from typing import Any

import msgspec

from gateway_google.service_account import read_service_account

__all__ = ["DEFAULT_LOCATION", "HEADER_OPTIONS", "VertexOptions", "checked_location"]

#: Where a request goes when no region is named: the Gemini 3 image models are served on
#: Vertex AI's global endpoint (the google-genai SDK's default location too).
DEFAULT_LOCATION = "global"
HEADER_OPTIONS = {
    "x-portkey-vertex-project-id": "vertex_project_id",
    "x-portkey-vertex-region": "vertex_region",
    "x-portkey-vertex-service-account-json": "vertex_service_account_json",
}
# A location becomes part of a host name and a path, a project part of a path: letters,
# digits and dashes only (a legacy domain-scoped project also has ``.`` and ``:``).
_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,62}")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9.:-]{0,127}")


def checked_location(value: str) -> str:
    if not _LOCATION.fullmatch(value):
        raise ValueError(f"`vertex_region` {value!r} is not a Google Cloud location (such as global or us-central1)")
    return value


class VertexOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The project, region and service account of one Vertex AI target."""

    vertex_project_id: str | None = None
    #: A Google Cloud location: ``global`` (the default), ``us``/``eu`` (multi-region) or a region.
    vertex_region: str | None = None
    #: A service-account key: the key file's JSON as an object, or its text.
    vertex_service_account_json: dict[str, Any] | str | None = None

    def __post_init__(self) -> None:
        if self.vertex_region is not None:
            checked_location(self.vertex_region)
        if self.vertex_project_id is not None and not _PROJECT.fullmatch(self.vertex_project_id):
            raise ValueError(f"`vertex_project_id` {self.vertex_project_id!r} is not a Google Cloud project id")
        if self.vertex_service_account_json is not None:
            read_service_account(self.vertex_service_account_json)

    def __repr__(self) -> str:
        # The service account's key never shows, in a log line or a traceback.
        return f"VertexOptions(vertex_project_id={self.vertex_project_id!r}, vertex_region={self.vertex_region!r}, ...)"
