"""What a backend compares against: every network and segment, what is still on its way
to a target, and the last drift report (one row, claimed by one process at a time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam, false, func, insert, literal, null, or_, select, union_all, update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.models import event_deliveries as d
from segmentd.db.models import ip_allocations as a
from segmentd.db.models import networks as n
from segmentd.db.models import outbox_events as e
from segmentd.db.models import ovn_chassis_watch as watch
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


def _unfanned(types):
    return select(e.c.ordering_key).where(e.c.fanned_out == false(), e.c.type.in_(types))


def _undelivered():
    return select(d.c.ordering_key).where(d.c.target == bindparam("target"),
                                          d.c.delivered_at.is_(None))


_TYPES = bindparam("types", expanding=True)
_KEYS = bindparam("keys", expanding=True)
PENDING_KEYS = _unfanned(_TYPES).where(e.c.ordering_key.in_(_KEYS)).union(
    _undelivered().where(d.c.ordering_key.in_(_KEYS)))
# Fan-out moves an event from "not fanned out" to "undelivered" in one transaction, so each
# read below is one statement: two statements could see an event in neither state.
BACKLOG = select(
    select(func.count()).select_from(_undelivered().subquery()).scalar_subquery()
    + select(func.count()).select_from(_unfanned(_TYPES).subquery()).scalar_subquery())
_EVENT = (e.c.seq, e.c.id.label("event_id"), e.c.type, e.c.resource_type, e.c.resource_id,
          e.c.time)
_HANDED = (
    select(*_EVENT, d.c.attempts, d.c.last_error, d.c.next_attempt_at)
    .join(d, d.c.event_seq == e.c.seq)
    .where(d.c.target == bindparam("target"), d.c.delivered_at.is_(None))
)
_WAITING = select(*_EVENT, literal(0).label("attempts"), null().label("last_error"),
                  null().label("next_attempt_at")
                  ).where(e.c.fanned_out == false(), e.c.type.in_(_TYPES))
_OLDEST = union_all(_HANDED, _WAITING).subquery()
OLDEST_PENDING = select(_OLDEST).order_by(_OLDEST.c.seq).limit(bindparam("limit"))


async def pending_keys(conn: AsyncConnection, target: str, types, keys) -> set[str]:
    """Which of these ordering keys have an event on its way to the target."""
    found = await conn.execute(PENDING_KEYS, {"target": target, "types": list(types),
                                              "keys": list(keys)})
    return {row[0] for row in found}


async def backlog(conn: AsyncConnection, target: str, types) -> int:
    """Events the target wants and has not applied: not yet fanned out, or undelivered."""
    params = {"target": target, "types": list(types)}
    return (await conn.execute(BACKLOG, params)).scalar_one()


async def oldest_pending(conn: AsyncConnection, target: str, types, limit: int):
    """The oldest events the target has not applied, whether handed to it yet or not."""
    found = await conn.execute(OLDEST_PENDING, {"target": target, "types": list(types),
                                                "limit": limit})
    # str(): a union's labels are str subclasses, which the JSON encoder refuses as keys.
    return [{str(k): v for k, v in r.items() if k != "seq"} for r in found.mappings()]


# -- the chassis watcher's lease (one process watches the Southbound DB at a time)

WATCH_ID = 1
TAKE_LEASE = (
    update(watch)
    .where(watch.c.id == WATCH_ID,
           or_(watch.c.holder == bindparam("me"), watch.c.lease_until.is_(None),
               watch.c.lease_until < bindparam("now")))
    .values(holder=bindparam("me"), lease_until=bindparam("until"))
)


async def take_lease(conn: AsyncConnection, me: str, now: datetime, until: datetime) -> bool:
    """Hold (or renew) the watcher lease until `until`; False while another holds it."""
    params = {"me": me, "now": now, "until": until}
    if (await conn.execute(TAKE_LEASE, params)).rowcount == 1:
        return True
    if (await conn.execute(select(watch.c.id).where(watch.c.id == WATCH_ID))).first():
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(insert(watch).values(id=WATCH_ID, holder=me, lease_until=until))
    except IntegrityError:  # another process created the row first, and so holds the lease
        return False
    return True


async def save_conflicts(conn: AsyncConnection, conflicts: str, at: datetime) -> None:
    await conn.execute(update(watch).where(watch.c.id == WATCH_ID)
                       .values(conflicts=conflicts, updated_at=at))


async def chassis_conflicts(conn: AsyncConnection) -> str | None:
    found = await conn.execute(select(watch.c.conflicts).where(watch.c.id == WATCH_ID))
    return found.scalar_one_or_none()
