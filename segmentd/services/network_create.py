"""The common network create as one statement where the database can (db/network_create.py).

A network of one segment whose ID comes from one known place (a fixed ID, or a single
range on a known physnet) has everything settled before the insert but the ID itself:
the MTU, the views, the events and the audit row. Anything else, and any insert that
finds its ID or key taken, goes the ordinary way, which also raises the right error.
"""

from __future__ import annotations

import random
from typing import Any

from segmentd import constants as c
from segmentd.context import RequestContext
from segmentd.db import network_create as rows
from segmentd.events.outbox import outbox_row
from segmentd.services.clock import utcnow
from segmentd.services.network_types import AllocationPlan, SegmentSpec, TypeRules
from segmentd.services.segments import new_segment_base
from segmentd.services.shapes import network_view, segment_view
from segmentd.services.uow import UnitOfWork

# Where each event body holds the segment's ID, set by the database once it is allocated.
NETWORK_ID_PATH = ("resource", "provider:segmentation_id")
SEGMENT_ID_PATH = ("resource", "segmentation_id")


async def create_network(
    ctx: RequestContext,
    uow: UnitOfWork,
    rules: TypeRules,
    row: dict[str, Any],
    plans: list[AllocationPlan],
    requested_mtu: int | None,
) -> dict[str, Any] | None:
    """The created network's view, or None when the ordinary path must do it.

    `row` is the network row to insert (its MTU is set here); `plans` the checked plans
    of the requested segments (none: one segment of the first project network type).
    """
    if (len(plans) > 1 or uow.events or uow.bulk or uow.audit is None
            or not await rows.available(uow.conn)):
        return None
    plan = plans[0] if plans else rules.plan(SegmentSpec(rules.tenant_types[0]))
    if not plan.carries_id or len(plan.pools) != 1:
        return None
    physnet, ranges = plan.pools[0]
    if plan.fixed_id is None and len(ranges) != 1:
        return None
    maximum = rules.max_network_mtu([SegmentSpec(plan.network_type, physnet or None)])
    if requested_mtu and maximum and requested_mtu > maximum:
        return None  # another tenant type may carry it, and a taken ID answers first
    row["mtu"] = requested_mtu or maximum

    segment_row = dict(
        new_segment_base(row["id"], None, ""), network_type=plan.network_type,
        alloc_physnet=physnet, physical_network=physnet or None,
    )
    # A valid ID stands in until the database has allocated the real one.
    stand_in = plan.fixed_id if plan.fixed_id is not None else ranges[0].minimum
    segment = dict(segment_row, segmentation_id=stand_in, segment_index=0)
    view = network_view(row, [segment], show_provider=True)
    project_id = row["project_id"]
    uow.record(ctx, c.EVENT_NETWORK_CREATED, view, project_id)
    uow.record(ctx, c.EVENT_SEGMENT_CREATED, segment_view(segment), project_id)
    now = utcnow()
    network_event, segment_event = uow.events
    events = [(outbox_row(network_event, now), NETWORK_ID_PATH),
              (outbox_row(segment_event, now), SEGMENT_ID_PATH)]
    if plan.fixed_id is not None:
        allocation: dict[str, Any] = {"alloc_id": plan.fixed_id}
    else:
        rng = ranges[0]
        allocation = {
            "lo": rng.minimum, "hi": rng.maximum,
            "probes": tuple(random.randint(rng.minimum, rng.maximum)
                            for _ in range(c.ALLOCATION_PROBES)),
        }
    audit = uow.audit(uow)
    if not isinstance(audit, dict):  # no audit row, or several: not this path's shape
        uow.events.clear()
        return None
    got = await rows.create_network(
        uow.conn, row, segment_row, events=events, audit=audit, **allocation
    )
    if got is None:
        uow.events.clear()
        return None
    uow.records_written = True
    view["provider:segmentation_id"] = got[0]
    segment_event.resource["segmentation_id"] = got[0]
    return view
