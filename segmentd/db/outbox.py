"""Outbox rows and their deliveries: written with a change, fanned out, claimed, settled.

Order per target and ordering key holds across processes because fan-out and claiming
happen under one lock (the `dispatch_lock` row, taken with SKIP LOCKED so a second
dispatcher moves on instead of waiting) and a claimed delivery is leased: while it is
leased or backing off, later deliveries with its key stay where they are.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, false, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.listing import Attribute, fetch_page
from segmentd.db.models import dispatch_lock as lock
from segmentd.db.models import event_deliveries as d
from segmentd.db.models import outbox_events as e
from segmentd.query import ListQuery

INSERT_DELIVERIES = insert(d)
LOCK = select(lock.c.id).where(lock.c.id == 1).with_for_update(skip_locked=True)


def _not_before(conn: AsyncConnection, at: datetime) -> datetime:
    """`at` as a DATETIME column keeps it, rounded up rather than down.

    MariaDB's plain DATETIME drops the fraction of a second, so a 0.4 s backoff or lease
    would be stored as already over.
    """
    if conn.dialect.name == "mysql" and at.microsecond:
        return at.replace(microsecond=0) + timedelta(seconds=1)
    return at


async def take_dispatch_lock(conn: AsyncConnection) -> bool:
    """True if this transaction now holds the dispatch lock, False if another one does.

    SQLite has no row locks: its write transaction (BEGIN IMMEDIATE) already excludes
    every other writer, so holding the transaction is holding the lock.
    """
    if conn.dialect.name == "sqlite":
        return True
    return (await conn.execute(LOCK)).first() is not None


UNFANNED = (
    select(e.c.seq, e.c.type, e.c.ordering_key)
    .where(e.c.fanned_out == false())  # "IS FALSE" would not use the index
    .order_by(e.c.seq)
    .limit(bindparam("limit"))
)
MARK_FANNED = update(e).where(e.c.seq.in_(bindparam("seqs", expanding=True))).values(fanned_out=True)


async def unfanned_events(conn: AsyncConnection, limit: int):
    return (await conn.execute(UNFANNED, {"limit": limit})).mappings().all()


async def add_deliveries(conn: AsyncConnection, rows: list[dict[str, Any]], seqs: list[int]):
    """Queue deliveries for events and mark those events fanned out, in the caller's transaction."""
    if rows:
        await conn.execute(INSERT_DELIVERIES, rows)
    if seqs:
        await conn.execute(MARK_FANNED, {"seqs": seqs})


_earlier = d.alias("earlier")
# A delivery is due when its time has come and no earlier one with its key is waiting.
_DUE_WHERE = (
    d.c.delivered_at.is_(None),
    d.c.next_attempt_at <= bindparam("now"),
    ~exists().where(
        _earlier.c.target == d.c.target,
        _earlier.c.ordering_key == d.c.ordering_key,
        _earlier.c.event_seq < d.c.event_seq,
        _earlier.c.delivered_at.is_(None),
        _earlier.c.next_attempt_at > bindparam("now"),
    ),
)
DUE = (
    select(d.c.id, d.c.event_seq, d.c.target, d.c.ordering_key, d.c.attempts,
           e.c.id.label("event_id"), e.c.type, e.c.body)
    .join(e, e.c.seq == d.c.event_seq)
    .where(*_DUE_WHERE)
    .order_by(d.c.event_seq, d.c.id)
    .limit(bindparam("limit"))
)
NEXT_WORK = select(
    # The oldest unfanned event rather than EXISTS: with statistics from a busy moment
    # PostgreSQL would answer EXISTS with a sequential scan, which reads every retained
    # event when none is waiting; ORDER BY seq LIMIT 1 is a probe of the unfanned index.
    UNFANNED.with_only_columns(e.c.seq).limit(1).scalar_subquery().is_not(None).label("unfanned"),
    exists().where(*_DUE_WHERE).label("due"),
    select(func.min(d.c.next_attempt_at))
    .where(d.c.delivered_at.is_(None), d.c.next_attempt_at > bindparam("now"))
    .scalar_subquery().label("next_attempt"),
)


async def next_work(conn: AsyncConnection, now: datetime) -> tuple[bool, bool, datetime | None]:
    """(an event waits to be fanned out, a delivery is due, when the next delivery that
    is not due yet becomes due): index probes, the whole of an idle dispatcher's look."""
    row = (await conn.execute(NEXT_WORK, {"now": now})).first()
    return bool(row[0]), bool(row[1]), row[2]


LEASE = (
    update(d)
    .where(d.c.id.in_(bindparam("ids", expanding=True)))
    .values(next_attempt_at=bindparam("until"))
)


