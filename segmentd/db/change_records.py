"""What a committed change leaves behind: its outbox events and its audit row.

Both are appends in the change's own transaction. On PostgreSQL they go in one
statement — the audit insert rides along as a data-modifying CTE — which saves a round
trip on every write; elsewhere they are two inserts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import TextClause, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db import driver
from segmentd.db.models import audit_events, outbox_events

INSERT_EVENTS = insert(outbox_events)
INSERT_AUDIT = insert(audit_events)
AUDIT_COLUMNS = tuple(c.name for c in audit_events.c if c.name != "id")
EVENT_COLUMNS = tuple(c.name for c in outbox_events.c if c.name != "seq")
MANY = 20  # rows from which one change's records go by COPY where they can


@lru_cache(maxsize=64)
def _combined(n_events: int) -> TextClause:
    """The one-statement form for n events, as SQL text so SQLAlchemy caches its compilation.

    (A multi-row VALUES built with the expression API is recompiled on every execution.)
    Rows of one VALUES list take their sequence numbers in order, so event order holds.
    """
    audit_values = ", ".join(f":a_{c}" for c in AUDIT_COLUMNS)
    rows = ", ".join(
        "(" + ", ".join(f":e{i}_{c}" for c in EVENT_COLUMNS) + ")" for i in range(n_events)
    )
    return text(
        f"WITH audit_row AS (INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) "
        f"VALUES ({audit_values})) "
        f"INSERT INTO outbox_events ({', '.join(EVENT_COLUMNS)}) VALUES {rows}"
    )


async def write_change_records(
    conn: AsyncConnection, events: list[dict[str, Any]], audits: list[dict[str, Any]]
) -> None:
    if events and len(audits) == 1 and conn.dialect.name == "postgresql":
        params = {f"a_{c}": audits[0][c] for c in AUDIT_COLUMNS}
        for i, event in enumerate(events):
            params.update({f"e{i}_{c}": event[c] for c in EVENT_COLUMNS})
        await driver.fetch(conn, _combined(len(events)), params)
        return
    if len(events) + len(audits) > MANY:
        # Many rows (a batch of hosts): COPY on PostgreSQL, in order, so seq order holds.
        await driver.insert_many(conn, outbox_events, events)
        await driver.insert_many(conn, audit_events, audits)
        return
    if events:
        await conn.execute(INSERT_EVENTS, events)
    if audits:
        await conn.execute(INSERT_AUDIT, audits)
