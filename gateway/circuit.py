"""Circuit breakers of config targets (``strategy.cb_config``), for every routing strategy.

A node's ``strategy.cb_config`` (or the nearest ancestor's: it is inherited) watches the
leaves below it.  Each leaf's final outcome (after its retries) is counted: a status in
``failure_status_codes`` (default: 429 and every 5xx) is a failure, a 2xx a success, any
other status neither.  Counts run in a fixed window of ``cooldown_interval`` that starts at
the first counted outcome.  When the failures reach ``failure_threshold``, or their share
of at least ``minimum_requests`` outcomes reaches ``failure_threshold_percentage``, the
circuit opens: the target is left out of its node for ``cooldown_interval`` ms.  Then it is
half-open: one request (the trial) may use it; the trial's success closes the circuit (its
counts start over), a failure opens it for another cooldown.  Outcomes that arrive while a
circuit is open and cooling down (requests already under way) change nothing.

Before a node's strategy runs, :meth:`Circuits.route` hands it the node without the
children whose circuit is open (a child with targets is open when every leaf below it is);
when every child is open (or every child left has ``weight`` 0), it gets them all.  A
strategy that picks its target by rule (``RoutingStrategy.circuit_breaker = False``:
``conditional``) is handed every child.

A target is identified by what it sends, not by where it sits: its provider, virtual key,
a hash of its API key, custom host, provider options and ``override_params``.  Two configs
naming the same target share its circuit (the upstream's health does not depend on the
config that reached it); each applies its own thresholds.  Only a SHA-256 of that identity
is stored.

State lives in the cache backend when it offers ``circuit_check``, ``circuit_record`` and
``circuit_release`` (atomic: the ``redis`` backend runs Lua scripts), so every instance
sharing it sees one circuit; otherwise in this process's memory (:class:`MemoryCircuits`).
When the shared store fails or is slower than ``cache.op_timeout``, this instance keeps its
circuits in memory until the store answers again (logged once: ``circuit.unavailable``).
Transitions are logged (``circuit.opened``, ``circuit.closed``, ``circuit.half_open``) and
counted (``gateway_circuit_transitions_total``).
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import msgspec
import structlog
from msgspec import Meta

from gateway.context import StashKey

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext
    from gateway.outcome import Outcome
    from gateway.services import Services
    from gateway.strategy import Router, RoutingStrategy
    from gateway.targets import Target

_log = structlog.get_logger("gateway.circuit")

#: Portkey's floor on ``cooldown_interval`` (milliseconds).
MIN_COOLDOWN_MS = 30_000
MAX_COOLDOWN_MS = 86_400_000
#: Failures unless ``failure_status_codes`` says otherwise: rate limits and server errors.
DEFAULT_FAILURE_CODES = frozenset({429, *range(500, 600)})

# Circuit states as the stores answer them.
CLOSED, OPEN, HALF_OPEN = 0, 1, 2
# What one outcome was, for the stores.
NEUTRAL, SUCCESS, FAILURE = 0, 1, 2
# Transitions a record made.
NO_CHANGE, OPENED, CLOSED_AGAIN = 0, 1, 2
#: Milliseconds a circuit's state outlives the moment it could last matter.
STATE_MARGIN_MS = 60_000

#: Trials this request holds: target key -> token.
_TRIALS: StashKey[dict[str, str]] = StashKey("circuit.trials")
_identity = msgspec.json.Encoder(order="sorted", enc_hook=str).encode


class CircuitBreakerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``strategy.cb_config`` (Portkey 2.x's field names and units)."""

    #: Failures in the window that open the circuit.
    failure_threshold: Annotated[int, Meta(ge=1)] | None = None
    #: Failure share (percent) of the window's outcomes that opens the circuit, once there are
    #: ``minimum_requests`` of them.
    failure_threshold_percentage: Annotated[float, Meta(gt=0, le=100)] | None = None
    #: Milliseconds a circuit stays open (and the length of the counting window); at least 30000.
    cooldown_interval: Annotated[int, Meta(ge=MIN_COOLDOWN_MS, le=MAX_COOLDOWN_MS)]
    #: Statuses that count as failures (default: 429 and 500-599).
    failure_status_codes: list[Annotated[int, Meta(ge=100, le=599)]] | None = None
    #: Outcomes needed before ``failure_threshold_percentage`` is looked at (Portkey's default: 5).
    minimum_requests: Annotated[int, Meta(ge=1)] = 5

    def __post_init__(self) -> None:
        if self.failure_threshold is None and self.failure_threshold_percentage is None:
            raise ValueError("`cb_config` needs `failure_threshold` or `failure_threshold_percentage`")

    def result(self, outcome: Outcome) -> int:
        """FAILURE, SUCCESS or NEUTRAL for one leaf's final outcome."""
        codes = self.failure_status_codes
        if outcome.status in (DEFAULT_FAILURE_CODES if codes is None else codes):
            return FAILURE
        return SUCCESS if outcome.ok else NEUTRAL


