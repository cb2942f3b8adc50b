"""The embedded log store: one SQLite file through ``aiosqlite`` (no server to run).

WAL mode (readers never wait for the writer), one connection that writes and one that
reads.  A record is a row of the columns the filters use plus the whole record as JSON;
metadata fields are rows of their own (an index per field name and value).  Ids sort as
arrival times do (:func:`~gateway.requestlog.record.new_id`), so the id index orders pages,
bounds time ranges (to the millisecond) and finds what retention removes.  Retention:
records older than ``retention_days`` go, then the oldest while the file's used pages pass
``max_bytes`` (freed pages go back to the file system: ``auto_vacuum = INCREMENTAL``).
"""
from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from gateway.requestlog.record import LogRecord, from_json, id_floor, to_json
from gateway.requestlog.store import LogQuery, LogStore, aggregate, encode_cursor

if TYPE_CHECKING:  # pragma: no cover
    from gateway.requestlog.settings import RequestLogSettings
    from gateway.services import Services

#: The condition of the partial status index; a query names it word for word so that SQLite
#: may use the index (it does not reason about ranges).
_NOT_2XX = "status NOT BETWEEN 200 AND 299"
#: Schema versions in order; each is applied once, in one transaction, at start-up.
MIGRATIONS: list[tuple[int, tuple[str, ...]]] = [
    (1, (
        # Ids sort as arrival times do: the id index is the order of pages and of retention.
        """CREATE TABLE requests (
            id TEXT NOT NULL UNIQUE,
            time REAL NOT NULL,
            trace_id TEXT NOT NULL,
            key TEXT,
            provider TEXT,
            model TEXT,
            status INTEGER NOT NULL,
            ms REAL NOT NULL,
            cost REAL,
            cache TEXT NOT NULL,
            record BLOB NOT NULL
        )""",
        "CREATE INDEX requests_trace_id ON requests (trace_id)",
        "CREATE INDEX requests_provider ON requests (provider, id)",
        "CREATE INDEX requests_model ON requests (model, id)",
        "CREATE INDEX requests_key ON requests (key, id)",
        "CREATE INDEX requests_status ON requests (status, id)",
        """CREATE TABLE request_metadata (
            request_id TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (request_id, name)
        ) WITHOUT ROWID""",
        "CREATE INDEX request_metadata_value ON request_metadata (name, value, request_id)",
    )),
    # Most requests succeed, and many gateways have no keys: the status index holds the others
    # only (a filter on 2xx walks the id order and finds them at once), the key index the rows
    # with a key.  A row that is in neither costs two index inserts less.
    (2, (
        "DROP INDEX requests_status",
        f"CREATE INDEX requests_status ON requests (status, id) WHERE {_NOT_2XX}",
        "DROP INDEX requests_key",
        "CREATE INDEX requests_key ON requests (key, id) WHERE key IS NOT NULL",
    )),
    # What cache hits saved, summed by the dashboard (NULL for every other request).  Adding a
    # nullable column rewrites nothing: older rows read NULL.
    (3, (
        "ALTER TABLE requests ADD COLUMN cost_saved REAL",
    )),
]
_INSERT = ("INSERT OR IGNORE INTO requests (id, time, trace_id, key, provider, model, status, ms, cost, cost_saved, "
           "cache, record) VALUES ")
_INSERT_META = "INSERT OR IGNORE INTO request_metadata (request_id, name, value) VALUES "
#: Rows one INSERT statement carries: a statement is one call into SQLite, so the writer's
#: thread takes the interpreter's lock once per statement, not once per row (under load, each
#: take waits for the request handlers).  Within SQLite's limit of 32766 parameters.
_ROWS_PER_STATEMENT = 256
#: Tries at switching a file to WAL while another process is opening it too (0.05 s apart).
_WAL_TRIES = 100
#: Keep this share of ``max_bytes`` after a size prune, so the next records do not prune again at once.
_SIZE_HEADROOM = 0.9


def _same(value: Any) -> Any:
    return value


# sqlite3 binds str, int and float as they are, but runs None and bytes through its adaptation
# protocol, which without an adapter raises and swallows an AttributeError per value: half the
# cost of binding a row.  Identity adapters make each a dictionary hit; nothing else changes.
sqlite3.register_adapter(type(None), _same)
sqlite3.register_adapter(bytes, _same)


