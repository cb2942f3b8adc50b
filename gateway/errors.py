"""Gateway errors: each knows its HTTP status and renders as OpenAI's error shape."""
from __future__ import annotations

from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode


class StartupError(Exception):
    """The gateway cannot start: bad settings, a broken plugin set.  Printed, never served."""


class GatewayError(Exception):
    """An error answered to the client as ``{"error": {...}, "provider"?}``."""

    status = 500
    type = "gateway_error"
    #: A subclass may name its code once here; an instance's ``code=`` wins.
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        provider: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.param = param
        if code is not None:
            self.code = code
        self.provider = provider
        #: Headers added to the error answer.
        self.headers = headers or {}
        #: The provider's answer headers, for an error the provider answered (``Retry-After``
        #: and rate-limit state go back to the client; a retry reads them).
        self.upstream_headers: Any = None

    def body(self) -> dict[str, Any]:
        err = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        out: dict[str, Any] = {"error": err}
        if self.provider:
            out["provider"] = self.provider
        return out

    def encode(self) -> bytes:
        return _encode(self.body())


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class ConfigError(BadRequest):
    """A bad ``x-portkey-config`` (or saved config); names the config and the field path."""

    code = "invalid_config"


class AuthError(GatewayError):
    status = 401
    type = "authentication_error"


class Forbidden(GatewayError):
    """The caller's gateway key may not do this (a virtual key, config, provider it is not given)."""

    status = 403
    type = "permission_error"


class RateLimited(GatewayError):
    """A gateway key's rate limit or budget is used up; ``Retry-After`` says until when."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_content_type"


class UpstreamError(GatewayError):
    """The provider could not be reached, or answered something unusable."""

    status = 502
    type = "upstream_error"


class UpstreamTimeout(GatewayError):
    """A per-attempt timeout; the body is Portkey's 408 shape."""

    status = 408
    type = "timeout_error"

    def __init__(self, timeout_ms: int) -> None:
        super().__init__(f"Request exceeded the timeout sent in the request: {timeout_ms}ms")
        self.timeout_ms = timeout_ms


class ProviderError(GatewayError):
    """An error answered by the provider, with its status and message kept."""

    type = "provider_error"


class CannotServe(BadRequest):
    """A target that cannot serve this request at all (provider not installed,
    endpoint not supported, a parameter value it cannot take).  A fallback skips
    such a target."""

    code = "target_cannot_serve"


class BadParam(CannotServe):
    """A parameter value this target cannot take (strict mode, or never valid).

    A fallback moves on to the next target: another provider may take it."""

    code = "unsupported_parameter_value"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message, param=param)


#: The one error code every provider's content-policy refusal carries.
CONTENT_POLICY = "content_policy_violation"


class MalformedAnswer(UpstreamError):
    """A 2xx provider answer that is not what the provider's API documents."""

    code = "invalid_provider_response"

    def __init__(self, provider: str, what: str, body: bytes | None = None) -> None:
        snippet = ""
        if body is not None:
            text = body[:200].decode("utf-8", "replace").strip()
            snippet = f": {text}{'...' if len(body) > 200 else ''}" if text else ": empty body"
        super().__init__(f"Invalid response from {provider}: {what}{snippet}", provider=provider)


class ContentPolicyViolation(ProviderError):
    """The provider refused the prompt or filtered the image."""

    type = "invalid_request_error"
    code = CONTENT_POLICY

    def __init__(self, provider: str, message: str, status: int = 400) -> None:
        super().__init__(f"{provider} error: {message}", status=status, provider=provider)
