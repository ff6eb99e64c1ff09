"""Segment rows: insert with a race-free segmentation-ID allocation, reads, updates, deletes.

A free ID is found in SQL from the gaps between taken ones, starting at a random point so
concurrent writers rarely pick the same one; the insert skips on any unique conflict
(allocation key or segment_index) and the caller retries a bounded number of times.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    delete,
    exists,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.listing import Attribute, fetch_page
from segmentd.db.models import segments as t
from segmentd.query import ListQuery

ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(t.c.id),
    "network_id": Attribute(t.c.network_id),
    "name": Attribute(t.c.name, nullable=True),
    "description": Attribute(t.c.description, sort=False),
    "network_type": Attribute(t.c.network_type),
    "physical_network": Attribute(t.c.physical_network, nullable=True),
    "segmentation_id": Attribute(t.c.segmentation_id, nullable=True),
    "revision_number": Attribute(t.c.revision_number, sort=False),
}

COLUMNS = [
    t.c.id, t.c.network_id, t.c.name, t.c.description, t.c.network_type,
    t.c.physical_network, t.c.segmentation_id, t.c.segment_index,
    t.c.created_at, t.c.updated_at, t.c.revision_number,
]


def _key(table, network_type: str, alloc_physnet: str):
    return and_(table.c.network_type == network_type, table.c.alloc_physnet == alloc_physnet)


def free_id_candidate(network_type: str, alloc_physnet: str, lo: int, hi: int, start: int):
    """A scalar SQL expression: the first free ID at or after `start` in [lo, hi], wrapping."""
    s2 = t.alias("taken")

    def is_free(value):
        return ~exists().where(_key(t, network_type, alloc_physnet), t.c.alloc_id == value)

    def first_gap_from(frm: int):
        nxt = t.c.alloc_id + 1
        return (
            select(nxt)
            .where(
                _key(t, network_type, alloc_physnet),
                t.c.alloc_id >= frm,
                t.c.alloc_id < hi,
                ~exists().where(_key(s2, network_type, alloc_physnet), s2.c.alloc_id == nxt),
            )
            .order_by(t.c.alloc_id)
            .limit(1)
            .scalar_subquery()
        )

    start_lit, lo_lit = literal(start, Integer), literal(lo, Integer)
    # COALESCE evaluates lazily on PostgreSQL and SQLite: later branches run only if needed.
    return func.coalesce(
        select(start_lit).where(is_free(start_lit)).scalar_subquery(),
        first_gap_from(start),
        select(lo_lit).where(is_free(lo_lit)).scalar_subquery(),
        first_gap_from(lo),
    )


def _next_index(network_id: str):
    return (
        select(func.coalesce(func.max(t.c.segment_index) + 1, 0))
        .where(t.c.network_id == network_id)
        .scalar_subquery()
    )


def _insert_skipping_conflicts(conn: AsyncConnection, select_stmt: Select, columns: list[str]):
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(t).from_select(columns, select_stmt).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(t).from_select(columns, select_stmt).on_conflict_do_nothing()
    else:
        stmt = t.insert().prefix_with("IGNORE").from_select(columns, select_stmt)
    return stmt


async def insert_segment(
    conn: AsyncConnection, row: dict[str, Any], alloc_id, carries_id: bool
) -> dict[str, Any] | None:
    """Insert a segment; None when a unique key (ID or index) was taken by someone else.

    `row` holds every column except alloc_id, segmentation_id and segment_index. `alloc_id`
    is an int or, when the server allocates, a SQL expression; `carries_id` says whether the
    segment shows it as its segmentation_id (flat segments do not).
    """
    alloc = literal(alloc_id, Integer) if isinstance(alloc_id, int) else alloc_id
    cand = select(alloc.label("v")).subquery("cand")
    names = list(row) + ["alloc_id", "segmentation_id", "segment_index"]
    values = [literal(v, t.c[k].type) for k, v in row.items()]
    values += [cand.c.v, cand.c.v if carries_id else literal(None, Integer)]
    values.append(_next_index(row["network_id"]))
    src = select(*values).select_from(cand).where(cand.c.v.is_not(None))
    stmt = _insert_skipping_conflicts(conn, src, names)
    if conn.dialect.name == "mysql":
        if (await conn.execute(stmt)).rowcount != 1:
            return None
        return dict(await get_segment(conn, row["id"]))
    got = (await conn.execute(stmt.returning(t.c.alloc_id, t.c.segment_index))).first()
    if got is None:
        return None
    out = dict(row)
    out["segment_index"] = got[1]
    out["segmentation_id"] = got[0] if carries_id else None
    return out


async def free_id_exists(conn: AsyncConnection, network_type, alloc_physnet, lo, hi) -> bool:
    cand = free_id_candidate(network_type, alloc_physnet, lo, hi, lo)
    return (await conn.execute(select(cand))).scalar() is not None


async def allocation_taken(conn: AsyncConnection, network_type, alloc_physnet, alloc_id) -> bool:
    stmt = select(
        exists().where(_key(t, network_type, alloc_physnet), t.c.alloc_id == alloc_id)
    )
    return bool((await conn.execute(stmt)).scalar())


def base_select() -> Select:
    return select(*COLUMNS)


async def get_segment(conn: AsyncConnection, segment_id: str, scope: Select | None = None):
    stmt = (scope if scope is not None else base_select()).where(t.c.id == segment_id)
    return (await conn.execute(stmt)).mappings().first()


async def list_segments(conn: AsyncConnection, q: ListQuery, scope: Select | None = None):
    stmt = scope if scope is not None else base_select()
    return await fetch_page(conn, stmt, ATTRIBUTES, t.c.id, q)


async def segments_of_networks(conn: AsyncConnection, network_ids: list[str]):
    """Segments of the given networks in segment_index order, grouped by network."""
    out: dict[str, list] = {nid: [] for nid in network_ids}
    if not network_ids:
        return out
    stmt = base_select().where(t.c.network_id.in_(network_ids)).order_by(
        t.c.network_id, t.c.segment_index
    )
    for row in (await conn.execute(stmt)).mappings():
        out[row["network_id"]].append(row)
    return out


async def update_segment(
    conn: AsyncConnection, segment_id: str, values: dict, revision: int | None = None
):
    """Apply `values` and bump the revision; None if missing or the revision did not match."""
    stmt = (
        update(t)
        .where(t.c.id == segment_id)
        .values(**values, revision_number=t.c.revision_number + 1)
    )
    if revision is not None:
        stmt = stmt.where(t.c.revision_number == revision)
    if conn.dialect.name == "mysql":
        if (await conn.execute(stmt)).rowcount != 1:
            return None
        return await get_segment(conn, segment_id)
    return (await conn.execute(stmt.returning(*COLUMNS))).mappings().first()


async def reassign_id(conn: AsyncConnection, segment_id: str, new_id: int, now):
    """Give a segment another ID; None if that ID is taken (checked by the unique key)."""
    stmt = (
        update(t)
        .where(t.c.id == segment_id)
        .values(alloc_id=new_id, segmentation_id=new_id, updated_at=now,
                revision_number=t.c.revision_number + 1)
    )
    try:
        async with conn.begin_nested():
            await conn.execute(stmt)
    except IntegrityError:
        return None
    return await get_segment(conn, segment_id)


async def delete_segment(conn: AsyncConnection, segment_id: str) -> bool:
    """Delete the row and so free its segmentation ID in the same transaction."""
    result = await conn.execute(delete(t).where(t.c.id == segment_id))
    return result.rowcount == 1


async def delete_network_segments(conn: AsyncConnection, network_id: str):
    """Delete every segment of a network; returns the deleted rows for their events."""
    rows = (
        await conn.execute(base_select().where(t.c.network_id == network_id))
    ).mappings().all()
    await conn.execute(delete(t).where(t.c.network_id == network_id))
    return rows


def count_all() -> Select:
    return select(func.count()).select_from(t)


