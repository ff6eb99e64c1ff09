"""Ports: a MAC, addresses chosen by where the port's host is, and the port's binding."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import check, enforce
from segmentd.context import RequestContext
from segmentd.db import hosts as host_rows
from segmentd.db import networks as network_rows
from segmentd.db import ports as rows
from segmentd.db import subnets as subnet_rows
from segmentd.errors import (
    FixedIpsSubnetsNotOnSameSegment,
    HTTPBadRequest,
    InvalidInput,
    MacAddressGenerationFailure,
    MacAddressInUse,
    NetworkInUse,
    NetworkNotFound,
    PortNotFound,
    RevisionNumberConstraintFailed,
)
from segmentd.query import ListQuery, Page, Rows
from segmentd.services import allocators, port_addresses, port_macs
from segmentd.services.binding import bind, status_of
from segmentd.services.checks import check_owner, check_revision
from segmentd.services.clock import HostClock, utcnow
from segmentd.services.scoping import ELSEWHERE, MINE, list_scope
from segmentd.services.shapes import for_caller, hidden_keys, port_view
from segmentd.services.uow import UnitOfWork

_rng = random.SystemRandom()
UNSET = object()
NETWORK_OWNED_PREFIX = "network:"  # device owners of the network's own services
# Attributes whose own rule is checked when a request sets them (Neutron's names).
GUARDED_ON_CREATE = ("binding:host_id", "binding:profile", "mac_address")
GUARDED_ON_UPDATE = ("binding:host_id", "binding:profile", "fixed_ips", "mac_address")


def _target(row, network) -> dict[str, Any]:
    """What policy rules see: the port's project, its network's project, whether shared."""
    return {"project_id": row["project_id"], "network_project_id": network["project_id"],
            "shared": bool(network.get("shared"))}


def _read_target(row) -> dict[str, Any]:
    """What the read rule sees of a port row read with its network's project."""
    return _target(row, {"project_id": row["network_project_id"]})


# A port standing for each kind of row a list can be scoped to (services/scoping.py).
SAMPLES = {
    Rows.EVERY: {"project_id": ELSEWHERE, "network_project_id": ELSEWHERE, "shared": False},
    Rows.OWN: {"project_id": MINE, "network_project_id": ELSEWHERE, "shared": False},
    Rows.ON_OWN_NETWORK: {"project_id": ELSEWHERE, "network_project_id": MINE, "shared": False},
}


async def _network(ctx: RequestContext, conn: AsyncConnection, network_id: str):
    """The port's network under a shared lock, 404 unless the caller may see it."""
    net = await network_rows.get_network_for_share(conn, ctx, network_id)
    if net is None or not check(ctx, "get_network", net):
        raise NetworkNotFound(net_id=network_id)
    return net


async def _hold_hosts(uow: UnitOfWork, hosts: list[str]) -> None:
    """The hosts' shared locks, as every port write takes them; a host with no row yet
    holds a placeholder row until the commit, so its first report waits for the port."""
    placeholders = await host_rows.share_lock_hosts(uow.conn, hosts, utcnow())
    if placeholders:
        uow.before_commit.append(lambda: host_rows.drop_placeholders(uow.conn, placeholders))


async def _reached(conn, clock: HostClock, network_id: str, host: str) -> list[str]:
    if not host:
        return []
    return await rows.reached_segments(conn, network_id, host, clock.cutoff(utcnow()))


