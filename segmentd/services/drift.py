"""The drift check's side of the database: the desired state a backend is compared
against, read in one snapshot, and the last report (claimed by one process per round)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.backends.base import DesiredState
from segmentd.db import drift as rows
from segmentd.services.shapes import network_view, port_view, segment_view, subnet_view


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
