"""What is still on its way to a backend's target: the events not yet fanned out or not
yet delivered, as a count, a list, and per network (status BUILD)."""

from __future__ import annotations

from sqlalchemy import bindparam, false, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.models import event_deliveries as d
from segmentd.db.models import outbox_events as e


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