async def create_port(
    ctx: RequestContext, uow: UnitOfWork, clock: HostClock, data: dict[str, Any]
) -> dict:
    conn = uow.conn
    net = await _network(ctx, conn, data["network_id"])
    project_id = data.get("project_id") or data.get("tenant_id") or ctx.project_id or net["project_id"]
    target = {"project_id": project_id, "network_project_id": net["project_id"],
              "shared": net["shared"]}
    check_owner(ctx, "create_port", target)
    enforce(ctx, "create_port", target)
    for key in GUARDED_ON_CREATE:
        if data.get(key) is not None:
            enforce(ctx, f"create_port:{key}", target)
    if "fixed_ips" in data and data["fixed_ips"] is None:
        raise InvalidInput(error_message="fixed_ips cannot be null: omit it, or give []")
    if any(e.get("ip_address") is not None for e in data.get("fixed_ips") or ()):
        enforce(ctx, "create_port:fixed_ips:ip_address", target)
    if (data.get("device_owner") or "").startswith(NETWORK_OWNED_PREFIX):
        enforce(ctx, "create_port:device_owner", target)
    host = data.get("binding:host_id") or ""
    await _hold_hosts(uow, [host])
    # The network's lock is this transaction's first read, so a plain read sees every
    # committed subnet (even in MariaDB's REPEATABLE READ), and none changes meanwhile.
    subnets = await subnet_rows.subnets_of_locked_network(conn, net["id"])
    reached = await _reached(conn, clock, net["id"], host)
    now = utcnow()
    port = {
        "id": str(uuid.uuid4()), "project_id": project_id, "network_id": net["id"],
        "name": data.get("name") or "", "description": data.get("description") or "",
        "admin_state_up": data.get("admin_state_up", True),
        "device_id": data.get("device_id") or "", "device_owner": data.get("device_owner") or "",
        "host": host, "vnic_type": data.get("binding:vnic_type") or "normal",
        "profile": data.get("binding:profile") or {},
        "created_at": now, "updated_at": now, "revision_number": 0,
    }
    plan = _plan(net["id"], port["id"], subnets, host, reached, data.get("fixed_ips", UNSET))
    port["ip_allocation"] = plan.ip_allocation
    port.update(_binding(host, reached, plan.segments_expected(), port["admin_state_up"]))
    await _insert_with_mac(conn, port, data.get("mac_address"))
    addresses = await port_addresses.allocate(conn, port, plan)
    actual = _binding(host, reached, _segments_of(subnets, addresses), port["admin_state_up"])
    if any(port[k] != v for k, v in actual.items()):  # a later segment gave the addresses
        port.update(actual)
        await rows.set_binding(conn, port["id"], actual)
    view = port_view(port, addresses)
    uow.record(ctx, c.EVENT_PORT_CREATED, view, project_id)
    return for_caller(dict(view), hidden_keys(ctx))


def _binding(host: str, reached: list[str], segments, admin_state_up: bool) -> dict[str, Any]:
    values = bind(host, reached, segments)
    values["status"] = status_of(values["vif_type"], admin_state_up)
    return values


def _segments_of(subnets, addresses) -> set[str | None]:
    used = {sid for sid, _ in addresses}
    return {s["segment_id"] for s in subnets if s["id"] in used}


async def _insert_with_mac(conn: AsyncConnection, port: dict[str, Any], given: str | None) -> None:
    """Insert the port with the given MAC (409 if the network has it) or a generated one."""
    if given is not None:
        port["mac_address"] = allocators.parse_mac(given)
        if not await rows.insert_port(conn, port):
            raise MacAddressInUse(net_id=port["network_id"], mac=port["mac_address"])
        return
    for _ in range(c.MAC_ATTEMPTS):
        port["mac_address"] = allocators.random_mac(_rng)
        if await rows.insert_port(conn, port):
            return
    raise MacAddressGenerationFailure(net_id=port["network_id"])


def _plan(network_id, port_id, subnets, host, reached, fixed_ips) -> port_addresses.Plan:
    if fixed_ips is UNSET:
        return port_addresses.automatic_plan(network_id, subnets, host, reached)
    if not fixed_ips:
        return port_addresses.Plan(c.IP_ALLOCATION_NONE)
    requests = port_addresses.resolve_fixed_ips(network_id, subnets, fixed_ips)
    port_addresses.check_requested_fit(host, network_id, requests, reached)
    requests += port_addresses.same_segment_auto(subnets, requests)
    return port_addresses.Plan(c.IP_ALLOCATION_IMMEDIATE, requests=requests)
async def _readable_port(ctx: RequestContext, conn: AsyncConnection, port_id: str, lock=False):
    getter = rows.get_port_for_update if lock else rows.get_visible_port
    row = await getter(conn, ctx, port_id)
    if row is None or not check(ctx, "get_port", _read_target(row)):
        raise PortNotFound(port_id=port_id)
    return row


async def get_port(ctx: RequestContext, conn: AsyncConnection, port_id: str) -> dict:
    row = await _readable_port(ctx, conn, port_id)
    addresses = (await rows.addresses_of_ports(conn, [port_id]))[port_id]
    return for_caller(port_view(row, addresses), hidden_keys(ctx))


def _fixed_ips_filter(raws: list[str]):
    """Neutron's `fixed_ips=subnet_id=X` and `fixed_ips=ip_address=Y` (repeatable)."""
    subnet_ids, addresses = [], []
    for raw in raws:
        key, sep, value = raw.partition("=")
        if not sep or not value or key not in ("subnet_id", "ip_address") or len(value) > 64:
            raise HTTPBadRequest(msg=f"Invalid filter value for fixed_ips: '{raw[:64]}'")
        (subnet_ids if key == "subnet_id" else addresses).append(value)
    return rows.fixed_ips_clause(subnet_ids, addresses)


