"""Subnet rows, read through statements scoped to what the caller may see."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.context import RequestContext
from segmentd.db.listing import Attribute, fetch_page, scoped
from segmentd.db.models import networks as n
from segmentd.db.models import subnets as t
from segmentd.db.standard_attrs import update_revised
from segmentd.query import ListQuery, Rows

# A subnet is shared when its network is (Neutron: filterable, never shown).
SHARED = select(n.c.shared).where(n.c.id == t.c.network_id).scalar_subquery()

ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(t.c.id),
    "name": Attribute(t.c.name),
    "description": Attribute(t.c.description, sort=False),
    "project_id": Attribute(t.c.project_id),
    "tenant_id": Attribute(t.c.project_id),
    "network_id": Attribute(t.c.network_id),
    "segment_id": Attribute(t.c.segment_id, nullable=True),
    "cidr": Attribute(t.c.cidr),
    "ip_version": Attribute(t.c.ip_version),
    "gateway_ip": Attribute(t.c.gateway_ip, nullable=True),
    "enable_dhcp": Attribute(t.c.enable_dhcp),
    "ipv6_ra_mode": Attribute(t.c.ipv6_ra_mode, nullable=True),
    "ipv6_address_mode": Attribute(t.c.ipv6_address_mode, nullable=True),
    "revision_number": Attribute(t.c.revision_number, sort=False),
    "shared": Attribute(SHARED, sort=False),
}

COLUMNS = tuple(t.c)


def visible_to(ctx: RequestContext, grants: frozenset[str] | None = None):
    """Admin and service see every subnet; others their project's and those of shared networks.

    `grants` narrows that to the kinds of rows the policy lets a list read (None: all).
    """
    shared = exists().where(n.c.id == t.c.network_id, n.c.shared.is_(True))
    return scoped(ctx, grants, {Rows.OWN: t.c.project_id == ctx.project_id, Rows.SHARED: shared})


WITH_SHARED = select(*COLUMNS, SHARED.label("network_shared"))
BY_ID = WITH_SHARED.where(t.c.id == bindparam("subnet_id"))
# Rules read a network's subnets under its row lock. These are locking reads so that they
# see what committed while the lock was awaited: MariaDB's REPEATABLE READ would otherwise
# answer from the snapshot of the transaction's first read, taken before the wait.
OF_NETWORK = (
    select(*COLUMNS).where(t.c.network_id == bindparam("network_id"))
    .order_by(t.c.created_at, t.c.id).with_for_update(read=True)
)
# For port writes, which hold the network's shared lock: no subnet of it changes meanwhile.
OF_NETWORK_UNLOCKED = (
    select(*COLUMNS).where(t.c.network_id == bindparam("network_id"))
    .order_by(t.c.created_at, t.c.id)
)
IDS_OF_SEGMENT = (
    select(t.c.id).where(t.c.segment_id == bindparam("segment_id"))
    .order_by(t.c.id).with_for_update(read=True)
)
IDS_OF_NETWORKS = (
    select(t.c.network_id, t.c.id, t.c.segment_id)
    .where(t.c.network_id.in_(bindparam("network_ids", expanding=True)))
    .order_by(t.c.network_id, t.c.created_at, t.c.id)
)
INSERT = insert(t)
DELETE_BY_ID = delete(t).where(t.c.id == bindparam("subnet_id"))
DELETE_OF_NETWORK = delete(t).where(t.c.network_id == bindparam("network_id"))


async def insert_subnet(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(INSERT, row)


async def get_visible_subnet(conn: AsyncConnection, ctx: RequestContext, subnet_id: str):
    """The subnet (with its network's `network_shared`) if the caller may see it."""
    stmt = BY_ID.where(visible_to(ctx))
    return (await conn.execute(stmt, {"subnet_id": subnet_id})).mappings().first()


async def subnets_of_network(conn: AsyncConnection, network_id: str):
    """Every subnet of a network, oldest first (rules look at all of them)."""
    return (await conn.execute(OF_NETWORK, {"network_id": network_id})).mappings().all()


async def subnets_of_locked_network(conn: AsyncConnection, network_id: str):
    """Every subnet of a network whose row lock the caller holds (shared is enough)."""
    return (await conn.execute(OF_NETWORK_UNLOCKED, {"network_id": network_id})).mappings().all()


async def subnet_ids_of_segment(conn: AsyncConnection, segment_id: str) -> list[str]:
    return list((await conn.execute(IDS_OF_SEGMENT, {"segment_id": segment_id})).scalars())


async def subnets_by_network(conn: AsyncConnection, network_ids: list[str]):
    """{network_id: [(subnet id, segment id), ...]} for the networks of a page."""
    found: dict[str, list[tuple[str, str | None]]] = {}
    if not network_ids:
        return found
    result = await conn.execute(IDS_OF_NETWORKS, {"network_ids": network_ids})
    for network_id, subnet_id, segment_id in result:
        found.setdefault(network_id, []).append((subnet_id, segment_id))
    return found


def network_has_version(ip_version: int):
    """Networks (in a statement on the networks table) with a subnet of `ip_version`."""
    return exists().where(t.c.network_id == n.c.id, t.c.ip_version == ip_version)


async def list_subnets(conn: AsyncConnection, ctx: RequestContext, q: ListQuery, grants=None,
                       keep=None):
    """A page of the subnets `grants` admits (see visible_to), `keep` deciding row by row."""
    stmt = WITH_SHARED.where(visible_to(ctx, grants))
    return await fetch_page(conn, stmt, ATTRIBUTES, t.c.id, q, keep=keep)


async def update_subnet(
    conn: AsyncConnection, subnet_id: str, values: dict, revision: int | None = None
):
    """Apply `values` and bump the revision; None if the revision did not match."""

    async def reread():
        return (await conn.execute(BY_ID, {"subnet_id": subnet_id})).mappings().first()

    return await update_revised(conn, t, COLUMNS, subnet_id, values, revision, reread)


async def delete_subnet(conn: AsyncConnection, subnet_id: str) -> bool:
    return (await conn.execute(DELETE_BY_ID, {"subnet_id": subnet_id})).rowcount == 1


async def delete_network_subnets(conn: AsyncConnection, network_id: str):
    """Delete every subnet of a network; returns the deleted rows for their events."""
    rows = await subnets_of_network(conn, network_id)
    if rows:
        await conn.execute(DELETE_OF_NETWORK, {"network_id": network_id})
    return rows


OF_NETWORKS = (
    select(*COLUMNS).where(t.c.network_id.in_(bindparam("network_ids", expanding=True)))
    .order_by(t.c.network_id, t.c.created_at, t.c.id)
)


async def subnet_rows_of_networks(conn: AsyncConnection, network_ids: list[str]):
    """{network_id: [subnet row, ...]} oldest first, for reports over a page of networks."""
    out: dict[str, list] = {nid: [] for nid in network_ids}
    if network_ids:
        for row in (await conn.execute(OF_NETWORKS, {"network_ids": network_ids})).mappings():
            out[row["network_id"]].append(row)
    return out
