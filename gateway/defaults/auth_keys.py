"""Stage 1 default: gateway keys from ``security.gateway_keys`` (open when none are set)."""
from __future__ import annotations

import hashlib
import hmac

from gateway import hookimpl
from gateway.context import RequestContext
from gateway.errors import AuthError
from gateway.headers import API_KEY

ANONYMOUS = "anonymous"


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@hookimpl(trylast=True)
def gateway_authenticate(ctx: RequestContext) -> str:
    keys = ctx.gateway.settings.security.gateway_keys
    if not keys:
        return ANONYMOUS
    given = ctx.headers.get(API_KEY)
    if not given:
        raise AuthError("Missing gateway key: send it in the x-portkey-api-key header", param=API_KEY,
                        code="missing_api_key")
    # Compare against every key in constant time so timing reveals nothing.
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given.encode(), key.encode())
    if not ok:
        raise AuthError("Invalid gateway key in x-portkey-api-key", param=API_KEY, code="invalid_api_key")
    return "key:" + _fingerprint(given)
