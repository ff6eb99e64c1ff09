"""The drift check's side of the database: every network, segment, subnet and port as
events show them, what is still on its way to a target, and the last drift report (one
row, claimed by one process at a time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.models import event_deliveries as d
from segmentd.db.models import ip_allocations as a
from segmentd.db.models import networks as n
from segmentd.db.models import outbox_events as e
from segmentd.db.models import ovn_drift_checks as checks
from segmentd.db.models import ports as p
from segmentd.db.models import segments as s
from segmentd.db.models import subnets as sub
from segmentd.db.networks import COLUMNS as NETWORK_COLUMNS
from segmentd.db.ports import COLUMNS as PORT_COLUMNS
from segmentd.db.segments import COLUMNS as SEGMENT_COLUMNS
from segmentd.db.subnets import COLUMNS as SUBNET_COLUMNS

ALL_NETWORKS = select(*NETWORK_COLUMNS).order_by(n.c.id)
ALL_SUBNETS = select(*SUBNET_COLUMNS).order_by(sub.c.id)
ALL_PORTS = select(*PORT_COLUMNS).order_by(p.c.id)
ALL_ADDRESSES = select(a.c.port_id, a.c.subnet_id, a.c.ip_address)
ALL_SEGMENTS = select(*SEGMENT_COLUMNS).order_by(s.c.network_id, s.c.segment_index)
# A resource is on its way while an event about it is not fanned out yet, or fanned out
# to the target and not delivered.
IN_FLIGHT = (
    select(e.c.resource_id).where(e.c.fanned_out.is_(False))
    .union(
        select(e.c.resource_id).join(d, d.c.event_seq == e.c.seq)
        .where(d.c.target == bindparam("target"), d.c.delivered_at.is_(None))
    )
)


async def all_networks(conn: AsyncConnection):
    return (await conn.execute(ALL_NETWORKS)).mappings().all()


async def all_segments(conn: AsyncConnection):
    return (await conn.execute(ALL_SEGMENTS)).mappings().all()


async def all_subnets(conn: AsyncConnection):
    return (await conn.execute(ALL_SUBNETS)).mappings().all()


async def all_ports(conn: AsyncConnection):
    """Every port row, and every port's (subnet_id, ip_address) pairs."""
    ports = (await conn.execute(ALL_PORTS)).mappings().all()
    addresses: dict[str, list[tuple[str, str]]] = {}
    for port_id, subnet_id, ip in await conn.execute(ALL_ADDRESSES):
        addresses.setdefault(port_id, []).append((subnet_id, ip))
    return ports, addresses


async def in_flight(conn: AsyncConnection, target: str) -> set[str]:
    return {row[0] for row in await conn.execute(IN_FLIGHT, {"target": target})}


CHECK_ID = 1
CLAIM = (
    update(checks)
    .where(checks.c.id == CHECK_ID,
           or_(checks.c.claimed_at.is_(None), checks.c.claimed_at < bindparam("cutoff")))
    .values(claimed_at=bindparam("now"))
)


async def claim_check(conn: AsyncConnection, now: datetime, every: timedelta) -> bool:
    """True if this caller should run the periodic check now (no one did within `every`)."""
    if (await conn.execute(CLAIM, {"cutoff": now - every, "now": now})).rowcount == 1:
        return True
    exists = (await conn.execute(select(checks.c.id).where(checks.c.id == CHECK_ID))).first()
    if exists is not None:
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(insert(checks).values(id=CHECK_ID, claimed_at=now))
    except IntegrityError:  # another process created it first and so holds this round
        return False
    return True


async def save_report(conn: AsyncConnection, report: str, mode: str, at: datetime) -> None:
    values = {"report": report, "mode": mode, "checked_at": at}
    if (await conn.execute(update(checks).where(checks.c.id == CHECK_ID).values(values))).rowcount:
        return
    await conn.execute(insert(checks).values(id=CHECK_ID, claimed_at=at, **values))


async def latest_report(conn: AsyncConnection) -> dict[str, Any] | None:
    row = (await conn.execute(select(checks).where(checks.c.id == CHECK_ID))).mappings().first()
    return dict(row) if row is not None and row["report"] is not None else None
