"""Statements sent straight to the database driver: on PostgreSQL, the hot writes to asyncpg.

Every write request runs two or three statements. Through SQLAlchemy each costs about
0.1 ms of Python beyond asyncpg's own work (execution context, parameter processing,
result wrapping); on a 2-core machine that was a fifth of a network create. For the
statements on every write path (the segment insert, the change's events and audit row)
this module compiles the SQLAlchemy statement once to PostgreSQL's numbered form and
hands it to asyncpg, which keeps its own prepared-statement cache per connection.

The statement runs in the caller's SQLAlchemy transaction: if SQLAlchemy has not sent
BEGIN yet (it does so lazily, at the first statement), it is asked to first. That uses
the dialect adapter's `_start_transaction` (SQLAlchemy 2.0 and 2.1); where a SQLAlchemy version lacks it, or the
database is not PostgreSQL on asyncpg, callers get the ordinary path and the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, exc, insert
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement

_DIALECT = PGDialect_asyncpg()


@lru_cache(maxsize=256)
def _compiled(stmt: ClauseElement) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """SQL with $n placeholders, the parameter name of each, and the statement's own values.

    Statements reaching here are module constants or cached builders, so the cache holds
    a few dozen entries for the life of the process.
    """
    compiled = stmt.compile(dialect=_DIALECT)
    names = tuple(compiled.positiontup or ())
    fixed = {name: b.value for name, b in compiled.binds.items() if b.value is not None}
    return compiled.string, names, fixed


async def driver_connection(conn: AsyncConnection) -> Any | None:
    """The asyncpg connection under `conn`, inside its transaction; None off the fast path."""
    if conn.dialect.driver != "asyncpg":
        return None
    adapted = (await raw_connection(conn)).dbapi_connection
    start = getattr(adapted, "_start_transaction", None)
    if start is None or not hasattr(adapted, "_transaction"):
        return None
    if adapted._transaction is None:
        await start()  # BEGIN, unless the connection is in autocommit mode
    return adapted._connection


async def fetch(
    conn: AsyncConnection, stmt: ClauseElement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """All rows `stmt` returns with `params` (none for a statement without RETURNING)."""
    driver = await driver_connection(conn)
    if driver is None:
        result = await conn.execute(stmt, dict(params))
        return result.all() if result.returns_rows else []
    return await _driver_fetch(driver, stmt, params)


async def fetch_autocommit(
    conn: AsyncConnection, stmt: ClauseElement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """Run one statement as its own transaction: `conn` must have sent nothing yet (its
    transaction has not begun), so the statement commits itself and the caller's later
    commit has nothing to do. PostgreSQL on asyncpg only."""
    raw = await raw_connection(conn)
    if not transaction_not_begun(raw):
        raise RuntimeError("fetch_autocommit needs a connection with no transaction begun")
    return await _driver_fetch(raw.dbapi_connection._connection, stmt, params)


async def raw_connection(conn: AsyncConnection) -> Any:
    """The pooled DBAPI connection under `conn`, read without a greenlet switch when it is
    plainly there (`get_raw_connection` costs a switch, and may reconnect)."""
    sync = conn.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        return sync.connection
    return await conn.get_raw_connection()


def transaction_not_begun(raw) -> bool:
    """True when the asyncpg adapter under a pooled connection has begun no transaction
    (False too when this SQLAlchemy version's adapter does not say)."""
    adapted = raw.dbapi_connection
    return hasattr(adapted, "_connection") and getattr(adapted, "_transaction", True) is None


async def fetch_dicts(
    conn: AsyncConnection, stmt: ClauseElement, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Like fetch, each row as a dict keyed by column name."""
    driver = await driver_connection(conn)
    if driver is None:
        return [dict(m) for m in (await conn.execute(stmt, dict(params))).mappings()]
    return [dict(record) for record in await _driver_fetch(driver, stmt, params)]


async def _driver_fetch(driver, stmt: ClauseElement, params: Mapping[str, Any]):
    sql, names, fixed = _compiled(stmt)
    args = [params[n] if n in params else fixed[n] for n in names]
    try:
        return await driver.fetch(sql, *args)
    except Exception as error:
        raise _translated(error, sql) from error


async def insert_many(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows (dicts with the same keys) in the caller's transaction: with COPY on
    PostgreSQL, which takes thousands of rows at a fraction of an INSERT's cost per row."""
    if not rows:
        return
    driver = await driver_connection(conn)
    if driver is None:
        await conn.execute(insert(table), [dict(r) for r in rows])
        return
    columns = list(rows[0])
    try:
        await driver.copy_records_to_table(
            table.name, columns=columns, records=[tuple(r[c] for c in columns) for r in rows])
    except Exception as error:
        raise _translated(error, f"COPY {table.name}") from error


def _translated(error: Exception, sql: str) -> Exception:
    """The SQLAlchemy exception the ordinary path raises, so callers catch one kind.

    (Parameters are left out of it: they may hold what a user sent.)
    """
    import asyncpg  # only ever reached with asyncpg in use

    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return exc.IntegrityError(sql, None, error)
    if isinstance(error, asyncpg.PostgresError):
        return exc.DatabaseError(sql, None, error)
    if isinstance(error, (OSError, asyncpg.InterfaceError)):
        return exc.OperationalError(sql, None, error)
    return error
