"""Subnets: address rules, the routed-network rules of segments, and their events."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import check, enforce
from segmentd.context import RequestContext
from segmentd.db import networks as network_rows
from segmentd.db import ports as port_rows
from segmentd.db import segments as segment_rows
from segmentd.db import subnets as rows
from segmentd.errors import (
    GatewayConflictWithAllocationPools,
    InvalidInput,
    NetworkIdsDontMatch,
    NetworkMTUSubnetConflict,
    NetworkNotFound,
    NoUpdateSubnetWhenMultipleSegmentsOnNetwork,
    RevisionNumberConstraintFailed,
    SegmentNotFound,
    SubnetInUse,
    SubnetNotFound,
    SubnetSegmentAssociationChangeNotAllowed,
    SubnetsNotAllAssociatedWithSegments,
)
from segmentd.query import ListQuery, Page, Rows
from segmentd.services import allocators
from segmentd.services import subnet_addressing as a
from segmentd.services.checks import check_revision
from segmentd.services.clock import utcnow
from segmentd.services.scoping import ELSEWHERE, MINE, list_scope
from segmentd.services.shapes import network_view, port_view, subnet_view
from segmentd.services.uow import UnitOfWork

UNSET = object()
# A subnet standing for each kind of row a list can be scoped to (services/scoping.py).
SAMPLES = {
    Rows.EVERY: {"project_id": ELSEWHERE, "network_id": ELSEWHERE, "shared": False},
    Rows.OWN: {"project_id": MINE, "network_id": ELSEWHERE, "shared": False},
    Rows.SHARED: {"project_id": ELSEWHERE, "network_id": ELSEWHERE, "shared": True},
}


def _target(row) -> dict[str, Any]:
    """What policy rules see of a subnet: its project, and whether its network is shared."""
    return {"project_id": row["project_id"], "network_id": row["network_id"],
            "shared": bool(row.get("network_shared"))}


async def _network_for_write(ctx: RequestContext, uow: UnitOfWork, network_id: str, action: str):
    """The subnet's network, locked: concurrent subnet writes on one network serialise, so
    the overlap and all-or-none rules see every committed sibling."""
    net = await network_rows.get_network_for_update(uow.conn, ctx, network_id)
    if net is None or not check(ctx, "get_network", net):
        raise NetworkNotFound(net_id=network_id)
    enforce(ctx, action, {"project_id": net["project_id"], "network_id": net["id"],
                          "shared": net["shared"]})
    return net


def check_mtu_carries_subnets(network_id: str, mtu: int, ip_versions) -> None:
    """Neutron's minimums: any subnet needs an MTU of 68, an IPv6 one 1280 (409 otherwise)."""
    versions = set(ip_versions)
    if not versions or mtu >= c.MTU_MIN_IPV6:
        return
    if mtu < c.MTU_MIN_IPV4:
        raise NetworkMTUSubnetConflict(net_id=network_id, mtu=c.MTU_MIN_IPV4)
    if 6 in versions:
        raise NetworkMTUSubnetConflict(net_id=network_id, mtu=c.MTU_MIN_IPV6)


async def _segment_of_network(conn: AsyncConnection, segment_id: str, network_id: str):
    segment = await segment_rows.get_segment(conn, segment_id)
    if segment is None:
        raise SegmentNotFound(segment_id=segment_id)
    if segment["network_id"] != network_id:
        raise NetworkIdsDontMatch(subnet_network=network_id, segment_id=segment_id)
    return segment


