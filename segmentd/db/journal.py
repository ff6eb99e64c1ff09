"""What a committed change leaves behind: its outbox events and its audit row.

Both are appends in the change's own transaction. On PostgreSQL they go in one
statement (the audit insert rides along as a data-modifying CTE), which saves a round
trip on every write; elsewhere they are two inserts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.models import audit_events, outbox_events

INSERT_EVENTS = insert(outbox_events)
INSERT_AUDIT = insert(audit_events)


async def write_journal(
    conn: AsyncConnection, events: list[dict[str, Any]], audit: dict[str, Any] | None
) -> None:
    if events and audit is not None and conn.dialect.name == "postgresql":
        audit_cte = insert(audit_events).values(audit).cte("audit_row")
        await conn.execute(insert(outbox_events).values(events).add_cte(audit_cte))
        return
    if events:
        await conn.execute(INSERT_EVENTS, events)
    if audit is not None:
        await conn.execute(INSERT_AUDIT, audit)
