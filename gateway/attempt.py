"""One attempt at one leaf target: plain data a provider builds its requests from.

The router makes an :class:`Attempt` per try of a leaf (a retry is a new
attempt); the endpoint pipeline fills in ``plan`` (generations) and
``upstream`` (the request about to go out).  Everything is computed once here:
the merged parameters, the provider options, the base URL after the custom-host
check, the time limit and strict mode.  A provider reads it and never changes
it, apart from what its own methods document.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway import headers as h
from gateway.redact import is_credential_name

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import Inbound
    from gateway.generation import GenerationPlan
    from gateway.provider import Provider, UpstreamRequest
    from gateway.targets import Target


class Attempt:
    """What one try of one leaf target sends, and to whom."""

    __slots__ = ("inbound", "target", "provider", "number", "options", "base_url", "custom_host", "timeout_ms",
                 "strict_params", "params", "plan", "upstream")

    def __init__(self, inbound: Inbound, target: Target, provider: Provider, *, number: int = 0,
                 custom_host: str | None = None, options: Any = None) -> None:
        #: The client's request (read only).
        self.inbound = inbound
        self.target = target
        self.provider = provider
        #: 0 for the first try, 1 for the first retry, ...
        self.number = number
        #: The target's provider options as ``provider.Options``.
        self.options = options if options is not None else provider.parse_options(target)
        #: A base URL the caller or the config chose instead of the provider's (checked
        #: against the SSRF guard by the router), or None.
        self.custom_host = custom_host
        #: Where requests go: the custom host, else the provider's base URL.
        self.base_url = custom_host or provider.base_url
        #: This attempt's time limit in ms (``x-portkey-request-timeout`` or ``request_timeout``).
        self.timeout_ms = inbound.timeout_ms if inbound.timeout_ms is not None else target.request_timeout
        #: A parameter value the model does not take is a 400 (not mapped to the nearest).
        self.strict_params = (inbound.strict_params if inbound.strict_params is not None
                              else bool(target.strict_params))
        #: The unified request body with the target's ``override_params`` merged in.
        self.params: dict[str, Any] = (
            {**inbound.params, **target.override_params} if target.override_params else inbound.params
        )
        #: images.generations: the negotiated plan (one request per upstream call).
        self.plan: GenerationPlan | None = None
        #: The upstream request as built (and as transform plugins left it).
        self.upstream: UpstreamRequest | None = None

    @property
    def api_key(self) -> str | None:
        return self.target.api_key

    def credentials(self) -> list[str]:
        """Every credential this attempt sent: its key, the credential options of its target
        (``aws_secret_access_key``), and the values of the upstream request's credential
        headers (with and without their ``Bearer`` scheme): what a provider's error message
        must not carry back out."""
        out = [str(self.api_key)] if self.api_key else []
        out.extend(str(v) for k, v in self.target.options.items() if is_credential_name(k) and isinstance(v, str))
        if self.upstream is not None:
            for name, value in self.upstream.headers.items():
                if is_credential_name(name):
                    out.append(value)
                    out.append(value.partition(" ")[2])
        return out

    @property
    def endpoint(self) -> str:
        return self.inbound.endpoint

    def forwarded_headers(self) -> dict[str, str]:
        """Client headers the caller or config asked to forward (unified routes)."""
        headers = self.inbound.headers
        names = headers.get(h.FORWARD_HEADERS)
        wanted = [n.strip() for n in names.split(",")] if names else (self.target.forward_headers or [])
        out = {}
        for name in wanted:
            low = name.lower()
            if not low or low.startswith(h.PREFIX) or low in h.REQUEST_DROP:
                continue
            value = headers.get(name)
            if value is not None:
                out[name] = value
        return out

    def sibling(self, upstream: UpstreamRequest) -> Attempt:
        """The same attempt sending another request (``n`` split over parallel calls)."""
        other = Attempt.__new__(Attempt)
        for name in Attempt.__slots__:
            setattr(other, name, getattr(self, name))
        other.upstream = upstream
        return other