class CircuitStore(Protocol):
    """What holds circuits (duck-typed on the cache backend; :class:`MemoryCircuits` otherwise).
    Times are Unix milliseconds from the caller's clock.  Each call is atomic."""

    async def circuit_check(self, key: str, now: int, trial_ms: int, token: str) -> int:
        """CLOSED, OPEN, or HALF_OPEN: cooled down and no trial under way.  With a ``token``
        a HALF_OPEN answer makes the caller the trial for ``trial_ms`` (others get OPEN);
        without one it only looks."""

    async def circuit_record(self, key: str, now: int, result: int, window_ms: int, cooldown_ms: int,
                             threshold: int, percentage: float, minimum: int, token: str) -> tuple[int, int, int]:
        """Count one outcome; ``(transition, requests, failures)``.  Closed: count it in the window
        and open when a threshold (0: none) is reached.  Open and cooling down: nothing.  Open and
        cooled down: a success closes, a failure opens again, anything else ends ``token``'s trial."""

    async def circuit_release(self, key: str, token: str) -> None:
        """End ``token``'s trial unused, so another request may be it."""


class MemoryCircuits:
    """Circuits in this process's memory (the same rules as the ``redis`` backend's scripts).
    Atomic because nothing awaits inside a call."""

    def __init__(self) -> None:
        self._states: dict[str, dict[str, Any]] = {}
        self._next_sweep = 0

    def _live(self, key: str, now: int) -> dict[str, Any] | None:
        if now >= self._next_sweep:
            self._states = {k: v for k, v in self._states.items() if v["expires"] > now}
            self._next_sweep = now + STATE_MARGIN_MS
        state = self._states.get(key)
        if state is not None and state["expires"] <= now:
            del self._states[key]
            return None
        return state

    async def circuit_check(self, key: str, now: int, trial_ms: int, token: str) -> int:
        state = self._live(key, now)
        if state is None or not state["open"]:
            return CLOSED
        if now < state["until"] or (state.get("trial") and state["trial_until"] > now):
            return OPEN
        if token:
            state.update(trial=token, trial_until=now + trial_ms)
            state["expires"] = max(state["expires"], now + 2 * trial_ms + STATE_MARGIN_MS)
        return HALF_OPEN

    async def circuit_record(self, key: str, now: int, result: int, window_ms: int, cooldown_ms: int,
                             threshold: int, percentage: float, minimum: int, token: str) -> tuple[int, int, int]:
        state = self._live(key, now)
        if state is not None and state["open"]:
            if now < state["until"]:
                return NO_CHANGE, 0, 0
            if result == SUCCESS:
                del self._states[key]
                return CLOSED_AGAIN, state["requests"], state["failures"]
            if result == FAILURE:
                state.update(until=now + cooldown_ms, trial=None, expires=now + 2 * cooldown_ms + STATE_MARGIN_MS)
                return OPENED, state["requests"], state["failures"]
            if token and state.get("trial") == token:
                state["trial"] = None
            return NO_CHANGE, 0, 0
        if result == NEUTRAL:
            return NO_CHANGE, 0, 0
        if state is None or now - state["start"] >= window_ms:
            state = self._states[key] = {"open": False, "requests": 0, "failures": 0, "start": now}
        state["requests"] += 1
        state["failures"] += result == FAILURE
        n, f = state["requests"], state["failures"]
        if (threshold and f >= threshold) or (percentage and n >= minimum and 100 * f >= percentage * n):
            state.update(open=True, until=now + cooldown_ms, trial=None,
                         expires=now + 2 * cooldown_ms + STATE_MARGIN_MS)
            return OPENED, n, f
        state["expires"] = state["start"] + window_ms + STATE_MARGIN_MS
        return NO_CHANGE, n, f

    async def circuit_release(self, key: str, token: str) -> None:
        state = self._states.get(key)
        if state is not None and state.get("trial") == token:
            state["trial"] = None


def target_key(leaf: Target) -> str:
    """``cb:`` and a SHA-256 of what the leaf sends (memoized on the leaf)."""
    key = getattr(leaf, "_circuit_key", None)
    if key is None:
        what = [leaf.provider, leaf.virtual_key, leaf.api_key, leaf.custom_host, leaf.options, leaf.override_params]
        key = "cb:" + hashlib.sha256(_identity(what)).hexdigest()
        leaf._circuit_key = key  # type: ignore[attr-defined]
    return key


