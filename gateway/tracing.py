"""OpenTelemetry traces of the gateway's requests, sent to an OTLP/HTTP collector.

Off unless an endpoint is set (``[tracing] endpoint``, or the standard
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``).  Each request
is one SERVER span, from its arrival to its answer's end, continuing the caller's W3C
``traceparent``; each try of a provider is one CLIENT span under it, recorded when the
request finishes with the try's own start and duration (``record.attempts``).  Attributes
follow OpenTelemetry's GenAI semantic conventions where they fit (``docs/tracing.md``).

Spans are handed to a ``BatchSpanProcessor``: ending one is a queue append, and its
thread does the export, so no request ever waits on the collector (a full queue drops
spans).  Each app has a tracer provider of its own (no process-wide global), shut down
in a thread at the app's clean-up.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from yarl import URL

from gateway.context import IMAGES_EDITS, IMAGES_FILES, IMAGES_GENERATIONS, PROXY, Record, RequestContext, StashKey
from gateway.errors import StartupError
from gateway.settings import Base, Seconds

__all__ = ["OPERATIONS", "PROVIDER_NAMES", "TracingSettings", "Tracing", "exporter_url", "provider_name"]

TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
BASE_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_PATH = "/v1/traces"

#: ``gen_ai.operation.name`` per endpoint.  The GenAI conventions register no image
#: operation (``generate_content`` is Gemini's multimodal call, not OpenAI's images API),
#: so these are the custom values the conventions allow, documented in docs/tracing.md.
OPERATIONS = {IMAGES_GENERATIONS: "generate_image", IMAGES_EDITS: "edit_image"}

#: ``gen_ai.provider.name``: the conventions' registered value for a provider slug that has
#: one; any other provider is named by its slug.
PROVIDER_NAMES = {
    "openai": "openai",
    "azure-openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "google": "gcp.gemini",
    "vertex-ai": "gcp.vertex_ai",
    "x-ai": "x_ai",
}

#: The route a request matched (``http.route``), by endpoint.
ROUTES = {IMAGES_GENERATIONS: "/v1/images/generations", IMAGES_EDITS: "/v1/images/edits",
          PROXY: "/v1/{path}", IMAGES_FILES: "/v1/images/files/{image_id}"}


class TracingSettings(Base):
    """``[tracing]``: OpenTelemetry traces, sent over OTLP/HTTP (protobuf) to a collector."""

    #: The collector's OTLP/HTTP address (``http://collector:4318``); ``/v1/traces`` is added
    #: unless the path already ends with it.  Unset: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
    #: (as it is) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (plus ``/v1/traces``); neither: tracing off.
    endpoint: str | None = None
    #: Headers sent with every export (a collector's or vendor's auth); added to those of
    #: ``OTEL_EXPORTER_OTLP_HEADERS``.  Never logged.
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    #: ``service.name`` of the spans (else ``OTEL_SERVICE_NAME``, else ``gateway``).
    service_name: str | None = None
    #: Share of new traces recorded (0 to 1); a request with a ``traceparent`` follows the
    #: caller's sampling decision instead.
    sample_ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0
    #: Record the prompt on the request span (``gen_ai.input.messages``).  Prompts are what
    #: users wrote: off unless the operator wants them in the tracing backend.
    capture_prompts: bool = False
    #: Seconds one export to the collector may take (in the exporter's thread).
    export_timeout: Seconds = 10.0

    def __repr__(self) -> str:
        # The headers hold credentials: a repr (a log line, a traceback) names them only.
        return (f"TracingSettings(endpoint={self.endpoint!r}, headers={sorted(self.headers)!r}, "
                f"service_name={self.service_name!r}, sample_ratio={self.sample_ratio!r}, "
                f"capture_prompts={self.capture_prompts!r}, export_timeout={self.export_timeout!r})")


def exporter_url(settings: TracingSettings, environ: Mapping[str, str] | None = None) -> str | None:
    """Where spans go: the settings' endpoint, else the standard environment variables;
    None when tracing is off (no endpoint, or ``OTEL_SDK_DISABLED=true``).  Raises
    StartupError for an endpoint that is not an http(s) URL."""
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if settings.endpoint:
        url, source = _signal_url(settings.endpoint), "settings [tracing] endpoint"
    elif environ.get(TRACES_ENDPOINT_ENV):
        url, source = environ[TRACES_ENDPOINT_ENV], TRACES_ENDPOINT_ENV
    elif environ.get(BASE_ENDPOINT_ENV):
        url, source = _signal_url(environ[BASE_ENDPOINT_ENV]), BASE_ENDPOINT_ENV
    else:
        return None
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise StartupError(f"{source}: expected an http:// or https:// URL of an OTLP/HTTP collector "
                           f"(like http://collector:4318), got {shown_url(url)!r}")
    return url


def _signal_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def shown_url(url: str) -> str:
    """A URL fit for a log line: no user info, no query (either may hold a credential)."""
    try:
        parsed = URL(url)
    except ValueError:
        return "<invalid URL>"
    return str(parsed.with_user(None).with_query(None).with_fragment(None)) if parsed.host else url.split("?")[0]


def provider_name(slug: str) -> str:
    """``gen_ai.provider.name`` of a gateway provider."""
    return PROVIDER_NAMES.get(slug, slug)


class _Open:
    """A request's span while it runs, and its arrival in Unix nanoseconds (the anchor of
    its tries' times, which the core measures on the monotonic clock from the arrival)."""

    __slots__ = ("span", "arrival_ns")

    def __init__(self, span: trace.Span, arrival_ns: int) -> None:
        self.span = span
        self.arrival_ns = arrival_ns


