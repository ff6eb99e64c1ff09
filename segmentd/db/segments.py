"""Segment rows: insert with a race-free segmentation-ID allocation, reads, updates, deletes.

A free ID is found in SQL from the gaps between taken ones, starting at a random point so
concurrent writers rarely pick the same one; the insert skips on any unique conflict
(allocation key or segment_index) and the caller retries a bounded number of times.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.context import RequestContext
from segmentd.db import driver
from segmentd.db.listing import Attribute, fetch_page
from segmentd.db.models import networks as n
from segmentd.db.models import segments as t
from segmentd.db.networks import DELETE as DELETE_NETWORK
from segmentd.db.networks import insert_network, scoped_lookup, visible_to
from segmentd.db.standard_attrs import update_revised
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

COLUMNS = (
    t.c.id, t.c.network_id, t.c.name, t.c.description, t.c.network_type,
    t.c.physical_network, t.c.segmentation_id, t.c.segment_index,
    t.c.created_at, t.c.updated_at, t.c.revision_number,
)


def _key(table):
    return and_(
        table.c.network_type == bindparam("network_type"),
        table.c.alloc_physnet == bindparam("alloc_physnet"),
    )


PROBE_PARAMS = tuple(f"probe{i}" for i in range(c.ALLOCATION_PROBES))


def probe_params(dialect: str, probes) -> dict[str, Any]:
    """The statement parameters carrying the random IDs to try, in the dialect's form."""
    if dialect == "postgresql":
        return {PROBE_PARAMS[0]: probes[0], "probe_list": list(probes)}
    return dict(zip(PROBE_PARAMS, probes, strict=True))


def _free_id_candidate(dialect: str):
    """A scalar SQL expression: a free ID in [:lo, :hi], or NULL when the range is full.

    It tries the random IDs :probe0..N, then the first gap after :probe0, then :lo and
    the first gap after it (wrapping). COALESCE evaluates lazily on PostgreSQL, SQLite and
    MariaDB, so later branches run only when the earlier ones found nothing. PostgreSQL
    takes the random IDs as one array, tried in order by one subquery: every subquery is a
    plan node that each execution starts up, used or not (separate probes made allocation
    cost as much database time as the rest of a network create).
    """
    lo, hi = (bindparam(n, type_=Integer) for n in ("lo", "hi"))
    start = bindparam(PROBE_PARAMS[0], type_=Integer)

    def is_free(value):
        return ~exists().where(_key(t), t.c.alloc_id == value)

    def first_gap_from(frm):
        # One ordered index range scan, pairing each taken ID with the next one: linear
        # in the IDs passed whatever the planner's statistics say (an anti-join written
        # with NOT EXISTS was planned as a quadratic loop on a freshly filled table).
        taken = (
            select(t.c.alloc_id.label("a"),
                   func.lead(t.c.alloc_id).over(order_by=t.c.alloc_id).label("nxt"))
            .where(_key(t), t.c.alloc_id >= frm, t.c.alloc_id <= hi)
            .subquery()
        )
        return (
            select(taken.c.a + 1)
            .where(taken.c.a < hi, or_(taken.c.nxt.is_(None), taken.c.nxt > taken.c.a + 1))
            .order_by(taken.c.a)
            .limit(1)
            .scalar_subquery()
        )

    if dialect == "postgresql":
        tried = func.unnest(bindparam("probe_list", type_=postgresql.ARRAY(Integer)))
        tried = tried.table_valued("v", with_ordinality="n").render_derived("tried")
        # A scalar subquery per tried ID, not NOT EXISTS: PostgreSQL turns NOT EXISTS into
        # an anti-join, which with a small table's statistics read every taken ID of the key.
        taken = select(literal(1)).where(_key(t), t.c.alloc_id == tried.c.v).limit(1)
        probes = [select(tried.c.v).where(taken.scalar_subquery().is_(None))
                  .order_by(tried.c.n).limit(1).scalar_subquery()]
    else:
        probes = [select(p).where(is_free(p)).scalar_subquery()
                  for p in (start, *(bindparam(n, type_=Integer) for n in PROBE_PARAMS[1:]))]
    return func.coalesce(
        *probes,
        first_gap_from(start),
        select(lo).where(is_free(lo)).scalar_subquery(),
        first_gap_from(lo),
    )


@cache
def _free_id(dialect: str):
    return select(_free_id_candidate(dialect))


ROW_PARAMS = (
    "id", "network_id", "name", "description", "created_at", "updated_at", "revision_number",
    "network_type", "alloc_physnet", "physical_network",
)


NETWORK_PARAMS = tuple(f"n_{col.name}" for col in n.c)


