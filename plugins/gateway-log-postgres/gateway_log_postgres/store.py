"""The request log in PostgreSQL, through ``asyncpg``: the same records, filters, pages and
retention as the built-in SQLite store, for several gateway instances sharing one log.

Tables: ``gateway_requests`` (the filtered columns, the metadata as ``jsonb`` for a GIN
index, and the whole record as JSON bytes) and ``gateway_log_schema_version``.  Migrations
run at start-up under an advisory lock, so instances starting together apply each once.
Retention: rows older than ``[request_log] retention_days`` go, then the oldest while the
records' bytes pass ``[request_log] max_bytes`` (PostgreSQL reuses the space freed, after
autovacuum; it does not give it back to the file system).
"""
from __future__ import annotations

import math
import os
from typing import Any

import asyncpg
import msgspec

from gateway.sdk import Base, LogQuery, LogRecord, LogStore, StartupError, encode_cursor

#: ``pg_advisory_xact_lock`` key of the migrations (any constant; "gwlog" in ASCII).
MIGRATION_LOCK = 0x67776C6F67
MIGRATIONS: list[tuple[int, tuple[str, ...]]] = [
    (1, (
        """CREATE TABLE gateway_requests (
            id text PRIMARY KEY,
            time double precision NOT NULL,
            trace_id text NOT NULL,
            key text,
            provider text,
            model text,
            status integer NOT NULL,
            ms double precision NOT NULL,
            cost double precision,
            cache text NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}',
            size integer NOT NULL,
            record bytea NOT NULL
        )""",
        "CREATE INDEX gateway_requests_time ON gateway_requests (time, id)",
        "CREATE INDEX gateway_requests_trace_id ON gateway_requests (trace_id, time)",
        "CREATE INDEX gateway_requests_provider ON gateway_requests (provider, time)",
        "CREATE INDEX gateway_requests_model ON gateway_requests (model, time)",
        "CREATE INDEX gateway_requests_key ON gateway_requests (key, time)",
        "CREATE INDEX gateway_requests_status ON gateway_requests (status, time)",
        "CREATE INDEX gateway_requests_metadata ON gateway_requests USING gin (metadata jsonb_path_ops)",
    )),
    # What cache hits saved, summed by the dashboard (NULL for every other request).  A nullable
    # column without a default is added without rewriting the table; older rows read NULL.
    (2, (
        "ALTER TABLE gateway_requests ADD COLUMN cost_saved double precision",
    )),
]
_INSERT = ("INSERT INTO gateway_requests (id, time, trace_id, key, provider, model, status, ms, cost, cost_saved, "
           "cache, metadata, size, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14) "
           "ON CONFLICT (id) DO NOTHING")
_STATS = """
SELECT (floor(time / $3) * $3)::bigint AS bucket, provider, count(*) AS requests,
       count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS errors_4xx,
       count(*) FILTER (WHERE status >= 500) AS errors_5xx,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS p50_ms,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY ms) AS p95_ms,
       coalesce(sum(cost), 0) AS cost,
       coalesce(sum(cost_saved), 0) AS cost_saved,
       count(*) FILTER (WHERE cache = 'HIT') AS cache_hits,
       count(*) FILTER (WHERE cache <> 'DISABLED') AS cache_lookups
FROM gateway_requests WHERE time >= $1 AND time < $2
GROUP BY 1, 2 ORDER BY 1, coalesce(provider, '') COLLATE "C"
"""
#: Keep this share of ``max_bytes`` after a size prune.
_SIZE_HEADROOM = 0.9
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(LogRecord).decode


class PostgresSettings(Base):
    """``[log_postgres]``: the database of the ``postgres`` log store.  The DSN may hold a
    password: prefer ``dsn_env``."""

    #: ``postgresql://user:password@host:5432/database`` (libpq's URI or key=value form).
    dsn: str | None = None
    #: The environment variable holding the DSN.
    dsn_env: str | None = None
    #: Connections each gateway process keeps.
    pool_min: int = 1
    pool_max: int = 4
    #: Seconds to connect.
    connect_timeout: float = 10.0