_OPEN: StashKey[_Open] = StashKey("tracing.span")


class Tracing:
    """One app's tracer provider, exporter and the spans of its requests."""

    def __init__(self, settings: TracingSettings, url: str, version: str) -> None:
        self.settings = settings
        self.url = url
        self.service_name = settings.service_name or os.environ.get("OTEL_SERVICE_NAME") or "gateway"
        self.exporter = OTLPSpanExporter(endpoint=url, headers=dict(settings.headers) or None,
                                         timeout=settings.export_timeout)
        self.processor = BatchSpanProcessor(self.exporter)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": self.service_name, "service.version": version}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
            # Shut down by the app's clean-up, not at interpreter exit (several apps per process in tests).
            shutdown_on_exit=False,
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("gateway", version)

    async def close(self) -> None:
        """Export what is queued and stop the exporter's thread, without holding the loop."""
        await asyncio.to_thread(self.provider.shutdown)

    # -- per request -------------------------------------------------------------------
    def started(self, ctx: RequestContext) -> None:
        """Open the request's SERVER span, a child of the caller's ``traceparent`` if any."""
        inbound = ctx.inbound
        arrival_ns = time.time_ns() - int((time.perf_counter() - ctx.started) * 1e9)
        attributes: dict[str, Any] = {"http.request.method": inbound.method,
                                      "url.path": inbound.raw_path or inbound.path,
                                      "gateway.endpoint": inbound.endpoint,
                                      "gateway.trace_id": inbound.trace_id}
        route = ROUTES.get(inbound.endpoint)
        if route is not None:
            attributes["http.route"] = route
        span = self.tracer.start_span(_server_name(ctx, None), context=propagate.extract(inbound.headers),
                                      kind=SpanKind.SERVER, attributes=attributes, start_time=arrival_ns)
        ctx.stash[_OPEN] = _Open(span, arrival_ns)

    def trace_id(self, ctx: RequestContext) -> str | None:
        """The request's trace id (32 hex digits), for its log line."""
        opened = ctx.stash.get(_OPEN)
        if opened is None:
            return None
        return trace.format_trace_id(opened.span.get_span_context().trace_id)

    def finished(self, ctx: RequestContext) -> None:
        """Record the request's tries as CLIENT spans and end its SERVER span."""
        opened = ctx.stash.get(_OPEN)
        if opened is None:
            return
        span = opened.span
        end_ns = opened.arrival_ns + int(ctx.elapsed_ms() * 1e6)
        if span.is_recording():
            self._attempt_spans(ctx, opened, end_ns)
            self._server_attributes(ctx, span)
        span.end(end_time=end_ns)

    def _server_attributes(self, ctx: RequestContext, span: trace.Span) -> None:
        record, inbound = ctx.record, ctx.inbound
        params = inbound.params
        requested = params.get("model") if isinstance(params.get("model"), str) else None
        span.update_name(_server_name(ctx, requested or record.model))
        attrs = _gen_ai(ctx, requested or record.model)
        if record.provider:
            attrs.update({"gen_ai.provider.name": provider_name(record.provider), "gateway.provider": record.provider})
        if record.model and record.attempts and 200 <= record.status < 300:
            # The image APIs do not name the model that answered: the answering try asked for this one.
            attrs["gen_ai.response.model"] = record.model
        attrs.update(_usage(record.usage))
        if record.status:
            attrs["http.response.status_code"] = record.status
        attrs["gateway.cache_status"] = record.cache_status or "DISABLED"
        if record.target_path:
            attrs["gateway.target"] = record.target_path
        if record.retry_count is not None:
            attrs["gateway.retry_count"] = record.retry_count
        attrs["gateway.attempts"] = len(record.attempts)
        if record.images:
            attrs["gateway.images"] = record.images
        if record.key:
            attrs["gateway.key"] = record.key  # the key's name, never the key
        if self.settings.capture_prompts and isinstance(params.get("prompt"), str):
            attrs["gen_ai.input.messages"] = msgspec.json.encode(
                [{"role": "user", "parts": [{"type": "text", "content": params["prompt"]}]}]).decode()
        failed = record.error is not None or record.status >= 400
        if failed:
            attrs["error.type"] = _error_type(record)
        span.set_attributes(attrs)
        # A server span is an error for a 5xx only: a 4xx is the caller's (OpenTelemetry's HTTP rules).
        if record.status >= 500:
            span.set_status(Status(StatusCode.ERROR, attrs["error.type"]))

    def _attempt_spans(self, ctx: RequestContext, opened: _Open, end_ns: int) -> None:
        record = ctx.record
        parent = trace.set_span_in_context(opened.span)
        operation = OPERATIONS.get(ctx.endpoint)
        last = len(record.attempts) - 1
        for i, tried in enumerate(record.attempts):
            # The core times each try from the request's arrival (``start_ms``) and its length (``ms``).
            start_ns = opened.arrival_ns + int(tried["start_ms"] * 1e6)
            finish_ns = min(start_ns + int(tried["ms"] * 1e6), end_ns)
            model = tried.get("model")
            slug = tried["provider"]
            if operation is not None:
                name = f"{operation} {model}" if model else operation
            else:
                name = f"{ctx.inbound.method} {slug}"
            attrs = _gen_ai(ctx, model)
            status = tried["status"]
            attrs.update({"gen_ai.provider.name": provider_name(slug), "gateway.provider": slug,
                          "http.response.status_code": status, "gateway.target": tried["target"],
                          "gateway.attempt": tried["attempt"]})
            if i == last and 200 <= status < 300:
                attrs.update(_usage(record.usage))  # the answering try made what the answer reports
            error = tried.get("error") or (str(status) if status >= 400 else None)
            span = self.tracer.start_span(name, context=parent, kind=SpanKind.CLIENT, attributes=attrs,
                                          start_time=start_ns)
            if error is not None:
                span.set_attribute("error.type", error)
                # A client span is an error for any 4xx or 5xx the provider (or the try's time limit) gave.
                span.set_status(Status(StatusCode.ERROR, error))
            span.end(end_time=finish_ns)


