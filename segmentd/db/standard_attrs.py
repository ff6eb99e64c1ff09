"""Statements every table with Neutron's standard attributes shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection


@lru_cache(maxsize=256)
def revising_update(table: Table, keys: tuple[str, ...], check_revision: bool, returning, columns):
    """UPDATE of `keys` (params v_<key>) bumping revision_number, by :row_id [and :rev].

    Cached per shape: building statements is a measurable share of a request's Python time.
    """
    values = {k: bindparam(f"v_{k}") for k in keys}
    values["revision_number"] = table.c.revision_number + 1
    stmt = update(table).where(table.c.id == bindparam("row_id")).values(values)
    if check_revision:
        stmt = stmt.where(table.c.revision_number == bindparam("rev"))
    return stmt.returning(*columns) if returning else stmt


async def update_revised(
    conn: AsyncConnection,
    table: Table,
    columns: tuple,
    row_id: str,
    values: dict[str, Any],
    revision: int | None,
    reread: Callable[[], Awaitable[Any]],
):
    """Apply `values` and bump the revision; None if missing or the revision did not match.

    MariaDB has no UPDATE ... RETURNING, so there the row is read again with `reread`.
    """
    returning = conn.dialect.name != "mysql"
    stmt = revising_update(table, tuple(sorted(values)), revision is not None, returning, columns)
    params = {**{f"v_{k}": v for k, v in values.items()}, "row_id": row_id, "rev": revision}
    result = await conn.execute(stmt, params)
    if returning:
        return result.mappings().first()
    return await reread() if result.rowcount == 1 else None