async def create_subnet(ctx: RequestContext, uow: UnitOfWork, data: dict[str, Any]) -> dict:
    net = await _network_for_write(ctx, uow, data["network_id"], "create_subnet")
    target = {"project_id": net["project_id"], "network_id": net["id"]}
    for key in ("project_id", "tenant_id"):
        if data.get(key) is not None and data[key] != net["project_id"]:
            raise InvalidInput(error_message=f"A subnet belongs to the project of its network, "
                               f"not to {data[key]}")
    cidr = a.parse_cidr(data["cidr"], data["ip_version"])
    if net["mtu"]:  # 0: nothing bounds the network's MTU
        check_mtu_carries_subnets(net["id"], net["mtu"], [cidr.version])
    gateway = (a.default_gateway(cidr) if data.get("gateway_ip", UNSET) is UNSET
               else a.check_gateway(cidr, data["gateway_ip"]))
    pools = (a.check_pools(cidr, gateway, data["allocation_pools"])
             if data.get("allocation_pools") is not None else a.default_pools(cidr, gateway))
    a.check_ipv6_modes(cidr, data.get("ipv6_ra_mode"), data.get("ipv6_address_mode"))
    dns = a.check_dns(cidr.version, data.get("dns_nameservers") or [])
    routes = a.check_routes(cidr.version, data.get("host_routes") or [])

    segment_id = data.get("segment_id")
    if segment_id is not None:
        enforce(ctx, "create_subnet:segment_id", target)
        await _segment_of_network(uow.conn, segment_id, net["id"])
    siblings = await rows.subnets_of_network(uow.conn, net["id"])
    if any((s["segment_id"] is None) != (segment_id is None) for s in siblings):
        raise SubnetsNotAllAssociatedWithSegments(network_id=net["id"])
    clash = a.overlapping(cidr, siblings)
    if clash is not None:
        raise InvalidInput(
            error_message=f"Requested subnet with cidr: {cidr} for network: {net['id']} "
            f"overlaps with another subnet"
        )
    now = utcnow()
    row = {
        "id": str(uuid.uuid4()), "project_id": net["project_id"], "network_id": net["id"],
        "segment_id": segment_id, "name": data.get("name") or "",
        "description": data.get("description") or "", "cidr": str(cidr),
        "ip_version": cidr.version, "gateway_ip": str(gateway) if gateway else None,
        "enable_dhcp": data.get("enable_dhcp", True),
        "allocation_pools": [p.view() for p in pools], "dns_nameservers": dns,
        "host_routes": routes, "ipv6_ra_mode": data.get("ipv6_ra_mode"),
        "ipv6_address_mode": data.get("ipv6_address_mode"),
        "created_at": now, "updated_at": now, "revision_number": 0,
    }
    row["peer_routes"] = a.peer_routes(row, siblings)
    await rows.insert_subnet(uow.conn, row)
    await _refresh_peer_routes(ctx, uow, [*siblings, row], row["id"])
    view = subnet_view(row)
    uow.record(ctx, c.EVENT_SUBNET_CREATED, view, net["project_id"])
    await _revise_network(ctx, uow, net["id"])
    return view


async def _readable_subnet(ctx: RequestContext, conn: AsyncConnection, subnet_id: str):
    row = await rows.get_visible_subnet(conn, ctx, subnet_id)
    if row is None or not check(ctx, "get_subnet", _target(row)):
        raise SubnetNotFound(subnet_id=subnet_id)
    return row


async def get_subnet(ctx: RequestContext, conn: AsyncConnection, subnet_id: str) -> dict:
    return subnet_view(await _readable_subnet(ctx, conn, subnet_id))


async def list_subnets(ctx: RequestContext, conn: AsyncConnection, q: ListQuery) -> Page:
    scope = list_scope(ctx, "get_subnet", SAMPLES, _target)
    if scope.empty:
        return Page([])
    found = await rows.list_subnets(conn, ctx, q, scope.grants, scope.keep)
    return Page([subnet_view(r) for r in found])


