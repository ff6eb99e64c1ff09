"""A unit of work: one connection in one transaction, and the events it commits with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentd.context import RequestContext
from segmentd.db.engine import write_connection
from segmentd.events import outbox
from segmentd.events.bus import Event
from segmentd.services.common import utcnow


@dataclass(slots=True)
class UnitOfWork:
    conn: AsyncConnection
    events: list[Event] = field(default_factory=list)
    quiet: bool = False  # the work changed nothing worth an audit row (a plain heartbeat)
    wake: bool = False  # deliveries became due without an event (a webhook enabled again)
    audit: AuditRow | None = None  # the audit row(s) of the work, asked for once it succeeded
    journaled: bool = False  # the work wrote its events and audit row itself (oneshot create)

    def record(
        self,
        ctx: RequestContext | None,
        type_: str,
        resource: dict[str, Any],
        project_id: str | None,
        resource_id: str | None = None,
    ) -> None:
        """Queue an event; its outbox row is written just before the transaction commits."""
        if self.journaled:  # the events were written with the work; more would be lost
            raise RuntimeError("work that journaled its own events recorded another")
        self.events.append(
            Event(
                type=type_,
                resource_id=resource_id or resource["id"],
                resource=resource,
                project_id=project_id,
                request_id=ctx.request_id if ctx else "",
            )
        )


# Called once the work succeeded: the audit row (or rows, for work on many resources) to
# commit with it, or None for none.
AuditRow = Callable[[UnitOfWork], dict[str, Any] | list[dict[str, Any]] | None]


@asynccontextmanager
async def unit_of_work(
    engine: AsyncEngine,
    audit: AuditRow | None = None,
    after_commit: Callable[[], None] | None = None,
) -> AsyncIterator[UnitOfWork]:
    """Commit the work with its outbox rows and audit row; roll all of it back on error.

    `after_commit` runs only if the commit succeeded (it wakes the dispatcher).
    """
    async with write_connection(engine) as conn:
        uow = UnitOfWork(conn, audit=audit)
        yield uow
        if not uow.journaled:
            await outbox.write(conn, uow.events, utcnow(), audit(uow) if audit else None)
    if (uow.events or uow.wake) and after_commit is not None:
        after_commit()