async def list_ports(ctx: RequestContext, conn: AsyncConnection, q: ListQuery) -> Page:
    where = None
    if "fixed_ips" in q.filters:
        filters = dict(q.filters)
        where = _fixed_ips_filter(filters.pop("fixed_ips"))
        q = replace(q, filters=filters)
    hidden = hidden_keys(ctx)
    for key in hidden:
        if key in q.filters:  # a caller filters and sorts only on what it may read
            raise HTTPBadRequest(msg=f"['{key}'] is invalid attribute for filtering")
        if any(name == key for name, _ in q.sorts):
            raise HTTPBadRequest(msg=f"['{key}'] is invalid attribute for sort_keys")
    scope = list_scope(ctx, "get_port", SAMPLES, _read_target)
    if scope.empty:
        return Page([])
    found = await rows.list_ports(conn, ctx, q, where, scope.grants, scope.keep)
    addresses = await rows.addresses_of_ports(conn, [r["id"] for r in found])
    return Page([for_caller(port_view(r, addresses[r["id"]]), hidden) for r in found])


async def update_port(
    ctx: RequestContext, uow: UnitOfWork, clock: HostClock, port_id: str,
    data: dict[str, Any], if_revision: int | None = None,
) -> dict:
    conn = uow.conn
    current = await _readable_port(ctx, conn, port_id)
    net = await _network(ctx, conn, current["network_id"])
    # Lock order of every port write: network (shared), hosts (shared), then the port.
    await _hold_hosts(uow, [current["host"], data.get("binding:host_id") or ""])
    current = await _readable_port(ctx, conn, port_id, lock=True)  # as of the locks
    target = _target(current, net)
    enforce(ctx, "update_port", target)
    for key in GUARDED_ON_UPDATE:
        if key in data:
            enforce(ctx, f"update_port:{key}", target)
    if (data.get("device_owner") or "").startswith(NETWORK_OWNED_PREFIX):
        enforce(ctx, "update_port:device_owner", target)
    check_revision(current, if_revision)
    mac = (port_macs.new_mac(current, data["mac_address"],
                             data.get("device_owner") or current["device_owner"])
           if "mac_address" in data else None)

    values: dict[str, Any] = {}
    for key in ("name", "description", "device_id", "device_owner"):
        if key in data:
            values[key] = data[key] or ""
    if data.get("admin_state_up") is not None:
        values["admin_state_up"] = data["admin_state_up"]
    if "binding:vnic_type" in data:
        values["vnic_type"] = data["binding:vnic_type"] or "normal"
    if "binding:profile" in data:
        values["profile"] = data["binding:profile"] or {}
    host = (data["binding:host_id"] or "") if "binding:host_id" in data else current["host"]
    values["host"] = host

    # A locking read: MariaDB's snapshot of this transaction predates the network lock.
    subnets = await subnet_rows.subnets_of_network(conn, net["id"])
    reached = await _reached(conn, clock, net["id"], host)
    held = (await rows.addresses_of_ports(conn, [port_id], lock=True))[port_id]
    if "fixed_ips" in data:
        if data["fixed_ips"] is None:
            raise InvalidInput(error_message="fixed_ips cannot be null: give [] for none")
        held_ips = {ip for _, ip in held}
        if any(e.get("ip_address") is not None
               and port_addresses.canonical(e["ip_address"]) not in held_ips
               for e in data["fixed_ips"]):  # choosing a new address
            enforce(ctx, "update_port:fixed_ips:ip_address", target)
    port = {**current, **values}
    if mac is not None:
        port["mac_address"] = mac
        held = await port_macs.change_mac(conn, port, current["mac_address"], subnets, held)
    shown = host if check(ctx, "get_port:binding:host_id", target) else "(not shown)"
    addresses = await _readdress(conn, port, subnets, host, reached, held, data,
                                 current["host"], shown)
    # ip_allocation says how the port was created (Neutron writes it on create only): a
    # deferred port keeps it once bound and addressed.
    values.update(_binding(host, reached, _segments_of(subnets, addresses),
                           values.get("admin_state_up", current["admin_state_up"])))
    values["updated_at"] = utcnow()
    row = await rows.update_port(conn, port_id, values, if_revision)
    if row is None:
        raise RevisionNumberConstraintFailed(constraint=if_revision,
                                             current=current["revision_number"])
    view = port_view(row, addresses)
    uow.record(ctx, c.EVENT_PORT_UPDATED, view, row["project_id"])
    return for_caller(dict(view), hidden_keys(ctx))


