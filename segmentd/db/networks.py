"""Network rows, always read through a statement scoped to what the caller may see."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import (
    Boolean,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.context import RequestContext
from segmentd.db import driver
from segmentd.db.listing import Attribute, convert_filter_value, fetch_page, scoped
from segmentd.db.models import networks as t
from segmentd.db.models import segments as s
from segmentd.db.standard_attrs import update_revised
from segmentd.query import ListQuery, Rows

ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(t.c.id),
    "name": Attribute(t.c.name),
    "description": Attribute(t.c.description, sort=False),
    "project_id": Attribute(t.c.project_id),
    "tenant_id": Attribute(t.c.project_id),
    "admin_state_up": Attribute(t.c.admin_state_up),
    "shared": Attribute(t.c.shared),
    "status": Attribute(t.c.status),
    "mtu": Attribute(t.c.mtu),
    "revision_number": Attribute(t.c.revision_number, sort=False),
    # segmentd has no external networks (no external-net extension): every network is
    # internal, so router:external=False matches each one and True none, as in Neutron.
    "router:external": Attribute(literal(False, Boolean()), sort=False),
}

# Provider filters match networks having one segment with all the given values (Neutron
# joins the segments table the same way since bug 2109354).
PROVIDER_FILTERS: dict[str, Attribute] = {
    "provider:network_type": Attribute(s.c.network_type),
    "provider:physical_network": Attribute(s.c.physical_network, nullable=True),
    "provider:segmentation_id": Attribute(s.c.segmentation_id, nullable=True),
}

COLUMNS = (
    t.c.id, t.c.project_id, t.c.name, t.c.description, t.c.admin_state_up, t.c.shared,
    t.c.status, t.c.mtu, t.c.created_at, t.c.updated_at, t.c.revision_number,
)


def visible_to(ctx: RequestContext, grants: frozenset[str] | None = None):
    """Admin and service see every network; others their project's and shared ones.

    `grants` narrows that to the kinds of rows the policy lets a list read (None: all).
    """
    return scoped(ctx, grants, {Rows.OWN: t.c.project_id == ctx.project_id,
                                Rows.SHARED: t.c.shared.is_(True)})


INSERT = insert(t)
BY_ID_ANY = select(*COLUMNS).where(t.c.id == bindparam("network_id"))
BY_ID_SCOPED = BY_ID_ANY.where(
    or_(t.c.project_id == bindparam("project_id"), t.c.shared.is_(True))
)


async def insert_network(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(INSERT, row)


def scoped_lookup(ctx: RequestContext, any_stmt, scoped_stmt, **params):
    """Pick the prebuilt statement for the caller: every project, or its own plus shared."""
    if ctx.reads_all_projects:
        return any_stmt, params
    return scoped_stmt, {**params, "project_id": ctx.project_id}


async def get_network(conn: AsyncConnection, ctx: RequestContext, network_id: str):
    """The network if the caller may see it (prebuilt statements: this is a hot path)."""
    stmt, params = scoped_lookup(ctx, BY_ID_ANY, BY_ID_SCOPED, network_id=network_id)
    return (await conn.execute(stmt, params)).mappings().first()


LOCKED_BY_ID_ANY = BY_ID_ANY.with_for_update()
LOCKED_BY_ID_SCOPED = BY_ID_SCOPED.with_for_update()
# FOR KEY SHARE on PostgreSQL (the lock a foreign key check takes): it conflicts with the
# FOR UPDATE of subnet writes and deletes, not with other port writes.
SHARED_BY_ID_ANY = BY_ID_ANY.with_for_update(read=True, key_share=True)
SHARED_BY_ID_SCOPED = BY_ID_SCOPED.with_for_update(read=True, key_share=True)


async def get_network_for_share(conn: AsyncConnection, ctx: RequestContext, network_id: str):
    """The visible network row under a shared lock: port writes on one network run side by
    side, while a writer of the network's shape (subnets, deletion) waits for them."""
    if conn.dialect.name == "sqlite":
        return await get_network(conn, ctx, network_id)
    stmt, params = scoped_lookup(
        ctx, SHARED_BY_ID_ANY, SHARED_BY_ID_SCOPED, network_id=network_id
    )
    found = await driver.fetch_dicts(conn, stmt, params)
    return found[0] if found else None


