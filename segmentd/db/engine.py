"""Engines per database, and the two ways a caller holds a connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

# Writers queue on SQLite's single write lock for up to 10 s (PRAGMAs take no parameters).
SQLITE_BUSY_TIMEOUT_PRAGMA = "PRAGMA busy_timeout=10000"


def make_engine(url: str, pool_size: int = 8, statement_timeout_ms: int = 0) -> AsyncEngine:
    """An async engine tuned for its database; a statement timeout bounds any one query."""
    dialect = make_url(url).get_backend_name()
    if dialect == "sqlite":
        engine = create_async_engine(url)
        _configure_sqlite(engine)
        return engine
    kwargs: dict = {"pool_size": pool_size, "max_overflow": pool_size, "pool_pre_ping": False}
    if statement_timeout_ms and dialect == "postgresql":
        kwargs["connect_args"] = {"server_settings": {"statement_timeout": str(statement_timeout_ms)}}
    elif statement_timeout_ms and dialect == "mysql":
        seconds = statement_timeout_ms / 1000
        kwargs["connect_args"] = {"init_command": f"SET SESSION max_statement_time={seconds:.3f}"}
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Foreign keys on, WAL, and write transactions that take the write lock at BEGIN.

    A deferred SQLite transaction that reads and then writes fails with SQLITE_BUSY when
    another writer committed in between; BEGIN IMMEDIATE queues it behind busy_timeout.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(SQLITE_BUSY_TIMEOUT_PRAGMA)
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")



@asynccontextmanager
async def write_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside one transaction: committed on success, rolled back on error."""
    sync_conn = await greenlet_spawn(_checkout, engine.sync_engine, None, True)
    async with _held(engine, sync_conn, commit=True) as conn:
        yield conn


@asynccontextmanager
async def snapshot_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only view in which every statement sees one snapshot (REPEATABLE READ on
    PostgreSQL and MariaDB; SQLite's transaction already is one)."""
    isolation = "REPEATABLE READ" if engine.dialect.name in ("postgresql", "mysql") else None
    sync_conn = await greenlet_spawn(_checkout, engine.sync_engine, isolation, True)
    async with _held(engine, sync_conn, commit=True) as conn:
        yield conn


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection without an explicit transaction: reads pay no BEGIN/COMMIT round trips."""
    sync_conn = await greenlet_spawn(_checkout, engine.sync_engine, "AUTOCOMMIT", False)
    async with _held(engine, sync_conn, commit=False) as conn:
        yield conn


# Every request holds a connection, and each step of SQLAlchemy's own async context
# managers (connect, begin, commit, close, the last one shielded in a task of its own)
# is a separate greenlet switch: about 0.17 ms of CPU per request here, a seventh of a
# network create. These take and give back the connection in one switch each.

def _checkout(sync_engine: Engine, isolation: str | None, begin: bool) -> Connection:
    conn = sync_engine.connect()
    try:
        if isolation:
            conn = conn.execution_options(isolation_level=isolation)
        if begin:
            conn.begin()
    except BaseException:
        conn.close()
        raise
    return conn


def _release(conn: Connection, commit: bool) -> None:
    try:
        if commit and conn.in_transaction():
            conn.commit()
    finally:
        conn.close()  # rolls back whatever is left and returns the connection to the pool


@asynccontextmanager
async def _held(engine: AsyncEngine, sync_conn: Connection, commit: bool):
    conn = AsyncConnection(engine, sync_conn)
    try:
        yield conn
    except BaseException:
        await _shielded_close(sync_conn)
        raise
    try:
        await greenlet_spawn(_release, sync_conn, commit)
    except asyncio.CancelledError:
        await _shielded_close(sync_conn)
        raise


async def _shielded_close(sync_conn: Connection) -> None:
    """Roll back and return the connection even if the caller is being cancelled."""
    if not sync_conn.closed:
        await asyncio.shield(greenlet_spawn(sync_conn.close))


AUTOVACUUM_OFF = (
    "PostgreSQL runs with autovacuum = off: rows of deleted networks and segments and of "
    "delivered events stay in the tables, and the planner keeps plans made for their old "
    "sizes, so writes slow down as they build up. Turn autovacuum on, or run VACUUM ANALYZE "
    "on this database regularly."
)


async def server_warnings(conn: AsyncConnection) -> list[str]:
    """What the database server's configuration means for segmentd, worth an operator's
    attention (logged at start-up, printed by `segmentd db check`)."""
    if conn.dialect.name != "postgresql":
        return []
    autovacuum = (await conn.execute(text("SHOW autovacuum"))).scalar()
    return [AUTOVACUUM_OFF] if autovacuum == "off" else []


async def ping(conn: AsyncConnection) -> None:
    """A round trip that proves the database answers."""
    await conn.execute(text("SELECT 1"))


# Failures after which the whole transaction may simply run again: the database picked it
# as a deadlock victim, or could not serialize it. PostgreSQL names them by SQLSTATE
# (40P01 deadlock_detected, 40001 serialization_failure); MariaDB by error number (1213
# ER_LOCK_DEADLOCK; 1020 ER_CHECKREAD, a row changed since a REPEATABLE READ snapshot read
# it). SQLite has a single writer and never deadlocks.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
RETRYABLE_MYSQL_ERRNOS = frozenset({1213, 1020})


def is_transient_conflict(error: BaseException) -> bool:
    """Whether `error` (a SQLAlchemy DBAPIError or the driver's own) means that re-running
    the transaction from its start can succeed."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return True
        args = getattr(error, "args", ())
        if args and isinstance(args[0], int) and args[0] in RETRYABLE_MYSQL_ERRNOS:
            return True
        error = getattr(error, "orig", None) or error.__cause__
    return False