async def update_subnet(
    ctx: RequestContext, uow: UnitOfWork, subnet_id: str, data: dict[str, Any],
    if_revision: int | None = None,
) -> dict:
    current = await _readable_subnet(ctx, uow.conn, subnet_id)
    await _network_for_write(ctx, uow, current["network_id"], "update_subnet")
    current = await _readable_subnet(ctx, uow.conn, subnet_id)  # as of the lock
    check_revision(current, if_revision)
    cidr = a.parse_cidr(current["cidr"], current["ip_version"])
    values: dict[str, Any] = {}
    for key in ("name", "description"):
        if key in data:
            values[key] = data[key] or ""
    if "enable_dhcp" in data:
        values["enable_dhcp"] = data["enable_dhcp"]
    gateway = (a.check_gateway(cidr, data["gateway_ip"]) if "gateway_ip" in data
               else (a.parse_address(current["gateway_ip"], cidr.version, "gateway_ip")
                     if current["gateway_ip"] else None))
    if "gateway_ip" in data:
        values["gateway_ip"] = str(gateway) if gateway else None
    if data.get("allocation_pools") is not None:
        pools = a.check_pools(cidr, gateway, data["allocation_pools"])
        values["allocation_pools"] = [p.view() for p in pools]
    elif gateway is not None and "gateway_ip" in data:
        for pool in a.pools_of(current["allocation_pools"]):
            if gateway in pool:
                raise GatewayConflictWithAllocationPools(
                    ip_address=str(gateway), pool=f"{pool.first}-{pool.last}"
                )
    if "dns_nameservers" in data:
        values["dns_nameservers"] = a.check_dns(cidr.version, data["dns_nameservers"] or [])
    if "host_routes" in data:
        # Clients send back the routes they read: the peer routes among them are ours.
        peers = list(current.get("peer_routes") or ())
        given = [r for r in data["host_routes"] or [] if r not in peers]
        values["host_routes"] = a.check_routes(cidr.version, given)
    if "segment_id" in data and data["segment_id"] != current["segment_id"]:
        enforce(ctx, "update_subnet:segment_id", _target(current))
        await _move_to_segment(uow.conn, current, data["segment_id"])
        values["segment_id"] = data["segment_id"]
    siblings = [s for s in await rows.subnets_of_network(uow.conn, current["network_id"])
                if s["id"] != subnet_id]
    future = {**current, **values}
    values["peer_routes"] = a.peer_routes(future, siblings)
    values["updated_at"] = utcnow()
    row = await rows.update_subnet(uow.conn, subnet_id, values, if_revision)
    if row is None:
        raise RevisionNumberConstraintFailed(
            constraint=if_revision, current=current["revision_number"]
        )
    view = subnet_view(row)
    uow.record(ctx, c.EVENT_SUBNET_UPDATED, view, current["project_id"])
    await _refresh_peer_routes(ctx, uow, [*siblings, row], subnet_id)
    await _revise_network(ctx, uow, current["network_id"])
    return view


async def _refresh_peer_routes(ctx: RequestContext, uow: UnitOfWork, subnets, skip: str | None):
    """Recompute the peer routes of a network's subnets after one of them changed (`skip`
    has its own already); each subnet whose routes change gets its subnet.updated event."""
    for sibling in subnets:
        if sibling["id"] == skip:
            continue
        routes = a.peer_routes(sibling, subnets)
        if routes == list(sibling.get("peer_routes") or ()):
            continue
        row = await rows.update_subnet(uow.conn, sibling["id"],
                                       {"peer_routes": routes, "updated_at": utcnow()})
        uow.record(ctx, c.EVENT_SUBNET_UPDATED, subnet_view(row), row["project_id"])


async def _move_to_segment(conn: AsyncConnection, subnet, segment_id: str | None) -> None:
    """Only a network that is not routed yet may be migrated: one segment, one subnet."""
    network_id = subnet["network_id"]
    if segment_id is not None:
        await _segment_of_network(conn, segment_id, network_id)
    if subnet["segment_id"] is not None or segment_id is None:
        raise SubnetSegmentAssociationChangeNotAllowed()
    if len(await rows.subnets_of_network(conn, network_id)) > 1:
        raise SubnetsNotAllAssociatedWithSegments(network_id=network_id)
    segments = (await segment_rows.segments_of_networks(conn, [network_id]))[network_id]
    if len(segments) > 1:
        raise NoUpdateSubnetWhenMultipleSegmentsOnNetwork(network_id=network_id)


