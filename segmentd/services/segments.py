"""Segments: create with type rules and ID allocation, read, rename, delete."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import check, enforce
from segmentd.context import RequestContext
from segmentd.db import hosts as host_rows
from segmentd.db import networks as network_rows
from segmentd.db import ports as port_rows
from segmentd.db import segments as rows
from segmentd.db import subnets as subnet_rows
from segmentd.errors import (
    FlatNetworkInUse,
    HTTPBadRequest,
    NetworkNotFound,
    NoNetworkAvailable,
    RevisionNumberConstraintFailed,
    SegmentInUse,
    SegmentNotFound,
    TunnelIdInUse,
    VlanIdInUse,
)
from segmentd.query import ListQuery, Page, Rows, is_host_name
from segmentd.services.checks import check_revision
from segmentd.services.clock import HostClock, utcnow
from segmentd.services.network_types import AllocationPlan, SegmentSpec, TypeRules
from segmentd.services.scoping import ELSEWHERE, MINE, list_scope
from segmentd.services.shapes import segment_view
from segmentd.services.uow import UnitOfWork


def _in_use(plan: AllocationPlan, physnet: str):
    if plan.network_type == c.TYPE_FLAT:
        return FlatNetworkInUse(physical_network=physnet)
    if plan.network_type == c.TYPE_VLAN:
        return VlanIdInUse(vlan_id=plan.fixed_id, physical_network=physnet)
    return TunnelIdInUse(tunnel_id=plan.fixed_id)


async def insert_planned_segment(
    conn: AsyncConnection,
    plan: AllocationPlan,
    base: dict[str, Any],
    pending_network: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Insert a segment, allocating its ID as planned; bounded retries on concurrent conflicts.

    `base` holds id, network_id, name, description and timestamps. A vlan segment that did
    not name a physnet records the one its ID came from. `pending_network` holds the row of
    a network being created: the first insert statement takes it along and empties it.
    """

    async def insert(row, **kwargs):
        network = pending_network.pop() if pending_network else None
        return await rows.insert_segment(conn, row, new_network=network, **kwargs)

    for _attempt in range(c.ALLOCATION_ATTEMPTS):
        if plan.fixed_id is not None:
            physnet = plan.pools[0][0]
            row = dict(base, network_type=plan.network_type, alloc_physnet=physnet,
                       physical_network=physnet or None)
            got = await insert(row, carries_id=plan.carries_id, alloc_id=plan.fixed_id)
            if got is not None:
                return got
            if await rows.allocation_taken(conn, plan.network_type, physnet, plan.fixed_id):
                raise _in_use(plan, physnet)
            continue  # another writer took the same segment_index: try again
        raced = False
        for physnet, ranges in plan.pools:
            for rng in ranges:
                row = dict(base, network_type=plan.network_type, alloc_physnet=physnet,
                           physical_network=physnet or None)
                probes = tuple(
                    random.randint(rng.minimum, rng.maximum) for _ in range(c.ALLOCATION_PROBES)
                )
                got = await insert(
                    row, carries_id=True, lo=rng.minimum, hi=rng.maximum, probes=probes
                )
                if got is not None:
                    return got
                if await rows.free_id_exists(
                    conn, plan.network_type, physnet, rng.minimum, rng.maximum
                ):
                    raced = True
                    break
            if raced:
                break
        if not raced:
            raise NoNetworkAvailable()
    raise NoNetworkAvailable()


async def reassign_vlan_id(conn: AsyncConnection, seg, vlan_id: int) -> dict[str, Any]:
    """Move a VLAN segment to another ID on its physnet: take the new one, free the old one."""
    row = await rows.reassign_id(conn, seg["id"], vlan_id, utcnow())
    if row is None:
        raise VlanIdInUse(vlan_id=vlan_id, physical_network=seg["physical_network"])
    return row


def new_segment_base(network_id: str, name: str | None, description: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": str(uuid.uuid4()),
        "network_id": network_id,
        "name": name,
        "description": description,
        "created_at": now,
        "updated_at": now,
        "revision_number": 0,
    }


async def create_segment(
    ctx: RequestContext, uow: UnitOfWork, rules: TypeRules, data: dict[str, Any]
) -> dict[str, Any]:
    """Add a segment to a network; the network's MTU must fit on it."""
    net = await network_rows.get_network_for_update(uow.conn, ctx, data["network_id"])
    if net is None:
        raise NetworkNotFound(net_id=data["network_id"])
    enforce(ctx, "create_segment", {"project_id": net["project_id"], "network_id": net["id"]})
    spec = SegmentSpec(
        data["network_type"], data.get("physical_network"), data.get("segmentation_id")
    )
    plan = rules.plan(spec)
    base = new_segment_base(net["id"], data.get("name"), data.get("description") or "")
    row = await insert_planned_segment(uow.conn, plan, base)
    rules.check_mtu(net["mtu"], rules.segment_mtu(row["network_type"], row["physical_network"]))
    view = segment_view(row)
    uow.record(ctx, c.EVENT_SEGMENT_CREATED, view, net["project_id"])
    return view