def _insert_statement(dialect: str, allocate: bool, carries_id: bool, with_network: bool):
    """INSERT ... SELECT that takes the ID and the next segment_index in one statement.

    Any unique conflict (ID or index) inserts nothing, so the caller can retry without a
    failed transaction; PostgreSQL waits for a conflicting in-flight insert to settle first.
    `with_network` (PostgreSQL) also inserts the segment's new network, as a CTE: one round
    trip for the common create. The CTE runs whether or not the segment row is inserted,
    and the foreign key is checked at the end of the statement, when the network exists.
    """
    alloc = _free_id_candidate(dialect) if allocate else bindparam("alloc_id", type_=Integer)
    cand = select(alloc.label("v"))
    if dialect == "postgresql":
        # OFFSET 0 keeps the subquery whole: pulled up, the candidate expression is copied
        # into each place that reads it (ID, segmentation_id, the NULL test) and planned
        # three times over (2.2 ms of planning per execution instead of 0.7).
        cand = cand.offset(0)
    cand = cand.subquery("cand")
    next_index = (
        select(func.coalesce(func.max(t.c.segment_index) + 1, 0))
        .where(t.c.network_id == bindparam("network_id"))
        .scalar_subquery()
    )
    values = [bindparam(n, type_=t.c[n].type) for n in ROW_PARAMS]
    values += [cand.c.v, cand.c.v if carries_id else null(), next_index]
    names = [*ROW_PARAMS, "alloc_id", "segmentation_id", "segment_index"]
    src = select(*values).select_from(cand).where(cand.c.v.is_not(None))
    if dialect == "postgresql":
        stmt = postgresql.insert(t).from_select(names, src).on_conflict_do_nothing()
        if with_network:
            new_network = insert(n).values({c.name: bindparam(f"n_{c.name}") for c in n.c})
            stmt = stmt.add_cte(new_network.cte("new_network"))
    elif dialect == "sqlite":
        stmt = sqlite.insert(t).from_select(names, src).on_conflict_do_nothing()
    else:
        return t.insert().prefix_with("IGNORE").from_select(names, src)
    return stmt.returning(t.c.alloc_id, t.c.segment_index)


@cache
def insert_statement(dialect: str, allocate: bool, carries_id: bool, with_network: bool = False):
    return _insert_statement(dialect, allocate, carries_id, with_network)


