"""Who set an option of an attempt's target: the operator (a virtual key, a saved config)
or the caller (an inline config, the request's headers).

The gateway's own identity (a managed or workload identity) and a stored client secret
sign in only as the operator configured them: a caller may not pick the gateway's
identity, nor point a stored secret at another application, tenant or scope.

A virtual key's options are merged under the caller's (the caller's win), so an option is
the operator's when its value is the virtual key's own.  Every option of a saved config's
node is the operator's, except one the request also sends as a header (a saved config
without a provider takes the provider's headers).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.sdk import Attempt

from gateway_azure_openai.options import HEADER_OPTIONS, canonical

__all__ = ["operator_set"]

_HEADERS_OF: dict[str, list[str]] = {}
for _header, _option in HEADER_OPTIONS.items():
    _HEADERS_OF.setdefault(_option, []).append(_header)


def operator_set(attempt: Attempt, virtual_keys: Mapping[str, Any], name: str) -> bool:
    """Whether option ``name`` (as the attempt's target has it) is the operator's."""
    target = attempt.target
    value = _options(target.options).get(name)
    if target.saved and not any(attempt.inbound.headers.get(h) is not None for h in _HEADERS_OF.get(name, ())):
        return True
    vk = virtual_keys.get(target.virtual_key) if target.virtual_key is not None else None
    return vk is not None and value is not None and _options(getattr(vk, "options", {})).get(name) == value


def _options(options: dict[str, Any]) -> dict[str, Any]:
    try:
        return canonical(options)
    except ValueError:  # refused when the options were parsed; nothing is the operator's here
        return {}
