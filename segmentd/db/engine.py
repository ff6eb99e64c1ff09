"""Engines per database, and the two ways a caller holds a connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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
    async with engine.begin() as conn:
        yield conn


@asynccontextmanager
async def snapshot_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only view in which every statement sees one snapshot (REPEATABLE READ on
    PostgreSQL and MariaDB; SQLite's transaction already is one)."""
    async with engine.connect() as conn:
        if conn.dialect.name in ("postgresql", "mysql"):
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            yield conn


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection without an explicit transaction: reads pay no BEGIN/COMMIT round trips."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


async def ping(conn: AsyncConnection) -> None:
    """A round trip that proves the database answers."""
    await conn.execute(text("SELECT 1"))
