"""Running a config tree: strategies (plugins) for inner nodes, the core for leaves.

``Router.run`` hands a node with ``targets`` to the strategy its ``strategy.mode``
names; a leaf runs with its retries (:meth:`Router.run_leaf`), each try one
:meth:`Router.attempt`: the target's virtual key and provider resolved, an
:class:`~gateway.attempt.Attempt` made, the request's endpoint pipeline run
(``endpoint.run``) within the attempt's time limit.
"""
from __future__ import annotations

import asyncio
import datetime
import email.utils
import time
from typing import TYPE_CHECKING, Any

import msgspec
from yarl import URL

from gateway import headers as h
from gateway.attempt import Attempt
from gateway.circuit import Circuits
from gateway.context import IMAGES_EDITS
from gateway.errors import BadRequest, CannotServe, GatewayError, UpstreamTimeout
from gateway.outcome import Outcome
from gateway.redact import scrub, shown
from gateway.ssrf import check_custom_host
from gateway.targets import StoredSecret
from gateway.upstream import Upstream

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.endpoints import Endpoint
    from gateway.provider import Provider
    from gateway.state import GatewayState
    from gateway.targets import Target

#: ``x-portkey-retry-attempt-count`` when a leaf's retries ran out still failing.
RETRIES_EXHAUSTED = -1


