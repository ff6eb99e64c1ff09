"""Realization as the API shows it: a network is BUILD while a change of it is on its way
to the backend, and admins see the backend's state and what waits for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.backends.base import Backend
from segmentd.db import realization as rows
from segmentd.services import chassis


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
        "chassis_conflicts": await chassis.chassis_conflicts(conn),
    }


async def backlog(conn: AsyncConnection, watch: Watch) -> int:
    return await rows.backlog(conn, watch.target, watch.types)
