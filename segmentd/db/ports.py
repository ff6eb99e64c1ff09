"""Port rows and the addresses given to them, read through caller-scoped statements."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.context import RequestContext
from segmentd.db.hosts import reached_by
from segmentd.db.listing import Attribute, fetch_page, scoped
from segmentd.db.models import ip_allocations as a
from segmentd.db.models import networks as n
from segmentd.db.models import ports as t
from segmentd.db.models import segments as s
from segmentd.db.models import subnets as sub
from segmentd.db.standard_attrs import update_revised
from segmentd.query import ListQuery, Rows

ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(t.c.id),
    "name": Attribute(t.c.name),
    "description": Attribute(t.c.description, sort=False),
    "project_id": Attribute(t.c.project_id),
    "tenant_id": Attribute(t.c.project_id),
    "network_id": Attribute(t.c.network_id),
    "mac_address": Attribute(t.c.mac_address),
    "admin_state_up": Attribute(t.c.admin_state_up),
    "status": Attribute(t.c.status),
    "device_id": Attribute(t.c.device_id),
    "device_owner": Attribute(t.c.device_owner),
    "binding:host_id": Attribute(t.c.host),
    "binding:vnic_type": Attribute(t.c.vnic_type),
    "binding:vif_type": Attribute(t.c.vif_type),
    "ip_allocation": Attribute(t.c.ip_allocation),
    "revision_number": Attribute(t.c.revision_number, sort=False),
}

COLUMNS = tuple(t.c)
NETWORK_PROJECT = select(n.c.project_id).where(n.c.id == t.c.network_id).scalar_subquery()
WITH_NETWORK = select(*COLUMNS, NETWORK_PROJECT.label("network_project_id"))
BY_ID = WITH_NETWORK.where(t.c.id == bindparam("port_id"))


def visible_to(ctx: RequestContext, grants: frozenset[str] | None = None):
    """Admin and service see every port; others their project's and those on their networks.

    `grants` narrows that to the kinds of rows the policy lets a list read (None: all).
    """
    own_network = exists().where(n.c.id == t.c.network_id, n.c.project_id == ctx.project_id)
    return scoped(ctx, grants, {Rows.OWN: t.c.project_id == ctx.project_id,
                                Rows.ON_OWN_NETWORK: own_network})


@cache
def _insert_ignoring(table: Table, dialect: str):
    """INSERT that inserts nothing on a unique conflict, so the caller can retry in the same
    transaction (PostgreSQL first waits for a conflicting in-flight insert to settle)."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table).prefix_with("IGNORE")