class Router:
    """Walks a resolved config: strategies for nodes with targets, endpoints for leaves."""

    def __init__(self, state: GatewayState, endpoints: dict[str, Endpoint]) -> None:
        self.state = state
        self.registry = state.registry
        self.endpoints = endpoints
        #: The circuit breakers of config targets (``strategy.cb_config``).
        self.circuits = Circuits(state)
        # Checked custom hosts by value: one client sends the same few over and over.
        self._hosts: dict[str, str] = {}
        self._homes: dict[str, str] = {}

    async def route(self, ctx: RequestContext, root: Target) -> Outcome:
        """Run a request's whole config: every leaf's custom host and credentials are
        checked first, so a tree that would send a stored credential to a host the caller
        chose is refused before any connection (not after its first leaves ran)."""
        if ctx.inbound.custom_host is not None or _has_custom_host(root):
            for leaf in _leaves(root):
                if leaf.virtual_key is not None and leaf.virtual_key not in self.state.virtual_keys:
                    continue  # an unknown virtual key is the attempt's error (a fallback may skip it)
                self._host_for(ctx, self.resolve_virtual_key(leaf), leaf)
        return await self.run(ctx, root)

    async def run(self, ctx: RequestContext, node: Target) -> Outcome:
        if node.targets:
            assert node.strategy is not None
            strategy = self.registry.strategy(node.strategy.mode)
            if node.cb_config is not None and strategy.circuit_breaker:
                # The strategy sees only the targets whose circuit is not open.
                return await self.circuits.route(ctx, node, strategy, self)
            return await strategy.route(ctx, node, self)
        outcome = await self.run_leaf(ctx, node)
        if node.cb_config is not None:
            await self.circuits.record(ctx, node, outcome)
        return outcome

    def resolve_virtual_key(self, target: Target) -> Target:
        """The target with its virtual key's provider, key and options filled in."""
        if target.virtual_key is None:
            return target
        vk = self.state.virtual_keys.get(target.virtual_key)
        if vk is None:
            raise CannotServe(f"Unknown virtual key {shown(target.virtual_key)}", param=h.VIRTUAL_KEY,
                              code="unknown_virtual_key")
        return msgspec.structs.replace(
            target, provider=target.provider or vk.provider, api_key=target.api_key or vk.api_key,
            options={**vk.options, **target.options},
        )

    def provider_for(self, ctx: RequestContext, target: Target) -> Provider:
        """The leaf's provider, or CannotServe when it is missing or lacks the endpoint."""
        if not target.provider:
            raise BadRequest(
                "No provider: send x-portkey-provider, or name `provider` in x-portkey-config",
                param=h.PROVIDER, code="missing_provider",
            )
        try:
            provider = self.registry.provider(target.provider)
        except BadRequest as e:  # not installed: a fallback may skip it
            raise CannotServe(e.message, param=e.param, code="unknown_provider") from None
        if not provider.supports(ctx.endpoint):
            raise CannotServe(
                f"Provider {provider.name!r} does not support {ctx.endpoint}", code="unsupported_endpoint",
                provider=provider.name,
            )
        return provider

    async def run_leaf(self, ctx: RequestContext, target: Target) -> Outcome:
        """A leaf with its retries: ``retry.attempts`` more tries on a retriable status,
        waiting 1 s, 2 s, 4 s, ... or what the provider's Retry-After headers ask."""
        retry = target.retry
        attempts = retry.attempts if retry is not None else 0
        codes = DEFAULT_RETRY_CODES
        if retry is not None and retry.on_status_codes is not None:
            codes = frozenset(retry.on_status_codes)
        retry_after_budget = MAX_RETRY_AFTER_S
        tries = 0
        while True:
            outcome = await self.attempt(ctx, target, tries)
            if tries >= attempts or outcome.status not in codes:
                break
            delay = float(2**tries)
            if retry is not None and retry.use_retry_after_header:
                asked = retry_after_seconds(outcome.headers)
                if asked is not None:
                    if asked >= retry_after_budget:
                        # The provider wants a longer pause than the budget allows: give up now.
                        tries = RETRIES_EXHAUSTED
                        break
                    retry_after_budget -= asked
                    delay = asked
            outcome.release()
            await self.state.sleep(delay)
            tries += 1
        if tries != RETRIES_EXHAUSTED and attempts and outcome.status in codes:
            tries = RETRIES_EXHAUSTED
        ctx.record.retry_count = tries
        return outcome

    async def attempt(self, ctx: RequestContext, target: Target, number: int = 0) -> Outcome:
        """One try of one leaf: resolve, make the attempt, run the endpoint pipeline in time."""
        original = target
        target = self.resolve_virtual_key(target)
        provider = self.provider_for(ctx, target)
        record = ctx.record
        record.provider = provider.name
        inbound = ctx.inbound
        host, chosen = self._host_for(ctx, target, original)
        attempt = Attempt(inbound, target, provider, number=number, custom_host=host)
        state = self.state
        upstream = Upstream(state.session, record, provider.name, spawn=state.spawn,
                            sleep=state.sleep, read_timeout=state.settings.upstream.read_timeout,
                            relay_timeout=state.relay_timeout, guarded=state.guarded_session,
                            home=None if chosen else self._home(attempt.base_url), policy=state.address_policy)
        endpoint = self.endpoints[ctx.endpoint]
        timeout_ms = attempt.timeout_ms
        t0 = time.perf_counter()
        try:
            if timeout_ms is None:
                outcome = await endpoint.run(ctx, attempt, upstream)
            else:
                async with asyncio.timeout(timeout_ms / 1000.0):
                    outcome = await endpoint.run(ctx, attempt, upstream)
        except TimeoutError:
            outcome = Outcome.from_error(UpstreamTimeout(timeout_ms or 0), provider=provider.name)
        except CannotServe:
            raise
        except GatewayError as e:
            if attempt.upstream is None:  # refused before anything was sent
                raise
            outcome = Outcome.from_error(e, provider=provider.name)
        if outcome.error is not None:
            # A provider may quote the key it was sent; that key may be a stored one.
            outcome.error.message = scrub(outcome.error.message, attempt.credentials())
        outcome.target_path = target.path
        outcome.target = target
        outcome.provider = outcome.provider or provider.name
        model = _sent_model(attempt)
        if model is not None:
            # The model sent upstream: a saved config's, an override's or the provider's default.
            record.model = model
        tried: dict[str, Any] = {"target": target.path, "provider": provider.name, "model": model, "attempt": number,
                                 "status": outcome.status, "ms": round((time.perf_counter() - t0) * 1000.0, 2),
                                 # When the try began, from the request's arrival (a trace's timeline).
                                 "start_ms": round((t0 - ctx.started) * 1000.0, 2)}
        if outcome.error is not None:
            tried["error"] = outcome.error.code or outcome.error.type
        record.attempts.append(tried)
        return outcome


    def _host_for(self, ctx: RequestContext, target: Target, original: Target) -> tuple[str | None, bool]:
        """The leaf's custom host, and whether the caller chose it (the header, or an inline
        config) rather than the operator (a saved config).  A caller's host is checked by
        the custom-host guard and may not receive a credential the caller did not send."""
        provider = self.registry.providers.get(target.provider or "")
        if provider is not None and provider.host_options and original.virtual_key is not None and not original.saved:
            self._stored_host_options(provider, original)
        header = ctx.inbound.custom_host
        host = header or target.custom_host
        if not host:
            return None, False
        if header is None and target.saved:
            return host.rstrip("/"), False
        host = self._checked_host(host)
        stored = stored_credential(original)
        if stored is not None:
            vk = self.state.virtual_keys.get(original.virtual_key) if original.virtual_key else None
            if vk is None or not vk.allows_host(host):
                raise BadRequest(
                    f"The custom host {host} was chosen by the request, and {stored} is not sent to a host the "
                    "request chose: send your own provider key with a custom host, or list the host in the "
                    "virtual key's allowed_custom_hosts", param=h.CUSTOM_HOST, code="custom_host_not_allowed")
        return host, True

    def _stored_host_options(self, provider: Provider, original: Target) -> None:
        """A virtual key's host-choosing options (Azure's resource) are its own: a request
        may repeat them, not change them."""
        vk = self.state.virtual_keys.get(original.virtual_key or "")
        if vk is None:
            return
        for name in provider.host_options:
            given = original.options.get(name)
            if given is not None and given != vk.options.get(name):
                raise BadRequest(
                    f"`{name}` chooses the host {provider.name} requests go to, and virtual key "
                    f"{original.virtual_key!r} sends its credential only to the {name} it names; drop the "
                    "option (or the header that sets it), or send your own provider key",
                    param=name, code="custom_host_not_allowed")

    def _checked_host(self, value: str) -> str:
        checked = self._hosts.get(value)
        if checked is None:
            checked = check_custom_host(value, self.state.address_policy)
            if len(self._hosts) >= 256:
                self._hosts.clear()
            self._hosts[value] = checked
        return checked

    def _home(self, base_url: str) -> str:
        """``scheme://host[:port]/`` of an operator-set base URL (memoized: a few providers)."""
        home = self._homes.get(base_url)
        if home is None:
            home = self._homes[base_url] = str(URL(base_url).origin()) + "/"
        return home


