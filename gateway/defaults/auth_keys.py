"""Stage 1 default: gateway keys from ``security.gateway_keys`` (open when none are set)."""
from __future__ import annotations

import hashlib
import hmac

from gateway import hookimpl
from gateway.context import RequestContext
from gateway.errors import AuthError
from gateway.headers import API_KEY
from gateway.registry import Registry
from gateway.services import Services
from gateway.settings import Settings

ANONYMOUS = "anonymous"


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Plugin:
    """Per app: the keys come from ``gateway_configure``."""

    keys: tuple[bytes, ...] = ()

    @hookimpl(trylast=True)
    def gateway_configure(self, settings: Settings, registry: Registry, services: Services) -> None:
        self.keys = tuple(key.encode() for key in settings.security.gateway_keys)

    @hookimpl(trylast=True)
    def gateway_authenticate(self, ctx: RequestContext) -> str:
        if not self.keys:
            return ANONYMOUS
        given = ctx.headers.get(API_KEY)
        if not given:
            raise AuthError("Missing gateway key: send it in the x-portkey-api-key header", param=API_KEY,
                            code="missing_api_key")
        # Compare against every key in constant time so timing reveals nothing.
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(given.encode(), key)
        if not ok:
            raise AuthError("Invalid gateway key in x-portkey-api-key", param=API_KEY, code="invalid_api_key")
        return "key:" + _fingerprint(given)