class PostgresLogStore(LogStore):
    """``[request_log] store = "postgres"``."""

    name = "postgres"

    def __init__(self, dsn: str, retention_days: float, max_bytes: int = 0, *, pool_min: int = 1, pool_max: int = 4,
                 connect_timeout: float = 10.0) -> None:
        self.dsn = dsn
        self.retention = retention_days * 86400.0
        self.max_bytes = max_bytes
        self.pool_min, self.pool_max, self.connect_timeout = pool_min, pool_max, connect_timeout
        self._pool: asyncpg.Pool | None = None

    @classmethod
    def from_services(cls, services: Any) -> PostgresLogStore:
        cfg: PostgresSettings = services.settings.sections["log_postgres"]
        log = services.settings.sections["request_log"]
        return cls(dsn(cfg), log.retention_days, log.max_bytes, pool_min=cfg.pool_min, pool_max=cfg.pool_max,
                   connect_timeout=cfg.connect_timeout)

    # -- life ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.close()
        self._pool = await asyncpg.create_pool(self.dsn, min_size=self.pool_min, max_size=max(self.pool_min,
                                               self.pool_max), timeout=self.connect_timeout)
        await self.migrate()

    async def migrate(self) -> list[int]:
        """Apply the migrations the database lacks; the versions applied (none when another
        instance got there first)."""
        applied: list[int] = []
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS gateway_log_schema_version (version integer NOT NULL)")
            current = await conn.fetchval("SELECT max(version) FROM gateway_log_schema_version") or 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO gateway_log_schema_version (version) VALUES ($1)", version)
                applied.append(version)
        return applied

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise asyncpg.InterfaceError("the PostgreSQL log store is not open")
        return self._pool

    # -- writing -------------------------------------------------------------------------
    async def write(self, records: list[LogRecord]) -> None:
        rows = []
        for r in records:
            data = _encode(r)
            # jsonb takes no NUL character: a metadata value with one is kept in the record only.
            metadata = _encode({k: v for k, v in r.metadata.items() if "\x00" not in k + v}).decode()
            rows.append((r.id, r.time, r.trace_id, r.key, r.provider, r.model, r.status, r.ms, r.cost, r.cost_saved,
                         r.cache, metadata, len(data), data))
        async with self.pool.acquire() as conn:
            await conn.executemany(_INSERT, rows)

    # -- reading -------------------------------------------------------------------------
    async def query(self, q: LogQuery) -> tuple[list[LogRecord], str | None]:
        q.check()
        where, args = _where(q)
        args.append(q.limit + 1)
        sql = f"SELECT record FROM gateway_requests{where} ORDER BY time DESC, id DESC LIMIT ${len(args)}"
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        page = [_decode(row[0]) for row in rows[:q.limit]]
        return page, encode_cursor(page[-1]) if len(rows) > q.limit else None

    async def get(self, record_id: str) -> LogRecord | None:
        async with self.pool.acquire() as conn:
            data = await conn.fetchval("SELECT record FROM gateway_requests WHERE id = $1", record_id)
        return None if data is None else _decode(data)

    async def stats(self, since: float, until: float, bucket_seconds: int) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_STATS, since, until, float(bucket_seconds))
        return [{"bucket": int(r["bucket"]), "provider": r["provider"], "requests": r["requests"],
                 "errors_4xx": r["errors_4xx"], "errors_5xx": r["errors_5xx"], "p50_ms": r["p50_ms"],
                 "p95_ms": r["p95_ms"], "cost": round(r["cost"], 6),
                 "cost_saved": round(r["cost_saved"], 6), "cache_hits": r["cache_hits"],
                 "cache_lookups": r["cache_lookups"]} for r in rows]

    # -- retention -----------------------------------------------------------------------
    async def prune(self, now: float) -> int:
        async with self.pool.acquire() as conn:
            removed = _count(await conn.execute("DELETE FROM gateway_requests WHERE time < $1", now - self.retention))
            if self.max_bytes:
                count, used = await conn.fetchrow("SELECT count(*), coalesce(sum(size), 0) FROM gateway_requests")
                if used > self.max_bytes and count:
                    drop = max(1, math.ceil(count * (used - self.max_bytes * _SIZE_HEADROOM) / used))
                    when = await conn.fetchval("SELECT time FROM gateway_requests ORDER BY time, id OFFSET $1 LIMIT 1",
                                               min(drop, count) - 1)
                    if when is not None:
                        removed += _count(await conn.execute("DELETE FROM gateway_requests WHERE time <= $1", when))
        return removed

    async def used_bytes(self) -> int:
        """Bytes of the records kept (their JSON; indexes and free space not counted)."""
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval("SELECT coalesce(sum(size), 0) FROM gateway_requests"))


def dsn(cfg: PostgresSettings, environ: dict[str, str] | None = None) -> str:
    """The DSN ``[log_postgres]`` names (``dsn`` or ``dsn_env``); a :class:`StartupError` otherwise."""
    environ = dict(os.environ) if environ is None else environ
    if (cfg.dsn is None) == (cfg.dsn_env is None):
        raise StartupError("settings [log_postgres]: set one of dsn, dsn_env (the request log's postgres store "
                           "needs a database)")
    if cfg.dsn_env is not None:
        value = environ.get(cfg.dsn_env)
        if not value:
            raise StartupError(f"settings [log_postgres] dsn_env: the environment variable {cfg.dsn_env} is not set")
        return value
    assert cfg.dsn is not None
    return cfg.dsn


def _count(status: str) -> int:
    """The row count of a command status (``DELETE 12``)."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


def _where(q: LogQuery) -> tuple[str, list[Any]]:
    conds: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if q.since is not None:
        conds.append(f"time >= {arg(q.since)}")
    if q.until is not None:
        conds.append(f"time < {arg(q.until)}")
    for column in ("provider", "model", "key", "trace_id"):
        value = getattr(q, column)
        if value is not None:
            conds.append(f"{column} = {arg(value)}")
    status = q.status_range()
    if status is not None:
        conds.append(f"status BETWEEN {arg(status[0])} AND {arg(status[1])}")
    if q.metadata:
        conds.append(f"metadata @> {arg(_encode(q.metadata).decode())}::jsonb")
    position = q.position()
    if position is not None:
        t, i = arg(position[0]), arg(position[1])
        conds.append(f"(time < {t} OR (time = {t} AND id < {i}))")
    return (" WHERE " + " AND ".join(conds)) if conds else "", args