async def delete_subnet(
    ctx: RequestContext, uow: UnitOfWork, subnet_id: str, if_revision: int | None = None
) -> None:
    row = await _readable_subnet(ctx, uow.conn, subnet_id)
    enforce(ctx, "delete_subnet", _target(row))
    # The network's lock holds off port writes, which take it shared: no address is being
    # given from this subnet while it is checked and deleted.
    await network_rows.get_network_for_update(uow.conn, ctx, row["network_id"])
    row = await _readable_subnet(ctx, uow.conn, subnet_id)  # as of the lock
    check_revision(row, if_revision)
    holders = await port_rows.ports_of_subnet(uow.conn, subnet_id, 5)
    if holders and not allocators.is_auto_address(row["ip_version"], row["ipv6_address_mode"]):
        raise SubnetInUse(subnet_id=subnet_id, reason="One or more ports have an IP allocation "
                          f"from this subnet: {', '.join(holders)}")
    if holders:
        await _release_auto_addresses(ctx, uow, subnet_id)
    if not await rows.delete_subnet(uow.conn, subnet_id):
        raise SubnetNotFound(subnet_id=subnet_id)
    uow.record(ctx, c.EVENT_SUBNET_DELETED, subnet_view(row), row["project_id"])
    remaining = await rows.subnets_of_network(uow.conn, row["network_id"])
    await _refresh_peer_routes(ctx, uow, remaining, None)
    await _revise_network(ctx, uow, row["network_id"])


async def _release_auto_addresses(ctx: RequestContext, uow: UnitOfWork, subnet_id: str) -> None:
    """A SLAAC or DHCPv6-stateless subnet's addresses are derived, not chosen: as Neutron,
    they leave their ports with the subnet (a new revision and port.updated for each port),
    unless a router interface holds one. Bindings stay as they are."""
    ports = await port_rows.release_subnet_addresses(uow.conn, subnet_id)
    routers = [p["id"] for p in ports if p["device_owner"] in c.ROUTER_INTERFACE_OWNERS]
    if routers:
        raise SubnetInUse(subnet_id=subnet_id, reason="One or more router interfaces have an "
                          f"IP allocation from this subnet: {', '.join(routers[:5])}")
    ids = [p["id"] for p in ports]
    left = await port_rows.addresses_of_ports(uow.conn, ids, lock=True)
    for port in ports:
        updated = await port_rows.update_port(uow.conn, port["id"], {"updated_at": utcnow()})
        uow.record(ctx, c.EVENT_PORT_UPDATED, port_view(updated, left[port["id"]]),
                   port["project_id"])


async def _revise_network(ctx: RequestContext, uow: UnitOfWork, network_id: str) -> None:
    """A subnet created, changed or deleted is a new revision of its network, as in Neutron
    (its `subnets` change too): network.updated follows, so OVN's switch carries it."""
    net = await network_rows.update_network(uow.conn, network_id, {"updated_at": utcnow()})
    segments = (await segment_rows.segments_of_networks(uow.conn, [network_id]))[network_id]
    subnets = (await rows.subnets_by_network(uow.conn, [network_id])).get(network_id, ())
    uow.record(ctx, c.EVENT_NETWORK_UPDATED, network_view(net, segments, True, subnets),
               net["project_id"])


async def delete_network_subnets(ctx: RequestContext, uow: UnitOfWork, network_id: str,
                                 project_id: str) -> None:
    """The subnets go with their network (its ports are gone already), each with its event."""
    for row in await rows.delete_network_subnets(uow.conn, network_id):
        uow.record(ctx, c.EVENT_SUBNET_DELETED, subnet_view(row), project_id)
