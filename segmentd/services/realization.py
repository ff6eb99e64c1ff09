"""What realization looks like from the database: every network and segment as events show
them (the drift check's side), and what is still on its way to the backend."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.backends.base import Backend, DesiredState
from segmentd.db import realization as rows
from segmentd.services.port_views import port_view
from segmentd.services.views import network_view, segment_view, subnet_view


async def desired_state(conn: AsyncConnection, target: str) -> DesiredState:
    """Read in one snapshot where the database allows it (the caller's transaction)."""
    in_flight = await rows.in_flight(conn, target)
    segment_rows = await rows.all_segments(conn)
    by_network: dict[str, list] = defaultdict(list)
    for row in segment_rows:
        by_network[row["network_id"]].append(row)
    networks = [network_view(row, by_network.get(row["id"], []), show_provider=True)
                for row in await rows.all_networks(conn)]
    ports, addresses = await rows.all_ports(conn)
    return DesiredState(
        networks, [segment_view(r) for r in segment_rows], in_flight,
        [subnet_view(r) for r in await rows.all_subnets(conn)],
        [port_view(r, addresses.get(r["id"], [])) for r in ports],
    )


async def claim_check(conn: AsyncConnection, now, every) -> bool:
    return await rows.claim_check(conn, now, every)


async def save_report(conn: AsyncConnection, report: str, mode: str, at) -> None:
    await rows.save_report(conn, report, mode, at)


async def latest_report(conn: AsyncConnection) -> dict[str, Any] | None:
    return await rows.latest_report(conn)


STATUS_BUILD = "BUILD"  # Neutron's status for a network not yet in place


@dataclass(frozen=True)
class Watch:
    """A backend that realizes changes through a dispatcher target (OVN's, for one)."""

    target: str
    types: frozenset[str]  # the event types the target applies
    connected: Callable[[], bool]
    # The types that make a network BUILD while on their way (its own and its segments').
    shape: frozenset[str] | None = None


def watch_of(backend: Backend) -> Watch | None:
    """What the API shows of a backend's realization (None when it realizes nothing)."""
    if not backend.realizes:
        return None
    return Watch(backend.name, backend.realizes, lambda: backend.connected,
                 backend.shapes_network)


def network_key(network_id: str) -> str:
    return f"network:{network_id}"  # the ordering key a network's and its segments' events share


async def mark_unrealized(conn: AsyncConnection, watch: Watch | None, views: list[dict]) -> None:
    """Set status BUILD on the network views whose latest change (or a segment's) the
    backend has not applied yet: one query for the page."""
    if watch is None or not views:
        return
    keys = {network_key(v["id"]) for v in views}
    pending = await rows.pending_keys(conn, watch.target, watch.shape or watch.types, keys)
    for view in views:
        if network_key(view["id"]) in pending:
            view["status"] = STATUS_BUILD


def just_written(watch: Watch | None, view: dict) -> dict:
    """A write's answer: BUILD until the backend applies the change the write committed."""
    if watch is not None and "status" in view:
        view["status"] = STATUS_BUILD
    return view


async def backend_status(conn: AsyncConnection, watch: Watch, limit: int) -> dict[str, Any]:
    """For admins: is the backend connected, how many events wait, the oldest of them."""
    return {
        "target": watch.target,
        "connected": watch.connected(),
        "backlog": await rows.backlog(conn, watch.target, watch.types),
        "pending": await rows.oldest_pending(conn, watch.target, watch.types, limit),
        "chassis_conflicts": await chassis_conflicts(conn),
    }


async def backlog(conn: AsyncConnection, watch: Watch) -> int:
    return await rows.backlog(conn, watch.target, watch.types)


async def take_lease(conn: AsyncConnection, me: str, now, until) -> bool:
    return await rows.take_lease(conn, me, now, until)


async def save_conflicts(conn: AsyncConnection, conflicts: list[dict[str, Any]], at) -> None:
    await rows.save_conflicts(conn, orjson.dumps(conflicts).decode(), at)


async def chassis_conflicts(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The chassis the watcher refused last time it looked (see segmentd/workers/chassis.py)."""
    text = await rows.chassis_conflicts(conn)
    return orjson.loads(text) if text else []
