"""Stage 5 default: one ``request.finished`` line per request, with the core fields."""
from __future__ import annotations

from typing import Any

import structlog

from gateway import hookimpl
from gateway.context import RequestContext

_log = structlog.get_logger("gateway")


@hookimpl(trylast=True)
def gateway_log_fields(ctx: RequestContext) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "trace_id": ctx.trace_id,
        "method": ctx.request.method,
        "path": ctx.request.path,
        "endpoint": ctx.endpoint,
        "provider": ctx.provider,
        "model": ctx.model,
        "status": ctx.status,
        "ms": round(ctx.elapsed_ms(), 2),
        "upstream_ms": round(ctx.upstream_ms, 2),
        "bytes_in": ctx.bytes_in,
        "bytes_out": ctx.bytes_out,
        "attempts": len(ctx.attempts),
        "target": ctx.target_path,
        "cache": ctx.cache_status or "DISABLED",
    }
    if ctx.request.headers.get("x-portkey-metadata"):
        try:
            fields["metadata"] = ctx.metadata
        except Exception:  # a malformed header is already the request's error
            pass
    if len(ctx.attempts) > 1:
        # Every attempt, so a retried (and maybe twice billed) generation is visible.
        fields["path_taken"] = [a["target"] for a in ctx.attempts]
        fields["tries"] = ctx.attempts
    if ctx.error:
        fields["error"] = ctx.error
    return fields


@hookimpl(trylast=True)
def gateway_request_finished(ctx: RequestContext, fields: dict[str, Any]) -> None:
    _log.info("request.finished", **fields)
