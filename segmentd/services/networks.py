"""Networks: create with their segments in one transaction, read, update, delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import PROVIDER_ATTRIBUTES, check, enforce
from segmentd.context import RequestContext
from segmentd.db import networks as rows
from segmentd.db import ports as port_rows
from segmentd.db import segments as segment_rows
from segmentd.db import subnets as subnet_rows
from segmentd.errors import (
    HTTPBadRequest,
    InvalidInput,
    InvalidSharedSetting,
    NetworkNotFound,
    NoNetworkAvailable,
    ProviderUpdateNotSupported,
    SegmentsContainDuplicateEntry,
    SegmentsSetInConjunctionWithProviders,
)
from segmentd.query import ListQuery, Page, Rows
from segmentd.services import network_create
from segmentd.services.checks import check_owner, check_revision
from segmentd.services.clock import utcnow
from segmentd.services.network_types import SegmentSpec, TypeRules
from segmentd.services.ports import delete_network_ports
from segmentd.services.realization import Watch, mark_unrealized
from segmentd.services.scoping import ELSEWHERE, MINE, list_scope
from segmentd.services.segments import (
    insert_planned_segment,
    new_segment_base,
    reassign_vlan_id,
)
from segmentd.services.shapes import (
    PROVIDER_KEYS,
    network_view,
    segment_view,
    shows_provider,
)
from segmentd.services.subnets import check_mtu_carries_subnets, delete_network_subnets
from segmentd.services.uow import UnitOfWork

PROVIDER_TYPE, PROVIDER_PHYSNET, PROVIDER_SEG_ID = PROVIDER_KEYS
# A network standing for each kind of row a list can be scoped to (services/scoping.py).
SAMPLES = {
    Rows.EVERY: {"project_id": ELSEWHERE, "shared": False},
    Rows.OWN: {"project_id": MINE, "shared": False},
    Rows.SHARED: {"project_id": ELSEWHERE, "shared": True},
}


def requested_specs(data: dict[str, Any]) -> list[SegmentSpec]:
    """The segments a create asks for: provider:* (one), `segments` (several), or none."""
    provider = {k: data[k] for k in PROVIDER_KEYS if data.get(k) is not None}
    if provider and data.get("segments") is not None:
        raise SegmentsSetInConjunctionWithProviders()
    entries = [provider] if provider else list(data.get("segments") or [])
    specs = []
    for entry in entries:
        if entry.get(PROVIDER_TYPE) is None:
            raise InvalidInput(error_message="network_type required")
        specs.append(
            SegmentSpec(entry[PROVIDER_TYPE], entry.get(PROVIDER_PHYSNET), entry.get(PROVIDER_SEG_ID))
        )
    full = [s for s in specs if s.segmentation_id is not None or s.network_type == c.TYPE_FLAT]
    if len(set(full)) != len(full):
        raise SegmentsContainDuplicateEntry()
    return specs


async def create_network(
    ctx: RequestContext, uow: UnitOfWork, rules: TypeRules, data: dict[str, Any]
) -> dict[str, Any]:
    """Create a network and its segments; without provider data, one tenant segment."""
    project_id = data.get("project_id") or data.get("tenant_id") or ctx.project_id
    if not project_id:  # a system-scoped token acts in no project of its own
        raise HTTPBadRequest(msg="A token scoped to no project must name the network's "
                                 "project_id")
    target = {"project_id": project_id, "shared": data.get("shared", False)}
    check_owner(ctx, "create_network", target)
    enforce(ctx, "create_network", target)
    if data.get("shared"):
        enforce(ctx, "create_network:shared", target)
    specs = requested_specs(data)
    for attr in PROVIDER_ATTRIBUTES:
        if data.get(attr) is not None:
            enforce(ctx, f"create_network:{attr}", target)
    plans = [rules.plan(s) for s in specs]  # every rule checked before anything is written
    requested_mtu = data.get("mtu")

    now = utcnow()
    row = {
        "id": str(uuid.uuid4()),
        "project_id": project_id,
        "name": data.get("name") or "",
        "description": data.get("description") or "",
        "admin_state_up": data.get("admin_state_up", True),
        "shared": data.get("shared", False),
        "status": c.STATUS_ACTIVE,
        "mtu": 0,
        "created_at": now,
        "updated_at": now,
        "revision_number": 0,
    }
    created = await network_create.create_network(ctx, uow, rules, row, plans, requested_mtu)
    if created is not None:
        return _for_caller(ctx, created)
    # The row must exist before its segments (foreign key) but its MTU depends on where they
    # land: estimate it from the request and correct it in the rare case allocation differs.
    tenant_specs = [SegmentSpec(rules.tenant_types[0])] if not specs else specs
    row["mtu"] = requested_mtu or rules.max_network_mtu(tenant_specs)

    # The network row goes in with the first segment insert (one statement on PostgreSQL).
    pending = [row]
    if plans:
        segments = [
            await insert_planned_segment(
                uow.conn, p, new_segment_base(row["id"], None, ""), pending
            )
            for p in plans
        ]
    else:
        segments = [await _allocate_tenant_segment(uow.conn, rules, row["id"], pending)]
    maximum = rules.max_network_mtu([_spec_of(s) for s in segments])
    rules.check_mtu(requested_mtu or maximum, maximum)
    if (requested_mtu or maximum) != row["mtu"]:
        row["mtu"] = requested_mtu or maximum
        await rows.set_mtu(uow.conn, row["id"], row["mtu"])
    view = network_view(row, segments, show_provider=True)
    uow.record(ctx, c.EVENT_NETWORK_CREATED, view, project_id)
    for s in segments:
        uow.record(ctx, c.EVENT_SEGMENT_CREATED, segment_view(s), project_id)
    return _for_caller(ctx, view)


def _spec_of(segment) -> SegmentSpec:
    return SegmentSpec(segment["network_type"], segment["physical_network"], segment["segmentation_id"])


async def _allocate_tenant_segment(
    conn: AsyncConnection, rules: TypeRules, network_id: str, pending_network: list
):
    """The first tenant network type with a free ID wins, as in Neutron."""
    for network_type in rules.tenant_types:
        plan = rules.plan(SegmentSpec(network_type))
        try:
            base = new_segment_base(network_id, None, "")
            return await insert_planned_segment(conn, plan, base, pending_network)
        except NoNetworkAvailable:
            continue
    raise NoNetworkAvailable()


def _for_caller(ctx: RequestContext, view: dict[str, Any]) -> dict[str, Any]:
    if shows_provider(ctx):
        return view
    return {k: v for k, v in view.items() if k not in PROVIDER_ATTRIBUTES}


async def get_network(
    ctx: RequestContext, conn: AsyncConnection, network_id: str, watch: Watch | None = None
) -> dict:
    row = await rows.get_network(conn, ctx, network_id)
    if row is None or not check(ctx, "get_network", row):
        raise NetworkNotFound(net_id=network_id)
    show = shows_provider(ctx)
    segments = (await segment_rows.segments_of_networks(conn, [row["id"]]))[row["id"]] if show else []
    subnets = (await subnet_rows.subnets_by_network(conn, [row["id"]])).get(row["id"], ())
    view = network_view(row, segments, show, subnets)
    await mark_unrealized(conn, watch, [view])
    return view


async def list_networks(
    ctx: RequestContext, conn: AsyncConnection, q: ListQuery, watch: Watch | None = None
) -> Page:
    show = shows_provider(ctx)
    hidden = [k for k in PROVIDER_KEYS if k in q.filters] if not show else []
    if hidden:
        # Answered like an unknown filter: hidden values cannot be probed through filters.
        raise HTTPBadRequest(msg=f"['{hidden[0]}'] is invalid attribute for filtering")
    scope = list_scope(ctx, "get_network", SAMPLES, dict)
    if scope.empty:
        return Page([])
    found = await rows.list_networks(conn, ctx, q, scope.grants, scope.keep)
    by_net = (
        await segment_rows.segments_of_networks(conn, [r["id"] for r in found]) if show else {}
    )
    subnets = await subnet_rows.subnets_by_network(conn, [r["id"] for r in found])
    views = [network_view(r, by_net.get(r["id"], []), show, subnets.get(r["id"], ())) for r in found]
    await mark_unrealized(conn, watch, views)
    return Page(views)


async def _locked_network(uow: UnitOfWork, ctx: RequestContext, network_id: str, action: str):
    """The network for a write: 404 if the caller cannot see it, 403 if it may not `action`."""
    row = await rows.get_network_for_update(uow.conn, ctx, network_id)
    if row is None or not check(ctx, "get_network", row):
        raise NetworkNotFound(net_id=network_id)
    enforce(ctx, action, row)
    return row


async def update_network(
    ctx: RequestContext,
    uow: UnitOfWork,
    rules: TypeRules,
    network_id: str,
    data: dict[str, Any],
    if_revision: int | None = None,
) -> dict:
    """Change a network's attributes; a single VLAN segment may change its VLAN ID."""
    row = await _locked_network(uow, ctx, network_id, "update_network")
    check_revision(row, if_revision)
    if "shared" in data and data["shared"] != row["shared"]:
        enforce(ctx, "update_network:shared", row)
        if not data["shared"] and await port_rows.has_other_projects_ports(
                uow.conn, network_id, row["project_id"]):
            raise InvalidSharedSetting(network=network_id)
    segments = (await segment_rows.segments_of_networks(uow.conn, [network_id]))[network_id]
    provider = {k: data[k] for k in PROVIDER_KEYS if k in data}
    changed_segment = None
    for attr in provider:
        enforce(ctx, f"update_network:{attr}", row)
    if provider:
        changed_segment = await _update_provider(uow.conn, rules, segments, provider)
        if changed_segment is not None:
            segments = [changed_segment]

    values = {k: data[k] for k in ("name", "description", "admin_state_up", "shared") if k in data}
    if values.get("description", "") is None:
        values["description"] = ""
    if values.get("name", "") is None:
        values["name"] = ""
    if data.get("mtu") is not None:
        # As Neutron: the subnets' minimums first, on the value asked for (0 included).
        subnets = await subnet_rows.subnets_of_network(uow.conn, network_id)
        check_mtu_carries_subnets(network_id, data["mtu"], [s["ip_version"] for s in subnets])
        maximum = rules.max_network_mtu([_spec_of(s) for s in segments])
        rules.check_mtu(data["mtu"], maximum)
        values["mtu"] = data["mtu"] or maximum
    values["updated_at"] = utcnow()
    updated = await rows.update_network(uow.conn, network_id, values)
    subnets = (await subnet_rows.subnets_by_network(uow.conn, [network_id])).get(network_id, ())
    view = network_view(updated, segments, True, subnets)
    uow.record(ctx, c.EVENT_NETWORK_UPDATED, view, row["project_id"])
    if changed_segment is not None:
        uow.record(ctx, c.EVENT_SEGMENT_UPDATED, segment_view(changed_segment), row["project_id"])
    return _for_caller(ctx, view)


