"""A unit of work: one connection in one transaction, and the events it commits with."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmentd.context import RequestContext
from segmentd.db.engine import is_transient_conflict, write_connection
from segmentd.errors import DatabaseContention
from segmentd.events import outbox
from segmentd.events.bus import Event
from segmentd.services.clock import utcnow

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# A transaction the database aborted as a deadlock victim runs again from its start, at
# most this many times in all, after a random pause that doubles each time (10 ms, 20 ms …).
WRITE_ATTEMPTS = 5
RETRY_BASE_SECONDS = 0.01


@dataclass(slots=True)
class UnitOfWork:
    conn: AsyncConnection
    events: list[Event] = field(default_factory=list)
    quiet: bool = False  # the work changed nothing worth an audit row (a plain heartbeat)
    wake: bool = False  # deliveries became due without an event (a webhook enabled again)
    audit: AuditRow | None = None  # the audit row(s) of the work, asked for once it succeeded
    records_written: bool = False  # the work wrote its events and audit row itself (network_create)
    bulk: bool = False  # the work creates several resources of the request's type (create_all)
    # Statements the work asks to run last, just before its commit (and only if it gets there).
    before_commit: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    def record(
        self,
        ctx: RequestContext | None,
        type_: str,
        resource: dict[str, Any],
        project_id: str | None,
        resource_id: str | None = None,
    ) -> None:
        """Queue an event; its outbox row is written just before the transaction commits."""
        if self.records_written:  # the events were written with the work; more would be lost
            raise RuntimeError("work that wrote its own events recorded another")
        self.events.append(
            Event(
                type=type_,
                resource_id=resource_id or resource["id"],
                resource=resource,
                project_id=project_id,
                request_id=ctx.request_id if ctx else "",
            )
        )


async def create_all(
    uow: UnitOfWork,
    items: list[dict[str, Any]],
    create_one: Callable[[UnitOfWork, dict[str, Any]], Awaitable[T]],
) -> list[T]:
    """Neutron's bulk create: each item in order, in this one transaction, with the events
    of each. The first item that fails raises, the transaction rolls back, and none of the
    items stays."""
    uow.bulk = True
    return [await create_one(uow, item) for item in items]


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
        for last in uow.before_commit:
            await last()
        if not uow.records_written:
            await outbox.write(conn, uow.events, utcnow(), audit(uow) if audit else None)
    if (uow.events or uow.wake) and after_commit is not None:
        after_commit()


async def transact(
    engine: AsyncEngine,
    work: Callable[[UnitOfWork], Awaitable[T]],
    audit: AuditRow | None = None,
    after_commit: Callable[[], None] | None = None,
) -> T:
    """Run `work` in a unit of work and commit it; when the database aborts the transaction
    as a deadlock victim, run it again from the start (a fresh unit of work: nothing of the
    aborted attempt is kept). 503 DatabaseContention once WRITE_ATTEMPTS are spent.

    `work` must read its inputs without changing them, as every attempt starts from them.
    """
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            async with unit_of_work(engine, audit=audit, after_commit=after_commit) as uow:
                result = await work(uow)
            return result
        except DBAPIError as exc:
            if not is_transient_conflict(exc):
                raise
            if attempt == WRITE_ATTEMPTS:
                LOG.warning("transaction aborted by the database %d times in a row (%s); "
                            "giving up", attempt, type(exc.orig).__name__)
                raise DatabaseContention(attempts=attempt) from exc
            pause = random.uniform(0.5, 1.0) * RETRY_BASE_SECONDS * 2 ** (attempt - 1)
            LOG.info("transaction aborted by the database (%s), attempt %d of %d; running it "
                     "again in %.0f ms", type(exc.orig).__name__, attempt, WRITE_ATTEMPTS,
                     pause * 1000)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")
