"""A unit of work: one connection in one transaction, and the events it will publish."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentd.context import RequestContext
from segmentd.db.engine import write_connection
from segmentd.events.bus import Event, EventBus


@dataclass(slots=True)
class UnitOfWork:
    conn: AsyncConnection
    events: list[Event] = field(default_factory=list)

    def record(
        self, ctx: RequestContext, type_: str, resource: dict[str, Any], project_id: str | None
    ) -> None:
        """Queue an event; it is published only if the transaction commits."""
        self.events.append(
            Event(
                type=type_,
                resource_id=resource["id"],
                resource=resource,
                project_id=project_id,
                request_id=ctx.request_id,
            )
        )


BeforeCommit = Callable[[UnitOfWork], Awaitable[None]]


@asynccontextmanager
async def unit_of_work(
    engine: AsyncEngine, bus: EventBus, before_commit: BeforeCommit | None = None
) -> AsyncIterator[UnitOfWork]:
    """Commit on success and then publish; roll back and drop the events on error.

    `before_commit` writes in the same transaction once the work succeeded (the audit row).
    """
    async with write_connection(engine) as conn:
        uow = UnitOfWork(conn)
        yield uow
        if before_commit is not None:
            await before_commit(uow)
    await bus.publish(uow.events)