def stored_credential(leaf: Target) -> str | None:
    """What credential a leaf (as configured, before its virtual key is resolved) sends that
    the caller did not: a virtual key's, or a key written in a saved config; None when the
    credentials are the caller's own (or there are none)."""
    if leaf.virtual_key is not None:
        return f"the credential of virtual key {leaf.virtual_key!r}"
    if isinstance(leaf.api_key, StoredSecret):
        return "the provider key of the saved config"
    return None


def _leaves(node: Target) -> list[Target]:
    if not node.targets:
        return [node]
    return [leaf for child in node.targets for leaf in _leaves(child)]


def _has_custom_host(node: Target) -> bool:
    return node.custom_host is not None or any(_has_custom_host(child) for child in node.targets)


def needs_body_bytes(node: Target, cache_default: bool) -> bool:
    """Whether running ``node`` needs the request body whole: to send it more than
    once (retries, several targets), or to key a cache entry on it."""
    if node.targets or cache_default:
        return True
    return (node.retry is not None and node.retry.attempts > 0) or node.cache is not None


DEFAULT_RETRY_CODES = frozenset({429, 500, 502, 503, 504})
#: Total seconds of Retry-After waits one leaf may spend.
MAX_RETRY_AFTER_S = 60.0


def retry_after_seconds(headers) -> float | None:  # noqa: ANN001
    """Seconds the provider asked to wait: ``retry-after-ms``, ``x-ms-retry-after-ms``,
    then ``retry-after`` (seconds or an HTTP date)."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _sent_model(attempt: Attempt) -> str | None:
    """The model an attempt asked the provider for (after negotiation), else the model the
    provider declares it uses when none is named; None on the passthrough."""
    plan = attempt.plan
    if plan is not None and plan.parts and plan.parts[0].model:
        return plan.parts[0].model
    model = attempt.params.get("model")
    if isinstance(model, str):
        return model
    if plan is None:
        return None
    caps = attempt.provider.capabilities
    return caps.default_edit_model if attempt.endpoint == IMAGES_EDITS and caps.default_edit_model else caps.default_model