async def get_network_for_update(conn: AsyncConnection, ctx: RequestContext, network_id: str):
    """The visible network row, locked against concurrent writers where the database can."""
    if conn.dialect.name == "sqlite":  # SQLite's BEGIN IMMEDIATE already holds the write lock
        return await get_network(conn, ctx, network_id)
    stmt, params = scoped_lookup(
        ctx, LOCKED_BY_ID_ANY, LOCKED_BY_ID_SCOPED, network_id=network_id
    )
    found = await driver.fetch_dicts(conn, stmt, params)  # on every write path
    return found[0] if found else None


LOCK_OF_SEGMENT = (
    select(t.c.id)
    .where(t.c.id == select(s.c.network_id).where(s.c.id == bindparam("segment_id")).scalar_subquery())
    .with_for_update()
)


KEY_SHARE_BY_ID = (
    select(t.c.id).where(t.c.id == bindparam("network_id"))
    .with_for_update(read=True, key_share=True)
)


async def share_lock_network(conn: AsyncConnection, network_id: str) -> None:
    """The network's FOR KEY SHARE lock, as port writes take it, without reading the row."""
    if conn.dialect.name != "sqlite":
        await conn.execute(KEY_SHARE_BY_ID, {"network_id": network_id})


async def lock_network_of_segment(conn: AsyncConnection, segment_id: str) -> None:
    """Take the row lock of a segment's network (nothing if the segment is gone), so the
    segment is then read and changed with its network's other writers held off."""
    if conn.dialect.name == "sqlite":  # BEGIN IMMEDIATE already holds the write lock
        return
    await driver.fetch(conn, LOCK_OF_SEGMENT, {"segment_id": segment_id})


async def list_networks(
    conn: AsyncConnection, ctx: RequestContext, q: ListQuery, grants=None, keep=None, where=None
):
    """A page of the networks `grants` admits (see visible_to), `keep` deciding row by row;
    `where` narrows it further."""
    stmt = select(*COLUMNS).where(visible_to(ctx, grants))
    if where is not None:
        stmt = stmt.where(where)
    provider = {k: v for k, v in q.filters.items() if k in PROVIDER_FILTERS}
    if provider:
        clauses = []
        for name, raws in provider.items():
            attr = PROVIDER_FILTERS[name]
            values = [convert_filter_value(name, attr, r) for r in raws]
            clauses.append(attr.column.in_(values))
        stmt = stmt.where(exists().where(s.c.network_id == t.c.id, and_(*clauses)))
        q = replace(q, filters={k: v for k, v in q.filters.items() if k not in provider})
    return await fetch_page(conn, stmt, ATTRIBUTES, t.c.id, q, keep=keep)


async def update_network(
    conn: AsyncConnection, network_id: str, values: dict, revision: int | None = None
):
    """Apply `values` and bump the revision; None if the revision did not match."""

    async def reread():
        return (await conn.execute(BY_ID_ANY, {"network_id": network_id})).mappings().first()

    return await update_revised(conn, t, COLUMNS, network_id, values, revision, reread)


SET_MTU = update(t).where(t.c.id == bindparam("row_id")).values(mtu=bindparam("v_mtu"))
DELETE = delete(t).where(t.c.id == bindparam("row_id"))


async def set_mtu(conn: AsyncConnection, network_id: str, mtu: int) -> None:
    """Correct the MTU chosen while creating the network (not a new revision)."""
    await conn.execute(SET_MTU, {"row_id": network_id, "v_mtu": mtu})
