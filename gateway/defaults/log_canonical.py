"""Stage 5 default: one ``request.finished`` line per request, with the core fields."""
from __future__ import annotations

from typing import Any

import structlog

from gateway import hookimpl
from gateway.context import RequestContext
from gateway.headers import METADATA

_log = structlog.get_logger("gateway")


@hookimpl(trylast=True)
def gateway_log_fields(ctx: RequestContext) -> dict[str, Any]:
    inbound, record = ctx.inbound, ctx.record
    fields: dict[str, Any] = {
        "trace_id": inbound.trace_id,
        "key": record.key,
        "method": inbound.method,
        "path": "/v1" + inbound.path,
        "endpoint": inbound.endpoint,
        "provider": record.provider,
        "model": record.model,
        "status": record.status,
        "ms": round(ctx.elapsed_ms(), 2),
        "upstream_ms": round(record.upstream_ms, 2),
        # The gateway's own share: what this process added to the caller's wait.
        "overhead_ms": round(max(0.0, ctx.elapsed_ms() - record.upstream_ms), 2),
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
        "attempts": len(record.attempts),
        "target": record.target_path,
        "cache": record.cache_status or "DISABLED",
    }
    if inbound.metadata or inbound.headers.get(METADATA):
        # Parsed by the core before any work; empty when the header was the request's error.
        fields["metadata"] = inbound.metadata
    if len(record.attempts) > 1:
        # Every attempt, so a retried (and maybe twice billed) generation is visible.
        fields["path_taken"] = [a["target"] for a in record.attempts]
        fields["tries"] = record.attempts
    if record.usage is not None:
        fields["usage"] = record.usage
    # USD, null when unknown (docs/costs.md); a cache hit costs 0 and says what it saved.
    fields["cost"] = None if record.cost is None else round(record.cost, 6)
    fields["cost_exact"] = record.cost_exact
    if record.cost_saved is not None:
        fields["cost_saved"] = round(record.cost_saved, 6)
    if record.stream is not None:
        # How a streamed answer went: events sent, time to the first and the last, how it ended.
        fields["stream"] = record.stream.fields()
    if record.error:
        fields["error"] = record.error
    return fields


@hookimpl(trylast=True)
def gateway_request_finished(ctx: RequestContext, fields: dict[str, Any]) -> None:
    # A request the gateway or a provider failed (5xx) is a warning: it is what an alert watches.
    if ctx.record.status >= 500:
        _log.warning("request.finished", **fields)
    else:
        _log.info("request.finished", **fields)