def _target(row) -> dict[str, Any]:
    return {"project_id": row["project_id"], "network_id": row["network_id"]}


# A segment standing for each kind of row a list can be scoped to (services/scoping.py); its
# target tells nothing of sharing, so the read rule cannot grant shared networks' segments.
SAMPLES = {
    Rows.EVERY: {"project_id": ELSEWHERE, "network_id": ELSEWHERE},
    Rows.OWN: {"project_id": MINE, "network_id": ELSEWHERE},
}


async def _readable_segment(ctx: RequestContext, conn: AsyncConnection, segment_id: str):
    """The segment, or SegmentNotFound when it is missing or the caller may not read it."""
    row = await rows.get_visible_segment(conn, ctx, segment_id)
    if row is None or not check(ctx, "get_segment", _target(row)):
        raise SegmentNotFound(segment_id=segment_id)
    return row


async def get_segment(ctx: RequestContext, conn: AsyncConnection, segment_id: str) -> dict:
    return segment_view(await _readable_segment(ctx, conn, segment_id))


MAX_HOST_FILTER_VALUES = 64


async def list_segments(
    ctx: RequestContext, conn: AsyncConnection, q: ListQuery, clock: HostClock
) -> Page:
    """Segments the caller may read; Neutron answers a caller who may read none with [].

    `host=H` (repeatable: any of them) keeps the segments live host H reaches.
    """
    scope = list_scope(ctx, "get_segment", SAMPLES, _target)
    if scope.empty:
        return Page([])
    where = None
    if "host" in q.filters:
        enforce(ctx, "get_host")
        names = q.filters["host"]
        if len(names) > MAX_HOST_FILTER_VALUES or not all(is_host_name(n) for n in names):
            raise HTTPBadRequest(msg="Invalid filter value for host")
        cutoff = clock.cutoff(utcnow())
        where = or_(*[host_rows.reached_by(n, cutoff) for n in names])
        q = replace(q, filters={k: v for k, v in q.filters.items() if k != "host"})
    found = await rows.list_segments(conn, ctx, q, where, scope.grants, scope.keep)
    return Page([segment_view(r) for r in found])


async def update_segment(
    ctx: RequestContext,
    uow: UnitOfWork,
    segment_id: str,
    data: dict[str, Any],
    if_revision: int | None = None,
) -> dict:
    """Rename or re-describe a segment; everything else about it is fixed at create."""
    current = await _readable_segment(ctx, uow.conn, segment_id)
    enforce(ctx, "update_segment", _target(current))
    check_revision(current, if_revision)
    values = {k: data[k] for k in ("name", "description") if k in data}
    if "description" in values and values["description"] is None:
        values["description"] = ""
    values["updated_at"] = utcnow()
    row = await rows.update_segment(uow.conn, segment_id, values, if_revision)
    if row is None:  # changed or deleted since we read it
        latest = await rows.get_segment(uow.conn, segment_id)
        if latest is None:
            raise SegmentNotFound(segment_id=segment_id)
        raise RevisionNumberConstraintFailed(
            constraint=if_revision, current=latest["revision_number"]
        )
    view = segment_view(row)
    uow.record(ctx, c.EVENT_SEGMENT_UPDATED, view, current["project_id"])
    return view


async def ensure_segment_unused(conn: AsyncConnection, segment_id: str) -> None:
    """Raise SegmentInUse while subnets sit on the segment (409, as Neutron answers).

    The caller holds its network's row lock, which subnet writes take too: a subnet being
    put on the segment meanwhile is either committed and seen here, or waits and then
    finds the segment gone."""
    subnet_ids = await subnet_rows.subnet_ids_of_segment(conn, segment_id)
    if subnet_ids:
        raise SegmentInUse(
            segment_id=segment_id,
            reason=f"The segment is still associated with subnet(s) {', '.join(subnet_ids)}",
        )
    port_ids = await port_rows.ports_bound_to_segment(conn, segment_id, 5)
    if port_ids:  # Neutron's ML2 refuses this too
        raise SegmentInUse(
            segment_id=segment_id, reason=f"Ports are bound to it: {', '.join(port_ids)}"
        )


async def delete_segment(
    ctx: RequestContext, uow: UnitOfWork, segment_id: str, if_revision: int | None = None
) -> None:
    """Delete a segment and free its segmentation ID in the same transaction."""
    await network_rows.lock_network_of_segment(uow.conn, segment_id)
    row = await _readable_segment(ctx, uow.conn, segment_id)
    enforce(ctx, "delete_segment", _target(row))
    check_revision(row, if_revision)
    await ensure_segment_unused(uow.conn, segment_id)
    if not await rows.delete_segment(uow.conn, segment_id):
        raise SegmentNotFound(segment_id=segment_id)
    uow.record(ctx, c.EVENT_SEGMENT_DELETED, segment_view(row), row["project_id"])
