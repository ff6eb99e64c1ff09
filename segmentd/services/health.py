"""What readiness and metrics report, read from the database and the backend's state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db import outbox as outbox_rows
from segmentd.db.engine import ping
from segmentd.services import realization
from segmentd.services.realization import Watch


@dataclass(frozen=True)
class Gauge:
    name: str
    help: str
    labels: tuple[str, ...]
    samples: Sequence[tuple[tuple[str, ...], float]]


async def readiness(conn: AsyncConnection, watch: Watch | None) -> dict[str, Any]:
    """"ready", or "degraded" while the backend is unreachable; what waits for it."""
    await ping(conn)
    state: dict[str, Any] = {"status": "ready", "database": "ok"}
    if watch is not None:
        connected = watch.connected()
        waiting = await realization.backlog(conn, watch)
        state[watch.target] = "behind" if waiting else "in sync"
        state[f"{watch.target}_connection"] = "connected" if connected else "unreachable"
        state[f"{watch.target}_backlog"] = waiting
        if not connected:
            state["status"] = "degraded"
    return state


async def gauges(conn: AsyncConnection, watch: Watch | None) -> list[Gauge]:
    undelivered = await outbox_rows.undelivered_by_target(conn)
    found = [
        Gauge("segmentd_events_unfanned", "Committed events not yet handed to any target", (),
              [((), await outbox_rows.unfanned_count(conn))]),
        Gauge("segmentd_event_deliveries_pending", "Deliveries not yet made, per target",
              ("target",), sorted(((t,), n) for t, n in undelivered.items())),
    ]
    if watch is not None:
        found += [
            Gauge("segmentd_backend_backlog",
                  "Changes the backend has not applied yet (unfanned or undelivered)",
                  ("backend",), [((watch.target,), await realization.backlog(conn, watch))]),
            Gauge("segmentd_backend_connected", "1 while connected to the backend",
                  ("backend",), [((watch.target,), 1 if watch.connected() else 0)]),
        ]
    return found