async def _update_provider(conn, rules: TypeRules, segments, provider: dict[str, Any]):
    """Only the VLAN ID of a one-segment VLAN network may change (Neutron's rule)."""
    if len(segments) != 1:
        raise InvalidInput(
            error_message="provider attributes can be updated only on a network with one segment"
        )
    seg = segments[0]
    for key, column in ((PROVIDER_TYPE, "network_type"), (PROVIDER_PHYSNET, "physical_network")):
        if key in provider and provider[key] != seg[column]:
            raise ProviderUpdateNotSupported(attrs=key)
    new_id = provider.get(PROVIDER_SEG_ID)
    if new_id is None or new_id == seg["segmentation_id"]:
        return None
    if seg["network_type"] != c.TYPE_VLAN:
        raise InvalidInput(error_message="Only VLAN type networks can be updated.")
    rules.plan(SegmentSpec(c.TYPE_VLAN, seg["physical_network"], new_id))
    return await reassign_vlan_id(conn, seg, new_id)


async def delete_network(
    ctx: RequestContext, uow: UnitOfWork, network_id: str, if_revision: int | None = None
) -> None:
    """Delete a network, its segments and their ID allocations in one transaction."""
    row = await _locked_network(uow, ctx, network_id, "delete_network")
    check_revision(row, if_revision)
    await delete_network_ports(ctx, uow, network_id)
    await delete_network_subnets(ctx, uow, network_id, row["project_id"])
    deleted = await segment_rows.delete_network_and_segments(uow.conn, network_id)
    for s in deleted:
        uow.record(ctx, c.EVENT_SEGMENT_DELETED, segment_view(s), row["project_id"])
    uow.record(ctx, c.EVENT_NETWORK_DELETED, network_view(row, deleted, True), row["project_id"])
