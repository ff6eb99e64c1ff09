"""Which hosts reach which segments: read-only queries, each one indexed join."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import enforce
from segmentd.context import RequestContext
from segmentd.db import hosts as rows
from segmentd.db import segments as segment_rows
from segmentd.errors import HostNotFound, SegmentNotFound
from segmentd.query import ListQuery, Page, is_host_name
from segmentd.services.clock import HostClock, utcnow
from segmentd.services.reach import describe_reach
from segmentd.services.segments import list_segments
from segmentd.services.shapes import timestamp


async def list_hosts(ctx: RequestContext, conn: AsyncConnection, q: ListQuery, clock: HostClock):
    """Hosts with what they reach; a host past its grace period reaches nothing."""
    enforce(ctx, "get_host")
    found = await rows.list_hosts(conn, q, is_host_name)
    reach = await rows.reach_of_hosts(conn, [r["host"] for r in found])
    now = utcnow()
    cutoff = clock.cutoff(now)
    items = []
    for row in found:
        held = row["chassis"] is not None  # alive while its OVN chassis exists
        live = held or row["reported_at"] >= cutoff
        physnets, tunnels = describe_reach(reach[row["host"]]) if live else ([], [])
        items.append({
            "host": row["host"],
            "physnets": physnets,
            "tunnel_types": tunnels,
            "alive": held or clock.alive(row["reported_at"], now),
            "chassis": row["chassis"],
            "segment_count": row["segment_count"] if live else 0,
            "reported_at": timestamp(row["reported_at"]),
        })
    return Page(items)


async def segments_of_host(
    ctx: RequestContext, conn: AsyncConnection, q: ListQuery, host: str, clock: HostClock
) -> Page:
    enforce(ctx, "get_host")
    if not is_host_name(host) or not await rows.host_exists(conn, host):
        raise HostNotFound(host=host)
    return await list_segments(ctx, conn, replace(q, filters={**q.filters, "host": [host]}), clock)


async def hosts_of_segment(
    ctx: RequestContext, conn: AsyncConnection, q: ListQuery, segment_id: str, clock: HostClock
) -> Page:
    """The live hosts that reach a segment, by name."""
    enforce(ctx, "get_host")
    seg = await segment_rows.get_visible_segment(conn, ctx, segment_id)
    if seg is None:
        raise SegmentNotFound(segment_id=segment_id)
    key = (seg["network_type"], seg["physical_network"] or c.NO_PHYSNET_KEY)
    now = utcnow()
    found = await rows.hosts_reaching(conn, key, clock.cutoff(now), q, is_host_name)
    items: list[dict[str, Any]] = [
        {"host": r["host"], "alive": r["chassis"] is not None or clock.alive(r["reported_at"], now),
         "reported_at": timestamp(r["reported_at"])}
        for r in found
    ]
    return Page(items)
