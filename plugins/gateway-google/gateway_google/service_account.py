"""A Google service-account key (the JSON file IAM hands out), read and checked.

Only what the token exchange needs is kept: ``client_email`` (the JWT's issuer), ``private_key``
(signs it), ``private_key_id``, ``token_uri`` (where the JWT is exchanged for an access token) and
``project_id`` (the Vertex project when none is named).  Errors name the field, never its value.
"""
from __future__ import annotations

import hashlib
from typing import Any

import msgspec

__all__ = ["GOOGLE_TOKEN_URI", "ServiceAccount", "read_service_account"]

#: Google's OAuth 2.0 token endpoint: the JWT's audience, and the default ``token_uri``.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_json = msgspec.json.Decoder()
#: Where the option is named in errors.
FIELD = "vertex_service_account_json"


class ServiceAccount(msgspec.Struct, frozen=True):
    client_email: str
    private_key: str
    private_key_id: str | None
    token_uri: str
    project_id: str | None

    def __repr__(self) -> str:
        # The private key never shows, in a log line or a traceback.
        return f"ServiceAccount({self.client_email!r})"

    @property
    def cache_key(self) -> str:
        """What a cached access token is kept under: the account, and a digest of its key and
        token endpoint.  The private key is part of it: a caller who knows an account's email
        and key id (neither is secret) must not be handed a token minted for someone else."""
        material = "\0".join((self.client_email, self.private_key_id or "", self.private_key, self.token_uri))
        return f"{self.client_email}/{hashlib.sha256(material.encode()).hexdigest()}"


def read_service_account(value: Any) -> ServiceAccount:
    """A service-account key from its JSON (an object, or the file's text); ``ValueError``
    naming the problem otherwise."""
    if isinstance(value, str):
        try:
            value = _json.decode(value.encode())
        except msgspec.DecodeError:
            raise ValueError(f"`{FIELD}` is not valid JSON (paste the key file's whole text)") from None
    if not isinstance(value, dict):
        raise ValueError(f"`{FIELD}` must be a service-account key: a JSON object")
    kind = value.get("type", "service_account")
    if kind != "service_account":
        raise ValueError(f"`{FIELD}` has `type` {kind!r}: only a service-account key "
                         "(`type: service_account`) is taken")
    for name in ("client_email", "private_key"):
        if not isinstance(value.get(name), str) or not value[name].strip():
            raise ValueError(f"`{FIELD}` has no `{name}`")
    token_uri = value.get("token_uri") or GOOGLE_TOKEN_URI
    if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
        raise ValueError(f"`{FIELD}` has a `token_uri` that is not an http(s) URL")
    key_id, project = value.get("private_key_id"), value.get("project_id")
    return ServiceAccount(
        client_email=value["client_email"].strip(), private_key=value["private_key"],
        private_key_id=key_id if isinstance(key_id, str) else None, token_uri=token_uri,
        project_id=project if isinstance(project, str) and project else None)
