"""Bedrock's provider options (config target fields, ``x-portkey-aws-*`` headers) and settings."""
from __future__ import annotations

import re
from typing import Annotated

import msgspec

from gateway.sdk import ProviderSettings

__all__ = ["AUTH_TYPES", "DEFAULT_STS_ENDPOINT", "HEADER_OPTIONS", "ROLE_OPTIONS", "BedrockOptions", "BedrockSettings"]

#: ``aws_auth_type`` values: a Bedrock API key, the gateway's own AWS identity, or a role
#: assumed through STS.
AUTH_TYPES = ("apiKey", "serviceRole", "assumedRole")
#: STS's regional endpoint (AssumeRole is signed for the request's region).
DEFAULT_STS_ENDPOINT = "https://sts.{region}.amazonaws.com"
#: The options that say which role is assumed, and how.
ROLE_OPTIONS = ("aws_auth_type", "aws_role_arn", "aws_external_id", "aws_role_session_name",
                "aws_role_duration_seconds")
# IAM role ARNs (any partition; a path is allowed): arn:aws:iam::123456789012:role/path/name.
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# ExternalId and RoleSessionName as STS's AssumeRole reference constrains them.
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
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
    "x-portkey-aws-role-arn": "aws_role_arn",
    "x-portkey-aws-external-id": "aws_external_id",
}


class BedrockOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """AWS credentials and region for one target."""

    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_region: str | None = None
    #: ``apiKey``: send the provider key as a Bedrock API key even when AWS keys are
    #: present; ``serviceRole``: sign with the gateway's own AWS credentials;
    #: ``assumedRole``: sign with a role's temporary credentials (STS AssumeRole).
    aws_auth_type: Annotated[str, msgspec.Meta(
        description="apiKey, serviceRole (the gateway's own AWS identity) or assumedRole (STS AssumeRole)",
        extra_json_schema={"enum": list(AUTH_TYPES)})] | None = None
    #: ``assumedRole``: the role, the external id its trust policy may ask for, the session's
    #: name (default ``gateway``) and length in seconds (900 to 43200; default 3600).
    aws_role_arn: Annotated[str, msgspec.Meta(description="assumedRole: the IAM role's ARN")] | None = None
    aws_external_id: Annotated[str, msgspec.Meta(
        description="assumedRole: the external id the role's trust policy asks for")] | None = None
    aws_role_session_name: Annotated[str, msgspec.Meta(
        description="assumedRole: the session's name (default gateway)")] | None = None
    aws_role_duration_seconds: Annotated[int, msgspec.Meta(
        description="assumedRole: the session's length in seconds, 900 to 43200 (default 3600)")] | None = None
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
            raise ValueError(f"`aws_auth_type` must be one of {', '.join(AUTH_TYPES)}, not {self.aws_auth_type!r}")
        self._check_role()

    def _check_role(self) -> None:
        if self.aws_role_arn is not None and not _ROLE_ARN.match(self.aws_role_arn):
            raise ValueError(f"`aws_role_arn` {self.aws_role_arn[:120]!r} is not an IAM role ARN "
                             "(arn:aws:iam::123456789012:role/name)")
        if self.aws_external_id is not None and not _EXTERNAL_ID.match(self.aws_external_id):
            raise ValueError("`aws_external_id` must be 2 to 1224 letters, digits or +=,.@:/- characters")
        if self.aws_role_session_name is not None and not _SESSION_NAME.match(self.aws_role_session_name):
            raise ValueError("`aws_role_session_name` must be 2 to 64 letters, digits or +=,.@- characters")
        duration = self.aws_role_duration_seconds
        if duration is not None and not 900 <= duration <= 43200:
            raise ValueError("`aws_role_duration_seconds` must be between 900 and 43200")
        if self.aws_auth_type == "assumedRole" and not self.aws_role_arn:
            raise ValueError("`aws_auth_type` assumedRole needs `aws_role_arn` (header x-portkey-aws-role-arn)")

    def __repr__(self) -> str:
        # The secrets never show, in a log line or a traceback.
        return f"BedrockOptions(aws_access_key_id={self.aws_access_key_id!r}, aws_region={self.aws_region!r}, ...)"


class BedrockSettings(ProviderSettings):
    """``[providers.bedrock]``: ``base_url`` may hold ``{region}``
    (``https://bedrock-runtime.{region}.amazonaws.com.cn``)."""

    #: Whether a request that brings no credentials is signed with the gateway's own
    #: (environment, shared credentials file, container or instance role).
    environment_credentials: bool = True
    #: Where ``assumedRole`` calls STS AssumeRole; ``{region}`` is the request's region
    #: (``https://sts.{region}.amazonaws.com.cn`` in China, a VPC endpoint's URL, ...).
    sts_endpoint: str = DEFAULT_STS_ENDPOINT
    #: Seconds one AssumeRole call may take.
    sts_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30.0

    def __post_init__(self) -> None:
        if not _HTTP_URL.match(self.sts_endpoint):
            raise ValueError(f"`sts_endpoint` {self.sts_endpoint!r} is not an http(s) URL")
