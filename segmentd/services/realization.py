"""The database's side of a drift check: every network and segment as events show them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db import realization as rows
from segmentd.services.views import network_view, segment_view


@dataclass
class DesiredState:
    networks: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    in_flight: set[str]  # resource ids whose latest change has not reached the target yet


async def desired_state(conn: AsyncConnection, target: str) -> DesiredState:
    """Read in one snapshot where the database allows it (the caller's transaction)."""
    in_flight = await rows.in_flight(conn, target)
    segment_rows = await rows.all_segments(conn)
    by_network: dict[str, list] = defaultdict(list)
    for row in segment_rows:
        by_network[row["network_id"]].append(row)
    networks = [network_view(row, by_network.get(row["id"], []), show_provider=True)
                for row in await rows.all_networks(conn)]
    return DesiredState(networks, [segment_view(r) for r in segment_rows], in_flight)


async def claim_check(conn: AsyncConnection, now, every) -> bool:
    return await rows.claim_check(conn, now, every)


async def save_report(conn: AsyncConnection, report: str, mode: str, at) -> None:
    await rows.save_report(conn, report, mode, at)


async def latest_report(conn: AsyncConnection) -> dict[str, Any] | None:
    return await rows.latest_report(conn)