async def _readdress(conn, port, subnets, host, reached, held, data,
                     current_host: str, shown_host: str) -> list[tuple[str, str]]:
    """The port's addresses after an update: fixed_ips replaced, a deferred port given its
    addresses once it has a host, and the existing ones checked against a new host."""
    by_id = {s["id"]: s for s in subnets}
    if "fixed_ips" in data:
        wanted = data["fixed_ips"] or []
        port_addresses.check_entry_count(wanted)
        port_addresses.refuse_duplicates(wanted)
        kept, new = _split_kept(wanted, held)
        requests = port_addresses.resolve_fixed_ips(port["network_id"], subnets, new) if new else []
        segments = {by_id[sid]["segment_id"] for sid, _ in kept} | {
            r.subnet["segment_id"] for r in requests}
        if len(segments) > 1:
            raise FixedIpsSubnetsNotOnSameSegment()
        port_addresses.check_host_fits(host, port["id"], segments, reached, shown_host)
        if wanted:  # SLAAC/stateless addresses stay, as in Neutron, named or not
            segment = next(iter(segments)) if segments else None
            named = {sid for sid, _ in kept} | {r.subnet["id"] for r in requests}
            for subnet in subnets:
                if (subnet["id"] in named or subnet["segment_id"] != segment
                        or not allocators.is_auto_address(subnet["ip_version"],
                                                          subnet["ipv6_address_mode"])):
                    continue
                mine = [p for p in held if p[0] == subnet["id"]]
                if mine:
                    kept.extend(mine)
                else:
                    requests.append(port_addresses.Request(subnet))
        await rows.release_addresses(conn, port["id"], [p for p in held if p not in kept])
        plan = port_addresses.Plan(c.IP_ALLOCATION_IMMEDIATE, requests=requests)
        taken = await port_addresses.allocate(conn, port, plan)
        return kept + taken
    if not held and port["ip_allocation"] == c.IP_ALLOCATION_DEFERRED and host:
        plan = port_addresses.automatic_plan(port["network_id"], subnets, host, reached)
        return await port_addresses.allocate(conn, port, plan)
    if host != current_host:  # a port stays where it is bound until its host changes
        held_segments = {by_id[sid]["segment_id"] for sid, _ in held}
        port_addresses.check_host_fits(host, port["id"], held_segments, reached, shown_host)
    return list(held)


def _split_kept(wanted: list[dict[str, Any]], held: list[tuple[str, str]]):
    """Entries naming an address the port holds keep it; a bare subnet_id keeps one address
    the port holds on that subnet; the rest are new requests."""
    remaining = list(held)
    kept: list[tuple[str, str]] = []
    new: list[dict[str, Any]] = []
    for entry in wanted:
        ip, subnet_id = entry.get("ip_address"), entry.get("subnet_id")
        match = next((p for p in remaining if (ip is None or p[1] == port_addresses.canonical(ip))
                      and (subnet_id is None or p[0] == subnet_id)), None)
        if match is None:
            new.append(entry)
        else:
            remaining.remove(match)
            kept.append(match)
    return kept, new


async def delete_port(
    ctx: RequestContext, uow: UnitOfWork, port_id: str, if_revision: int | None = None
) -> None:
    row = await _readable_port(ctx, uow.conn, port_id)
    await network_rows.share_lock_network(uow.conn, row["network_id"])
    row = await _readable_port(ctx, uow.conn, port_id, lock=True)  # as of the locks
    enforce(ctx, "delete_port", _target(row, {"project_id": row["network_project_id"]}))
    check_revision(row, if_revision)
    addresses = (await rows.addresses_of_ports(uow.conn, [port_id], lock=True))[port_id]
    if not await rows.delete_port(uow.conn, port_id):
        raise PortNotFound(port_id=port_id)
    uow.record(ctx, c.EVENT_PORT_DELETED, port_view(row, addresses), row["project_id"])


async def delete_network_ports(ctx: RequestContext, uow: UnitOfWork, network_id: str) -> None:
    """Before a network goes: 409 NetworkInUse while user ports remain; the ports of the
    network's own services go with it, each with its event. The caller holds the lock."""
    ports = await rows.ports_of_network(uow.conn, network_id)
    if any(p["device_owner"] not in c.AUTO_DELETE_DEVICE_OWNERS for p in ports):
        raise NetworkInUse(net_id=network_id)
    addresses = await rows.addresses_of_ports(uow.conn, [p["id"] for p in ports])
    for port in ports:
        await rows.delete_port(uow.conn, port["id"])
        uow.record(ctx, c.EVENT_PORT_DELETED, port_view(port, addresses[port["id"]]),
                   port["project_id"])