async def insert_port(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Insert the port; False if its MAC is taken on the network."""
    result = await conn.execute(_insert_ignoring(t, conn.dialect.name), row)
    return result.rowcount == 1


async def insert_allocation(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Give an address to a port; False if the address is taken in its subnet."""
    result = await conn.execute(_insert_ignoring(a, conn.dialect.name), row)
    return result.rowcount == 1


TAKEN_OF_SUBNET = select(a.c.ip_address).where(a.c.subnet_id == bindparam("subnet_id"))
# MariaDB answers a plain read from the transaction's first snapshot; a locking read sees
# what committed since, which a retry after a lost race needs.
TAKEN_OF_SUBNET_LOCKING = TAKEN_OF_SUBNET.with_for_update(read=True)


async def taken_addresses(conn: AsyncConnection, subnet_id: str) -> list[str]:
    stmt = TAKEN_OF_SUBNET_LOCKING if conn.dialect.name == "mysql" else TAKEN_OF_SUBNET
    return list((await conn.execute(stmt, {"subnet_id": subnet_id})).scalars())


ADDRESSES_OF_PORTS = (
    select(a.c.port_id, a.c.subnet_id, a.c.ip_address)
    .where(a.c.port_id.in_(bindparam("port_ids", expanding=True)))
)


ADDRESSES_OF_PORTS_LOCKING = ADDRESSES_OF_PORTS.with_for_update()


async def addresses_of_ports(conn: AsyncConnection, port_ids: list[str], lock: bool = False):
    """{port_id: [(subnet_id, ip_address), ...]}; `lock`: locking read (writers of the
    ports' addresses, which on MariaDB must see past the transaction's snapshot)."""
    out: dict[str, list[tuple[str, str]]] = {pid: [] for pid in port_ids}
    stmt = ADDRESSES_OF_PORTS_LOCKING if lock and conn.dialect.name != "sqlite" else ADDRESSES_OF_PORTS
    if port_ids:
        for port_id, subnet_id, ip in await conn.execute(stmt, {"port_ids": port_ids}):
            out[port_id].append((subnet_id, ip))
    return out


DELETE_ADDRESS = delete(a).where(
    a.c.port_id == bindparam("port_id"), a.c.subnet_id == bindparam("subnet_id"),
    a.c.ip_address == bindparam("ip_address"),
)


async def release_addresses(conn: AsyncConnection, port_id: str, pairs) -> None:
    for subnet_id, ip in pairs:
        await conn.execute(DELETE_ADDRESS, {"port_id": port_id, "subnet_id": subnet_id,
                                            "ip_address": ip})


async def get_port(conn: AsyncConnection, port_id: str):
    """The row (with its network's project) by id, unscoped: for checks after a scoped read."""
    return (await conn.execute(BY_ID, {"port_id": port_id})).mappings().first()


async def get_visible_port(conn: AsyncConnection, ctx: RequestContext, port_id: str):
    stmt = BY_ID.where(visible_to(ctx))
    return (await conn.execute(stmt, {"port_id": port_id})).mappings().first()


async def get_port_for_update(conn: AsyncConnection, ctx: RequestContext, port_id: str):
    stmt = BY_ID.where(visible_to(ctx))
    if conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update(of=t)
    return (await conn.execute(stmt, {"port_id": port_id})).mappings().first()


def fixed_ips_clause(subnet_ids: list[str], ip_addresses: list[str]):
    """Ports holding an address from one of the subnets and/or one of the addresses."""
    conditions = [a.c.port_id == t.c.id]
    if subnet_ids:
        conditions.append(a.c.subnet_id.in_(subnet_ids))
    if ip_addresses:
        conditions.append(a.c.ip_address.in_(ip_addresses))
    return exists().where(*conditions)


async def list_ports(conn: AsyncConnection, ctx: RequestContext, q: ListQuery, where=None,
                     grants=None, keep=None):
    """A page of the ports `grants` admits (see visible_to), `keep` deciding row by row;
    `where` narrows it further."""
    stmt = WITH_NETWORK.where(visible_to(ctx, grants))
    if where is not None:
        stmt = stmt.where(where)
    return await fetch_page(conn, stmt, ATTRIBUTES, t.c.id, q, keep=keep)


async def update_port(conn: AsyncConnection, port_id: str, values: dict, revision: int | None = None):
    """Apply `values` and bump the revision; None if the revision did not match."""

    async def reread():
        return await get_port(conn, port_id)

    return await update_revised(conn, t, COLUMNS, port_id, values, revision, reread)


async def set_binding(conn: AsyncConnection, port_id: str, values: dict[str, Any]) -> None:
    """Correct the binding columns of a port inserted in this transaction (no new revision)."""
    await conn.execute(update(t).where(t.c.id == port_id).values(values))


SET_MAC = update(t).where(t.c.id == bindparam("port_id")).values(mac_address=bindparam("mac"))


async def set_mac(conn: AsyncConnection, port_id: str, mac: str) -> bool:
    """Give the port another MAC (no new revision: the caller's update makes it); False if
    the network has that MAC already (in a savepoint: the caller's transaction goes on)."""
    try:
        async with conn.begin_nested():
            await conn.execute(SET_MAC, {"port_id": port_id, "mac": mac})
    except IntegrityError:
        return False
    return True


DELETE_BY_ID = delete(t).where(t.c.id == bindparam("port_id"))
DELETE_ADDRESSES_OF_PORT = delete(a).where(a.c.port_id == bindparam("port_id"))


async def delete_port(conn: AsyncConnection, port_id: str) -> bool:
    # Addresses first: MariaDB and SQLite without foreign keys would not cascade.
    await conn.execute(DELETE_ADDRESSES_OF_PORT, {"port_id": port_id})
    return (await conn.execute(DELETE_BY_ID, {"port_id": port_id})).rowcount == 1


PORTS_OF_NETWORK = (
    select(*COLUMNS).where(t.c.network_id == bindparam("network_id")).order_by(t.c.id)
)


async def ports_of_network(conn: AsyncConnection, network_id: str):
    return (await conn.execute(PORTS_OF_NETWORK, {"network_id": network_id})).mappings().all()


PORT_IDS_OF_SEGMENT = (
    select(t.c.id).where(t.c.bound_segment_id == bindparam("segment_id")).order_by(t.c.id)
    .limit(bindparam("limit"))
)


async def ports_bound_to_segment(conn: AsyncConnection, segment_id: str, limit: int) -> list[str]:
    params = {"segment_id": segment_id, "limit": limit}
    return list((await conn.execute(PORT_IDS_OF_SEGMENT, params)).scalars())


PORT_IDS_OF_SUBNET = (
    select(a.c.port_id).where(a.c.subnet_id == bindparam("subnet_id")).order_by(a.c.port_id)
    .limit(bindparam("limit"))
)
# MariaDB reads past the transaction's snapshot only with a locking read.
PORT_IDS_OF_SUBNET_LOCKING = PORT_IDS_OF_SUBNET.with_for_update(read=True)


async def ports_of_subnet(conn: AsyncConnection, subnet_id: str, limit: int) -> list[str]:
    """Ports holding the subnet's addresses (at most `limit` of their addresses looked at)."""
    stmt = PORT_IDS_OF_SUBNET_LOCKING if conn.dialect.name == "mysql" else PORT_IDS_OF_SUBNET
    params = {"subnet_id": subnet_id, "limit": limit}
    return list(dict.fromkeys((await conn.execute(stmt, params)).scalars()))


PORTS_HOLDING_SUBNET = (
    select(*COLUMNS)
    .where(exists().where(a.c.port_id == t.c.id, a.c.subnet_id == bindparam("subnet_id")))
    .order_by(t.c.id)
)
PORTS_HOLDING_SUBNET_LOCKING = PORTS_HOLDING_SUBNET.with_for_update(of=t)
DELETE_ADDRESSES_OF_SUBNET = delete(a).where(a.c.subnet_id == bindparam("subnet_id"))


async def release_subnet_addresses(conn: AsyncConnection, subnet_id: str):
    """Take every address of a subnet from the ports holding one; returns those ports,
    locked, in id order (the caller holds the network's lock, so none is being written)."""
    stmt = PORTS_HOLDING_SUBNET if conn.dialect.name == "sqlite" else PORTS_HOLDING_SUBNET_LOCKING
    ports = (await conn.execute(stmt, {"subnet_id": subnet_id})).mappings().all()
    if ports:
        await conn.execute(DELETE_ADDRESSES_OF_SUBNET, {"subnet_id": subnet_id})
    return ports


# Ports whose binding a change of the host's reach may change: bound to a segment it may
# have lost, or failed and perhaps bindable now.
PORTS_OF_HOST = select(*COLUMNS).where(t.c.host == bindparam("host")).order_by(t.c.id)
PORTS_OF_HOST_LOCKING = PORTS_OF_HOST.with_for_update()


async def ports_of_host(conn: AsyncConnection, host: str, lock: bool = False):
    """The host's ports in id order; `lock`: locked, as they stand once other writers are done."""
    stmt = PORTS_OF_HOST_LOCKING if lock and conn.dialect.name != "sqlite" else PORTS_OF_HOST
    return (await conn.execute(stmt, {"host": host})).mappings().all()


HOSTS_WITH_PORTS = (
    select(t.c.host).where(t.c.host.in_(bindparam("hosts", expanding=True))).distinct()
)


async def hosts_with_ports(conn: AsyncConnection, hosts: list[str]) -> list[str]:
    if not hosts:
        return []
    return sorted((await conn.execute(HOSTS_WITH_PORTS, {"hosts": hosts})).scalars())


def _reached_segments(host: str, cutoff: datetime | None):
    stmt = select(s.c.id).where(s.c.network_id == bindparam("network_id"))
    if host:
        stmt = stmt.where(reached_by(host, cutoff))
    return stmt.order_by(s.c.segment_index)


async def reached_segments(
    conn: AsyncConnection, network_id: str, host: str, cutoff: datetime | None
) -> list[str]:
    """The network's segments `host` reaches, in segment_index order (`cutoff`: the oldest
    heartbeat that still counts; None trusts the stored reach as it stands)."""
    stmt = _reached_segments(host, cutoff)
    return list((await conn.execute(stmt, {"network_id": network_id})).scalars())


USED_BY_SUBNET = (
    select(a.c.subnet_id, func.count()).where(a.c.network_id.in_(bindparam("network_ids", expanding=True)))
    .group_by(a.c.subnet_id)
)


async def used_by_subnet(conn: AsyncConnection, network_ids: list[str]) -> dict[str, int]:
    if not network_ids:
        return {}
    return dict((await conn.execute(USED_BY_SUBNET, {"network_ids": network_ids})).all())



SEGMENTS_OF_ADDRESSES = (
    select(a.c.port_id, sub.c.segment_id).join(sub, sub.c.id == a.c.subnet_id)
    .where(a.c.port_id.in_(bindparam("port_ids", expanding=True)))
)


async def segments_of_addresses(conn: AsyncConnection, port_ids: list[str]):
    """{port_id: {segment_id or None, ...}}: the segments the ports' addresses sit on."""
    out: dict[str, set[str | None]] = {}
    if port_ids:
        for port_id, segment_id in await conn.execute(SEGMENTS_OF_ADDRESSES,
                                                      {"port_ids": port_ids}):
            out.setdefault(port_id, set()).add(segment_id)
    return out


OTHER_PROJECTS_PORT = (
    select(t.c.id).where(t.c.network_id == bindparam("network_id"),
                         t.c.project_id != bindparam("project_id")).limit(1)
)


async def has_other_projects_ports(conn: AsyncConnection, network_id: str, project_id: str) -> bool:
    params = {"network_id": network_id, "project_id": project_id}
    return (await conn.execute(OTHER_PROJECTS_PORT, params)).first() is not None
