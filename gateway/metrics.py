"""Prometheus metrics of one gateway process, and their text exposition at ``GET /metrics``.

One process: the metrics live in a registry of this app's own.  Several worker processes
(``gateway serve --workers N``): ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers
start (:func:`gateway.server.serve` does it), prometheus-client then keeps every value in
a file per process, and a scrape that reaches any worker reads them all, so the figures
are the whole instance's whichever worker answers.

Labels take only bounded values: ``model`` is a model the provider declares (another
name a caller sends is ``other``), ``status`` the HTTP status, ``provider`` an installed
provider (or ``none`` when the request never reached one).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import RequestContext

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Metrics", "mark_process_dead", "multiprocess_dir"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Seconds, up to 10 minutes: image models take from a second to several minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
                   180.0, 300.0, 600.0, float("inf"))
#: Seconds of the gateway's own time per request: well under one.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, float("inf"))
OTHER = "other"
NONE = "none"


def multiprocess_dir() -> str | None:
    """The directory prometheus-client's multiprocess mode keeps values in, when it is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The gateway's metrics (names and labels in ``docs/metrics.md``)."""

    def __init__(self, models: Mapping[str, Iterable[str]]) -> None:
        #: Models each provider declares: the only values the ``model`` label takes.
        self.models = {provider: frozenset(names) for provider, names in models.items()}
        self.shared = multiprocess_dir() is not None
        # Shared: values go to the per-process files, collected at scrape time; not registered here.
        self.registry = CollectorRegistry()
        reg = None if self.shared else self.registry
        route = ("endpoint", "provider")
        self.requests = Counter("gateway_requests", "Requests answered, by endpoint, provider, model, status and "
                                "cache status.", ("endpoint", "provider", "model", "status", "cache"), registry=reg)
        self.duration = Histogram("gateway_request_duration_seconds", "Time from a request's arrival to its "
                                  "answer's end.", route, buckets=LATENCY_BUCKETS, registry=reg)
        self.upstream = Histogram("gateway_upstream_duration_seconds", "Time spent waiting on providers, per "
                                  "request.", route, buckets=LATENCY_BUCKETS, registry=reg)
        self.overhead = Histogram("gateway_overhead_seconds", "The gateway's own time per request: the whole "
                                  "less the wait on providers.", ("endpoint",), buckets=OVERHEAD_BUCKETS, registry=reg)
        self.images = Counter("gateway_images", "Images providers produced for answered requests.",
                              ("endpoint", "provider", "model"), registry=reg)
        self.cost = Counter("gateway_cost_usd", "USD the providers billed for requests, where the price is known "
                            "(docs/costs.md).", ("endpoint", "provider", "model"), registry=reg)
        self.retries = Counter("gateway_retries", "Retries of a target after a failed try.", route, registry=reg)
        self.fallbacks = Counter("gateway_fallbacks", "Requests answered by another target than the first tried.",
                                 route, registry=reg)
        self.cache = Counter("gateway_cache_lookups", "Cache lookups by result (HIT, MISS, REFRESH, ...).",
                             ("endpoint", "result"), registry=reg)
        self.circuit = Counter("gateway_circuit_transitions", "Circuit breaker transitions of config targets, by "
                               "provider and the state entered (open, closed).", ("provider", "state"), registry=reg)
        self.in_flight = Gauge("gateway_in_flight_requests", "Requests arrived and not yet answered.",
                               registry=reg, multiprocess_mode="livesum")

    def started(self) -> None:
        self.in_flight.inc()

    def finished(self, ctx: RequestContext, started: bool) -> None:
        """Count an answered request (``started``: it was counted in flight)."""
        if started:
            self.in_flight.dec()
        record = ctx.record
        endpoint = ctx.endpoint
        provider = record.provider if record.provider in self.models else NONE
        model = record.model if record.model in self.models.get(provider, ()) else (OTHER if record.model else NONE)
        cache = record.cache_status or "DISABLED"
        self.requests.labels(endpoint, provider, model, str(record.status), cache).inc()
        elapsed = ctx.elapsed_ms() / 1000.0
        waited = record.upstream_ms / 1000.0
        self.duration.labels(endpoint, provider).observe(elapsed)
        if record.attempts:
            self.upstream.labels(endpoint, provider).observe(waited)
        self.overhead.labels(endpoint).observe(max(0.0, elapsed - waited))
        if record.images and 200 <= record.status < 300:
            self.images.labels(endpoint, provider, model).inc(record.images)
        if record.cost:  # a failed request's billed calls count too
            self.cost.labels(endpoint, provider, model).inc(record.cost)
        retries = sum(1 for a in record.attempts if a["attempt"])  # every target's, not only the last's
        if retries:
            self.retries.labels(endpoint, provider).inc(retries)
        if len({a["target"] for a in record.attempts}) > 1 and 200 <= record.status < 300:
            self.fallbacks.labels(endpoint, provider).inc()
        if record.cache_status:
            self.cache.labels(endpoint, record.cache_status).inc()

    def circuit_transition(self, provider: str | None, state: str) -> None:
        """Count a target's circuit entering ``state`` (``open`` or ``closed``)."""
        self.circuit.labels(provider if provider in self.models else NONE, state).inc()

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format: this process's, or with several workers
        the sum over every worker's files."""
        if not self.shared:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges (``in_flight``) from the shared figures."""
    multiprocess.mark_process_dead(pid)
