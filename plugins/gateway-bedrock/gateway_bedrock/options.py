"""Bedrock's provider options (config target fields, ``x-portkey-aws-*`` headers) and settings."""
from __future__ import annotations

import re

import msgspec

from gateway.sdk import ProviderSettings

__all__ = ["AUTH_TYPES", "HEADER_OPTIONS", "BedrockOptions", "BedrockSettings"]

#: ``aws_auth_type`` values: a Bedrock API key, or the gateway's own AWS identity.
AUTH_TYPES = ("apiKey", "serviceRole")
# A region becomes part of a host name: letters, digits and dashes only, so that no
# value can point a signed request (or a bearer key) at another host.
_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")

HEADER_OPTIONS = {
    "x-portkey-aws-access-key-id": "aws_access_key_id",
    "x-portkey-aws-secret-access-key": "aws_secret_access_key",
    "x-portkey-aws-session-token": "aws_session_token",
    "x-portkey-aws-region": "aws_region",
    "x-portkey-aws-auth-type": "aws_auth_type",
    "x-portkey-aws-bedrock-model": "aws_bedrock_model",
}


class BedrockOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """AWS credentials and region for one target."""

    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_region: str | None = None
    #: ``apiKey``: send the provider key as a Bedrock API key even when AWS keys are
    #: present; ``serviceRole``: sign with the gateway's own AWS credentials.
    aws_auth_type: str | None = None
    #: The foundation model behind a ``model`` that does not name it (an application
    #: inference profile ARN): selects the request dialect.
    aws_bedrock_model: str | None = None

    def __post_init__(self) -> None:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("`aws_access_key_id` and `aws_secret_access_key` must be given together")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise ValueError("`aws_session_token` needs `aws_access_key_id` and `aws_secret_access_key`")
        if self.aws_region is not None and not _REGION.match(self.aws_region):
            raise ValueError(f"`aws_region` {self.aws_region!r} is not an AWS region name (such as us-east-1)")
        if self.aws_auth_type is not None and self.aws_auth_type not in AUTH_TYPES:
            hint = " (assuming a role is not supported)" if self.aws_auth_type == "assumedRole" else ""
            raise ValueError(f"`aws_auth_type` must be one of {', '.join(AUTH_TYPES)}, "
                             f"not {self.aws_auth_type!r}{hint}")

    def __repr__(self) -> str:
        # The secrets never show, in a log line or a traceback.
        return f"BedrockOptions(aws_access_key_id={self.aws_access_key_id!r}, aws_region={self.aws_region!r}, ...)"


class BedrockSettings(ProviderSettings):
    """``[providers.bedrock]``: ``base_url`` may hold ``{region}``
    (``https://bedrock-runtime.{region}.amazonaws.com.cn``)."""

    #: Whether a request that brings no credentials is signed with the gateway's own
    #: (environment, shared credentials file, container or instance role).
    environment_credentials: bool = True