def _error_type(record: Record) -> str:
    """A failed request's ``error.type``: the gateway's error code when its last try's failure
    is the answer, else the status code as a string (OpenTelemetry's HTTP rule)."""
    if record.attempts:
        last = record.attempts[-1]
        if last.get("error") and last["status"] == record.status:
            return str(last["error"])
    return str(record.status)


def _server_name(ctx: RequestContext, model: str | None) -> str:
    """``generate_image gpt-image-1`` for the unified routes; ``METHOD route`` otherwise."""
    inbound = ctx.inbound
    operation = OPERATIONS.get(inbound.endpoint)
    if operation is not None:
        return f"{operation} {model}" if model else operation
    route = ROUTES.get(inbound.endpoint)
    return f"{inbound.method} {route}" if route else inbound.method


def _gen_ai(ctx: RequestContext, model: str | None) -> dict[str, Any]:
    """The GenAI request attributes of a span (none on the passthrough: its API is the provider's)."""
    operation = OPERATIONS.get(ctx.endpoint)
    if operation is None:
        return {}
    attrs: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.output.type": "image"}
    if model:
        attrs["gen_ai.request.model"] = model
    params = ctx.inbound.params
    n = params.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        attrs["gen_ai.request.choice.count"] = n
    if params.get("stream") is True:
        attrs["gen_ai.request.stream"] = True
    return attrs


_USAGE = (("gen_ai.usage.input_tokens", "input_tokens"), ("gen_ai.usage.output_tokens", "output_tokens"))


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    """Token counts of OpenAI's ``usage`` as ``gen_ai.usage.*``."""
    out: dict[str, int] = {}
    if not usage:
        return out
    for ours, theirs in _USAGE:
        value = usage.get(theirs)
        if isinstance(value, int) and not isinstance(value, bool):
            out[ours] = value
    return out