class Circuits:
    """One app's circuit breakers: which children of a node run, and what their outcomes did."""

    def __init__(self, services: Services, *, retry_after: float = 5.0) -> None:
        self.services = services
        self.local = MemoryCircuits()
        #: Wall-clock seconds (instances compare times); tests swap it to move time.
        self.clock = time.time
        self.retry_after = retry_after
        self._down_until = 0.0
        self._outage = False

    async def route(self, ctx: RequestContext, node: Target, strategy: RoutingStrategy, router: Router) -> Outcome:
        """``strategy.route`` over the children of ``node`` whose circuit is not open."""
        view, claimed = await self._select(ctx, node)
        try:
            return await strategy.route(ctx, view, router)
        finally:
            trials = ctx.stash.get(_TRIALS) or {}
            for key in claimed:
                token = trials.pop(key, None)
                if token is not None:  # a trial this request claimed and did not use
                    await self._call("circuit_release", key, token)

    async def record(self, ctx: RequestContext, leaf: Target, outcome: Outcome) -> None:
        """Count a leaf's final outcome under its (inherited) ``cb_config``."""
        cb = leaf.cb_config
        assert cb is not None
        result = cb.result(outcome)
        key = target_key(leaf)
        token = (ctx.stash.get(_TRIALS) or {}).pop(key, "")
        if result == NEUTRAL and not token:
            return
        transition, requests, failures = await self._call(
            "circuit_record", key, self._now(), result, cb.cooldown_interval, cb.cooldown_interval,
            cb.failure_threshold or 0, cb.failure_threshold_percentage or 0, cb.minimum_requests, token)
        if transition == OPENED:
            self._transition("open", leaf, key, requests=requests, failures=failures,
                             cooldown_ms=cb.cooldown_interval, trial=bool(token))
        elif transition == CLOSED_AGAIN:
            self._transition("closed", leaf, key, trial=bool(token))

    # -- choosing children -------------------------------------------------------------------
    async def _select(self, ctx: RequestContext, node: Target) -> tuple[Target, list[str]]:
        now = self._now()
        trials = ctx.stash.setdefault(_TRIALS, {})
        before = set(trials)
        opened = await asyncio.gather(*(self._is_open(child, now, trials) for child in node.targets))
        claimed = [key for key in trials if key not in before]
        usable = tuple(child for child, is_open in zip(node.targets, opened) if not is_open)
        if len(usable) == len(node.targets) or not any(child.weight > 0 for child in usable):
            return node, claimed  # every circuit open (or every one a draw could pick): the breaker steps aside
        return msgspec.structs.replace(node, targets=usable), claimed

    async def _is_open(self, child: Target, now: int, trials: dict[str, str] | None) -> bool:
        """A leaf: its circuit is open (a half-open one is claimed for this request as its trial
        when ``trials`` is given).  A node: every leaf below it is open."""
        if child.targets:
            below = await asyncio.gather(*(self._is_open(c, now, None) for c in child.targets))
            return all(below)
        cb = child.cb_config
        if cb is None:
            return False
        key = target_key(child)
        if trials is not None and key in trials:
            return False
        token = os.urandom(8).hex() if trials is not None else ""
        state = await self._call("circuit_check", key, now, cb.cooldown_interval, token)
        if state == HALF_OPEN and token:
            trials[key] = token  # type: ignore[index]
            _log.info("circuit.half_open", target=child.path, provider=self._provider(child), circuit=key[3:15])
        return state == OPEN

    # -- the store ---------------------------------------------------------------------------
    def _now(self) -> int:
        return int(self.clock() * 1000)

    def shared(self) -> CircuitStore | None:
        """The cache backend, when it keeps circuits (it exists once the app runs)."""
        backend = getattr(self.services.cache, "backend", None)
        return backend if hasattr(backend, "circuit_check") else None  # type: ignore[return-value]

    async def _call(self, method: str, *args: Any) -> Any:
        store = self.shared()
        if store is not None and not (self._outage and time.monotonic() < self._down_until):
            try:
                async with asyncio.timeout(self.services.settings.cache.op_timeout):
                    result = await getattr(store, method)(*args)
            except Exception as e:  # any store failure: this instance's memory until it is back
                self._down_until = time.monotonic() + self.retry_after
                if not self._outage:
                    self._outage = True
                    _log.warning("circuit.unavailable", store=type(store).__name__,
                                 error=f"{e.__class__.__name__}: {e}"[:300])
            else:
                if self._outage:
                    self._outage = False
                    _log.info("circuit.recovered", store=type(store).__name__)
                return result
        return await getattr(self.local, method)(*args)

    # -- telling -----------------------------------------------------------------------------
    def _provider(self, leaf: Target) -> str | None:
        if leaf.provider:
            return leaf.provider
        vk = self.services.virtual_keys.get(leaf.virtual_key or "")
        return getattr(vk, "provider", None)

    def _transition(self, state: str, leaf: Target, key: str, **fields: Any) -> None:
        provider = self._provider(leaf)
        log = _log.warning if state == "open" else _log.info
        log("circuit.opened" if state == "open" else "circuit.closed", target=leaf.path, provider=provider,
            virtual_key=leaf.virtual_key, circuit=key[3:15], **fields)
        metrics = self.services.metrics
        if metrics is not None:
            metrics.circuit_transition(provider, state)