async def insert_segment(
    conn: AsyncConnection,
    row: dict[str, Any],
    *,
    carries_id: bool,
    alloc_id: int | None = None,
    lo: int | None = None,
    hi: int | None = None,
    probes: tuple[int, ...] = (),
    new_network: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Insert a segment; None when a unique key (ID or index) was taken by someone else.

    `row` holds the ROW_PARAMS columns. Give `alloc_id` for a fixed ID, or `lo`, `hi` and
    ALLOCATION_PROBES random IDs in that range for the server to find a free one.
    `new_network` is the row of the segment's network, not inserted yet: it is inserted
    first (in the same statement on PostgreSQL), whether or not the segment is.
    """
    dialect = conn.dialect.name
    allocate = alloc_id is None
    params = dict(row)
    if allocate:
        params.update(lo=lo, hi=hi, **probe_params(dialect, probes))
    else:
        params["alloc_id"] = alloc_id
    with_network = new_network is not None and dialect == "postgresql"
    if with_network:
        params.update({f"n_{k}": v for k, v in new_network.items()})
    elif new_network is not None:
        await insert_network(conn, new_network)
    stmt = insert_statement(dialect, allocate, carries_id, with_network)
    if dialect == "mysql":
        if (await conn.execute(stmt, params)).rowcount != 1:
            return None
        return dict(await get_segment(conn, row["id"]))
    returned = await driver.fetch(conn, stmt, params)
    if not returned:
        return None
    got = returned[0]
    out = dict(row)
    out["segment_index"] = got[1]
    out["segmentation_id"] = got[0] if carries_id else None
    return out


async def free_id_exists(conn: AsyncConnection, network_type, alloc_physnet, lo, hi) -> bool:
    params = dict(network_type=network_type, alloc_physnet=alloc_physnet, lo=lo, hi=hi)
    params.update(probe_params(conn.dialect.name, [lo] * len(PROBE_PARAMS)))
    return (await conn.execute(_free_id(conn.dialect.name), params)).scalar() is not None


ALLOCATION_TAKEN = select(exists().where(_key(t), t.c.alloc_id == bindparam("alloc_id")))


async def allocation_taken(conn: AsyncConnection, network_type, alloc_physnet, alloc_id) -> bool:
    params = dict(network_type=network_type, alloc_physnet=alloc_physnet, alloc_id=alloc_id)
    return bool((await conn.execute(ALLOCATION_TAKEN, params)).scalar())



# Reads carry the owning network's project (for policy targets) and, for callers who are
# not admin, see only segments of networks they can see.
WITH_OWNER = select(*COLUMNS, n.c.project_id).join(n, n.c.id == t.c.network_id)
SEGMENT_BY_ID = select(*COLUMNS).where(t.c.id == bindparam("segment_id"))
OWNED_BY_ID = WITH_OWNER.where(t.c.id == bindparam("segment_id"))
OWNED_BY_ID_SCOPED = OWNED_BY_ID.where(
    or_(n.c.project_id == bindparam("project_id"), n.c.shared.is_(True))
)


async def get_segment(conn: AsyncConnection, segment_id: str):
    """The row by id, unscoped: for writers that already checked access."""
    return (await conn.execute(SEGMENT_BY_ID, {"segment_id": segment_id})).mappings().first()


async def get_visible_segment(conn: AsyncConnection, ctx: RequestContext, segment_id: str):
    """The segment with its network's project_id, if the caller may see that network."""
    stmt, params = scoped_lookup(ctx, OWNED_BY_ID, OWNED_BY_ID_SCOPED, segment_id=segment_id)
    return (await conn.execute(stmt, params)).mappings().first()


async def list_segments(conn: AsyncConnection, ctx: RequestContext, q: ListQuery, where=None,
                        grants=None, keep=None):
    """A page of the segments of networks `grants` admits (see networks.visible_to), `keep`
    deciding row by row; `where` narrows it further (the host filter)."""
    stmt = WITH_OWNER.where(visible_to(ctx, grants))
    if where is not None:
        stmt = stmt.where(where)
    return await fetch_page(conn, stmt, ATTRIBUTES, t.c.id, q, keep=keep)


OF_NETWORKS = (
    select(*COLUMNS)
    .where(t.c.network_id.in_(bindparam("network_ids", expanding=True)))
    .order_by(t.c.network_id, t.c.segment_index)
)


async def segments_of_networks(conn: AsyncConnection, network_ids: list[str]):
    """Segments of the given networks in segment_index order, grouped by network."""
    out: dict[str, list] = {nid: [] for nid in network_ids}
    if not network_ids:
        return out
    for row in (await conn.execute(OF_NETWORKS, {"network_ids": network_ids})).mappings():
        out[row["network_id"]].append(row)
    return out


async def update_segment(
    conn: AsyncConnection, segment_id: str, values: dict, revision: int | None = None
):
    """Apply `values` and bump the revision; None if missing or the revision did not match."""
    return await update_revised(
        conn, t, COLUMNS, segment_id, values, revision, lambda: get_segment(conn, segment_id)
    )


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


DELETE_BY_ID = delete(t).where(t.c.id == bindparam("segment_id"))
OF_NETWORK = select(*COLUMNS).where(t.c.network_id == bindparam("network_id"))
DELETE_OF_NETWORK = delete(t).where(t.c.network_id == bindparam("network_id"))


async def delete_segment(conn: AsyncConnection, segment_id: str) -> bool:
    """Delete the row and so free its segmentation ID in the same transaction."""
    result = await conn.execute(DELETE_BY_ID, {"segment_id": segment_id})
    return result.rowcount == 1


async def delete_network_segments(conn: AsyncConnection, network_id: str):
    """Delete every segment of a network; returns the deleted rows for their events."""
    params = {"network_id": network_id}
    rows = (await conn.execute(OF_NETWORK, params)).mappings().all()
    await conn.execute(DELETE_OF_NETWORK, params)
    return rows


def _network_delete_statement():
    """PostgreSQL: a network's segments (returned, in index order) and the network itself,
    deleted in one statement. Call with the network row locked, so no segment can be
    added meanwhile and every segment is one this statement sees."""
    gone_segments = (
        delete(t).where(t.c.network_id == bindparam("network_id")).returning(*COLUMNS)
        .cte("gone_segments")
    )
    gone_network = delete(n).where(n.c.id == bindparam("network_id")).cte("gone_network")
    return (
        select(*gone_segments.c).add_cte(gone_network).order_by(gone_segments.c.segment_index)
    )


DELETE_NETWORK_AND_SEGMENTS = _network_delete_statement()


async def delete_network_and_segments(conn: AsyncConnection, network_id: str):
    """Delete a locked network and its segments; returns the deleted segments' rows."""
    if conn.dialect.name != "postgresql":
        segments = await delete_network_segments(conn, network_id)
        await conn.execute(DELETE_NETWORK, {"row_id": network_id})
        return segments
    return await driver.fetch_dicts(
        conn, DELETE_NETWORK_AND_SEGMENTS, {"network_id": network_id}
    )



