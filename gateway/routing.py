"""Running a config tree: strategies (plugins) for inner nodes, the core for leaves."""
from __future__ import annotations

import asyncio
import datetime
import email.utils
import inspect
import time
from typing import TYPE_CHECKING, ClassVar

import msgspec

from gateway import headers as h
from gateway.errors import BadRequest, GatewayError, UpstreamTimeout
from gateway.outcome import Outcome
from gateway.provider import Call

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.targets import Target


class CannotServe(BadRequest):
    """A target that cannot serve this request at all (provider not installed,
    endpoint not supported).  A fallback skips such a target."""

    code = "target_cannot_serve"


class RoutingStrategy:
    """Base class of routing strategies (``strategy.mode`` values), shipped as plugins."""

    #: The ``strategy.mode`` value.
    name: ClassVar[str] = ""

    def validate(self, node: Target, source: str) -> None:
        """Check a node using this strategy; raise ``ConfigError`` naming the path."""

    async def route(self, ctx: RequestContext, node: Target, router: Router) -> Outcome:
        """Produce the node's outcome, calling ``router.run(ctx, child)`` for children."""
        raise NotImplementedError


class Router:
    """Walks a resolved config: strategies for nodes with targets, providers for leaves."""

    def __init__(self, registry, chain) -> None:  # noqa: ANN001 - avoid import cycles
        self.registry = registry
        self.chain = chain

    async def run(self, ctx: RequestContext, node: Target) -> Outcome:
        if node.targets:
            return await self.registry.strategy(node.strategy.mode).route(ctx, node, self)
        return await self.run_leaf(ctx, node)

    def resolve_virtual_key(self, ctx: RequestContext, target: Target) -> Target:
        """A leaf naming ``virtual_key`` gets the key's provider, secret and options."""
        if target.virtual_key is None:
            return target
        vk = ctx.gateway.virtual_keys.get(target.virtual_key)
        if vk is None:
            raise CannotServe(f"Unknown virtual key {target.virtual_key!r}", param=h.VIRTUAL_KEY,
                              code="unknown_virtual_key")
        return msgspec.structs.replace(
            target, provider=target.provider or vk.provider, api_key=target.api_key or vk.api_key,
            options={**vk.options, **target.options},
        )

    def provider_for(self, ctx: RequestContext, target: Target):  # noqa: ANN201
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
                        tries = -1
                        break
                    retry_after_budget -= asked
                    delay = asked
            outcome.release()
            await ctx.gateway.sleep(delay)
            tries += 1
        if tries != -1 and attempts and outcome.status in codes:
            tries = -1  # retries exhausted, still failing
        ctx.retry_count = tries
        return outcome

    async def attempt(self, ctx: RequestContext, target: Target, attempt: int = 0) -> Outcome:
        """One attempt at one leaf: build, cache lookup, transform, send, read."""
        target = self.resolve_virtual_key(ctx, target)
        provider = self.provider_for(ctx, target)
        ctx.provider = provider.name
        call = Call(ctx, target, provider, attempt)
        built = provider.build_request(call)
        call.upstream = await built if inspect.isawaitable(built) else built
        if self.chain.has_impls("gateway_cache_lookup"):
            cached = await self.chain.gateway_cache_lookup(ctx=ctx, call=call)
            if cached is not None:
                cached.target_path = target.path
                return cached
        if self.chain.has_impls("gateway_transform_request"):
            await self.chain.gateway_transform_request(ctx=ctx, call=call)
        timeout_ms = attempt_timeout_ms(ctx, target)
        t0 = time.perf_counter()
        try:
            if timeout_ms is None:
                outcome = await provider.execute(call)
            else:
                async with asyncio.timeout(timeout_ms / 1000.0):
                    outcome = await provider.execute(call)
        except TimeoutError:
            outcome = Outcome.from_error(UpstreamTimeout(timeout_ms), provider=provider.name)
        except GatewayError as e:
            outcome = Outcome.from_error(e, provider=provider.name)
        outcome.target_path = target.path
        outcome.provider = outcome.provider or provider.name
        if call.cache is not None and outcome.ok:
            outcome.cache = call.cache
        ctx.attempts.append(
            {"target": target.path, "provider": provider.name, "attempt": attempt, "status": outcome.status,
             "ms": round((time.perf_counter() - t0) * 1000.0, 2)}
        )
        return outcome


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


def attempt_timeout_ms(ctx: RequestContext, target: Target) -> int | None:
    raw = ctx.headers.get(h.REQUEST_TIMEOUT)
    if raw is not None:
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(
                f"Invalid x-portkey-request-timeout {raw!r}: expected a positive whole number of milliseconds",
                param=h.REQUEST_TIMEOUT, code="invalid_request_timeout",
            ) from None
        if value <= 0:
            raise BadRequest(
                "Invalid x-portkey-request-timeout: expected a positive whole number of milliseconds",
                param=h.REQUEST_TIMEOUT, code="invalid_request_timeout",
            )
        return value
    return target.request_timeout