class SQLiteLogStore(LogStore):
    """``[request_log] store = "sqlite"``: the file at ``[request_log] path``."""

    name = "sqlite"

    def __init__(self, path: str, retention_days: float, max_bytes: int = 0) -> None:
        self.path = path
        self.retention = retention_days * 86400.0
        self.max_bytes = max_bytes
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        #: One transaction at a time on the writing connection (writes, prunes, migrations).
        self._lock = asyncio.Lock()

    @classmethod
    def from_services(cls, services: Services) -> SQLiteLogStore:
        cfg: RequestLogSettings = services.settings.sections["request_log"]
        return cls(cfg.path, cfg.retention_days, cfg.max_bytes)

    # -- life ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.close()  # a restart: the connections of the last start go first
        directory = os.path.dirname(os.path.abspath(self.path))
        await asyncio.to_thread(Path(directory).mkdir, parents=True, exist_ok=True, mode=0o700)
        self._writer = await self._connect()
        await self.migrate()
        self._reader = await self._connect()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        # Set before the first table exists (it cannot change after); then WAL, which persists.
        await conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        await conn.execute("PRAGMA busy_timeout = 5000")
        # Switching a new file to WAL wants it to itself and does not wait for the busy timeout:
        # processes opening one file together take turns.
        for attempt in range(_WAL_TRIES):
            try:
                await conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                if attempt == _WAL_TRIES - 1:
                    raise
                await asyncio.sleep(0.05)
        # WAL with NORMAL: a power loss may lose the last records, never corrupt the file.
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA journal_size_limit = 67108864")
        return conn

    async def migrate(self) -> list[int]:
        """Apply the migrations this file lacks, in one transaction (another process starting
        at the same time waits for it and then finds nothing to do); the versions applied."""
        async with self._lock:
            return await self._migrate(self._conn(self._writer))

    async def _migrate(self, conn: aiosqlite.Connection) -> list[int]:
        applied: list[int] = []
        async with _transaction(conn, "BEGIN IMMEDIATE"):
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            async with conn.execute("SELECT MAX(version) FROM schema_version") as cur:
                row = await cur.fetchone()
            current = (row[0] if row else None) or 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                applied.append(version)
        return applied

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @staticmethod
    def _conn(conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise sqlite3.ProgrammingError("the SQLite log store is not open")
        return conn

    # -- writing -------------------------------------------------------------------------
    async def write(self, records: list[LogRecord]) -> None:
        rows = [(r.id, r.time, r.trace_id, r.key, r.provider, r.model, r.status, r.ms, r.cost, r.cost_saved, r.cache,
                 to_json(r)) for r in records]
        meta = [(r.id, name, value) for r in records for name, value in r.metadata.items()]
        async with self._lock:
            await self._write(self._conn(self._writer), rows, meta)

    @staticmethod
    async def _write(conn: aiosqlite.Connection, rows: list[tuple[Any, ...]], meta: list[tuple[Any, ...]]) -> None:
        async with _transaction(conn, "BEGIN"):
            for sql, values in (*_statements(_INSERT, rows), *_statements(_INSERT_META, meta)):
                await conn.execute(sql, values)

    # -- reading -------------------------------------------------------------------------
    async def query(self, q: LogQuery) -> tuple[list[LogRecord], str | None]:
        q.check()
        where, args = _where(q)
        sql = f"SELECT record FROM requests{where} ORDER BY id DESC LIMIT ?"
        async with self._conn(self._reader).execute(sql, (*args, q.limit + 1)) as cur:
            rows = await cur.fetchall()
        page = [from_json(row[0]) for row in rows[:q.limit]]
        return page, encode_cursor(page[-1]) if len(rows) > q.limit else None

    async def get(self, record_id: str) -> LogRecord | None:
        async with self._conn(self._reader).execute("SELECT record FROM requests WHERE id = ?", (record_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else from_json(row[0])

    async def stats(self, since: float, until: float, bucket_seconds: int) -> list[dict[str, Any]]:
        sql = "SELECT time, provider, status, ms, cost, cache, cost_saved FROM requests WHERE id >= ? AND id < ?"
        async with self._conn(self._reader).execute(sql, (id_floor(since), id_floor(until))) as cur:
            rows = await cur.fetchall()
        return await asyncio.to_thread(aggregate, rows, bucket_seconds)

    # -- retention -----------------------------------------------------------------------
    async def prune(self, now: float) -> int:
        async with self._lock:
            return await self._prune(self._conn(self._writer), now)

    async def _prune(self, conn: aiosqlite.Connection, now: float) -> int:
        removed = await self._delete_before(conn, id_floor(now - self.retention))
        if self.max_bytes:
            for _ in range(4):  # each round removes its estimate; a few make up for a poor one
                used = await self._used_bytes(conn)
                if used <= self.max_bytes:
                    break
                async with conn.execute("SELECT COUNT(*) FROM requests") as cur:
                    row = await cur.fetchone()
                count = row[0] if row else 0
                if not count:
                    break
                drop = min(count, max(1, math.ceil(count * (used - self.max_bytes * _SIZE_HEADROOM) / used)))
                # The first id kept: everything before it goes.
                async with conn.execute("SELECT id FROM requests ORDER BY id LIMIT 1 OFFSET ?", (drop,)) as cur:
                    row = await cur.fetchone()
                removed += await self._delete_before(conn, row[0] if row else "~")
        if removed:
            # As a script: stepped to the end (through execute, incremental_vacuum frees one page).
            await conn.executescript("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")
        return removed

    @staticmethod
    async def _delete_before(conn: aiosqlite.Connection, first_kept: str) -> int:
        async with _transaction(conn, "BEGIN IMMEDIATE"):
            cur = await conn.execute("DELETE FROM requests WHERE id < ?", (first_kept,))
            removed = cur.rowcount
            await conn.execute("DELETE FROM request_metadata WHERE request_id < ?", (first_kept,))
        return max(0, removed)

    async def used_bytes(self) -> int:
        """Bytes of the file's pages in use (the file less its free pages)."""
        return await self._used_bytes(self._conn(self._reader))

    @staticmethod
    async def _used_bytes(conn: aiosqlite.Connection) -> int:
        values = []
        for pragma in ("page_size", "page_count", "freelist_count"):
            async with conn.execute(f"PRAGMA {pragma}") as cur:
                row = await cur.fetchone()
            values.append(row[0] if row else 0)
        page_size, pages, free = values
        return (pages - free) * page_size


def _statements(head: str, rows: list[tuple[Any, ...]]) -> list[tuple[str, list[Any]]]:
    """``rows`` as multi-row INSERTs: ``(sql, flat values)`` of up to ``_ROWS_PER_STATEMENT`` rows."""
    out = []
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        width = len(chunk[0])
        one = "(" + ",".join("?" * width) + ")"
        out.append((head + ",".join([one] * len(chunk)), [v for row in chunk for v in row]))
    return out


@contextlib.asynccontextmanager
async def _transaction(conn: aiosqlite.Connection, begin: str) -> AsyncIterator[None]:
    """A transaction that commits, or rolls back whatever ended it (a cancellation too: the
    rollback's own failure never hides why)."""
    await conn.execute(begin)
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error, ValueError):
            await asyncio.shield(conn.execute("ROLLBACK"))
        raise
    await conn.execute("COMMIT")


def _where(q: LogQuery) -> tuple[str, list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if q.since is not None:
        conds.append("id >= ?")
        args.append(id_floor(q.since))
    if q.until is not None:
        conds.append("id < ?")
        args.append(id_floor(q.until))
    for column in ("provider", "model", "key", "trace_id"):
        value = getattr(q, column)
        if value is not None:
            conds.append(f"{column} = ?")
            args.append(value)
    status = q.status_range()
    if status is not None:
        conds.append("status BETWEEN ? AND ?")
        args.extend(status)
        if status[1] < 200 or status[0] > 299:
            conds.append(_NOT_2XX)
    for name, value in q.metadata.items():
        conds.append("EXISTS (SELECT 1 FROM request_metadata m WHERE m.request_id = requests.id AND m.name = ? "
                     "AND m.value = ?)")
        args.extend((name, value))
    position = q.position()
    if position is not None:
        conds.append("id < ?")
        args.append(position[1])
    return (" WHERE " + " AND ".join(conds)) if conds else "", args
