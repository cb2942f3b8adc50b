"""Structured logging: the only place that configures structlog."""
from __future__ import annotations

import logging
import sys
from typing import IO, Any

import msgspec
import structlog

#: Keys whose values never reach a log line, at any depth.
SECRET_KEYS = frozenset(
    {
        "authorization", "api_key", "api-key", "x-api-key", "x-portkey-api-key", "apikey", "password",
        "secret", "token", "aws_secret_access_key", "aws_session_token", "x-portkey-aws-secret-access-key",
        "x-portkey-aws-session-token", "cookie", "set-cookie",
    }
)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def redact(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mask values under secret-looking keys (belt and braces: the core logs no headers)."""
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = "***"
        elif isinstance(event[key], dict):
            event[key] = _redact_dict(event[key])
    return event


def _redact_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: "***" if str(k).lower() in SECRET_KEYS else (_redact_dict(v) if isinstance(v, dict) else v)
        for k, v in d.items()
    }


_encoder = msgspec.json.Encoder(enc_hook=repr)


def _serialize(event: dict[str, Any], **_kw: Any) -> bytes:
    return _encoder.encode(event)


def configure_logging(fmt: str = "json", level: str = "info", stream: IO[bytes] | IO[str] | None = None,
                      cache: bool = True) -> None:
    """Configure structlog for the process.  ``stream`` defaults to stdout."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    if fmt == "console":
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
        factory: Any = structlog.PrintLoggerFactory(stream if stream is not None else sys.stdout)
    else:
        # Tracebacks as data, without local variables: locals may hold keys.
        processors.append(structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)))
        processors.append(structlog.processors.JSONRenderer(serializer=_serialize))
        out = stream if stream is not None else sys.stdout.buffer
        factory = structlog.BytesLoggerFactory(out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=cache,
    )
    # aiohttp's own loggers (access log is off; errors only) go to stderr as plain lines.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