async def claim_due(conn: AsyncConnection, now: datetime, until: datetime, limit: int):
    """Due deliveries whose earlier ones are not waiting, leased to the caller until `until`.

    Call under the dispatch lock. A due delivery sorts after every due earlier one with its
    key, so a batch never holds a later event without the earlier ones.
    """
    rows = (await conn.execute(DUE, {"now": now, "limit": limit})).mappings().all()
    if rows:
        until = _not_before(conn, until)
        await conn.execute(LEASE, {"ids": [r["id"] for r in rows], "until": until})
    return rows


MARK_DELIVERED = (
    update(d)
    .where(d.c.id.in_(bindparam("ids", expanding=True)))
    .values(delivered_at=bindparam("at"), attempts=d.c.attempts + 1, last_error=None)
)
MARK_FAILED = (
    update(d)
    .where(d.c.id == bindparam("delivery_id"))
    .values(attempts=d.c.attempts + 1, next_attempt_at=bindparam("retry_at"),
            last_error=bindparam("error"))
)
RESCHEDULE = (
    update(d)
    .where(d.c.id.in_(bindparam("ids", expanding=True)))
    .values(next_attempt_at=bindparam("at"))
)


async def mark_delivered(conn: AsyncConnection, ids: list[int], at: datetime) -> None:
    if ids:
        await conn.execute(MARK_DELIVERED, {"ids": ids, "at": at})


async def mark_failed(conn: AsyncConnection, delivery_id: int, retry_at: datetime, error: str):
    retry_at = _not_before(conn, retry_at)
    await conn.execute(
        MARK_FAILED, {"delivery_id": delivery_id, "retry_at": retry_at, "error": error[:255]}
    )


async def reschedule(conn: AsyncConnection, ids: list[int], at: datetime) -> None:
    """Give leased deliveries back (after an earlier one with their key failed)."""
    if ids:
        await conn.execute(RESCHEDULE, {"ids": ids, "at": at})


PENDING_OF_EVENT = exists().where(d.c.event_seq == e.c.seq, d.c.delivered_at.is_(None))
PRUNE = delete(e).where(
    e.c.fanned_out.is_(True), e.c.time < bindparam("before"), ~PENDING_OF_EVENT
)


async def prune(conn: AsyncConnection, before: datetime) -> int:
    """Delete fully delivered events older than `before` (their deliveries go with them)."""
    return (await conn.execute(PRUNE, {"before": before})).rowcount


DELETE_TARGET = delete(d).where(d.c.target == bindparam("target"), d.c.delivered_at.is_(None))


async def drop_pending(conn: AsyncConnection, target: str) -> int:
    """Forget undelivered deliveries of a target that no longer exists (a deleted webhook)."""
    return (await conn.execute(DELETE_TARGET, {"target": target})).rowcount


DELIVERY_ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(d.c.id),
    "event_id": Attribute(e.c.id, sort=False),
    "event_type": Attribute(e.c.type),
    "attempts": Attribute(d.c.attempts, filter=False),
}
DELIVERIES = select(
    d.c.id, e.c.id.label("event_id"), e.c.type.label("event_type"), d.c.target,
    d.c.attempts, d.c.next_attempt_at, d.c.last_error, d.c.delivered_at,
).join(e, e.c.seq == d.c.event_seq)


async def list_deliveries(conn: AsyncConnection, target: str, q: ListQuery):
    stmt = DELIVERIES.where(d.c.target == target)
    return await fetch_page(conn, stmt, DELIVERY_ATTRIBUTES, d.c.id, q)


EVENTS_AFTER = select(e.c.seq, e.c.body).where(e.c.seq > bindparam("after")).order_by(e.c.seq)


async def events_after(conn: AsyncConnection, after: int = 0):
    """Every event row after a sequence number, oldest first (tests and operators)."""
    return (await conn.execute(EVENTS_AFTER, {"after": after})).all()



RESUME_TARGET = (
    update(d)
    # not "target": an UPDATE keeps its columns' names for the SET clause's parameters
    .where(d.c.target == bindparam("of_target"), d.c.delivered_at.is_(None))
    .values(next_attempt_at=bindparam("at"))
)


async def resume_target(conn: AsyncConnection, target: str, at: datetime) -> int:
    """Make a target's waiting deliveries due at `at` (a webhook enabled again)."""
    return (await conn.execute(RESUME_TARGET, {"of_target": target, "at": at})).rowcount


UNDELIVERED_BY_TARGET = (
    select(d.c.target, func.count()).where(d.c.delivered_at.is_(None)).group_by(d.c.target)
)
UNFANNED_COUNT = select(func.count()).select_from(e).where(e.c.fanned_out == false())


async def undelivered_by_target(conn: AsyncConnection) -> dict[str, int]:
    return {target: n for target, n in await conn.execute(UNDELIVERED_BY_TARGET)}


async def unfanned_count(conn: AsyncConnection) -> int:
    return (await conn.execute(UNFANNED_COUNT)).scalar_one()
