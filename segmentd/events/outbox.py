"""Writing events into the outbox, in the transaction of the change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.change_records import write_change_records
from segmentd.events import catalog
from segmentd.events.bus import Event


def ordering_key(event: Event) -> str:
    """The unit events are delivered in order within, for each target.

    A segment, subnet or port orders with its network (a port's switch and its DHCP
    options exist before it, in OVN for one) and an agent with its host, so a subscriber never
    sees a segment before its network exists, or an agent after its host's reach changed.
    """
    resource = event.resource
    if event.resource_type in ("segment", "subnet", "port"):
        return f"network:{resource['network_id']}"
    if event.resource_type == "agent":
        return f"host:{resource['host']}"
    return f"{event.resource_type}:{event.resource_id}"


def outbox_row(event: Event, now: datetime) -> dict[str, Any]:
    """The row for one event; raises catalog.InvalidEvent if it does not match its schema."""
    document = event.document()
    catalog.validate(document)
    return {
        "id": event.id,
        "type": event.type,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "project_id": event.project_id,
        "ordering_key": ordering_key(event),
        "time": now,
        "body": orjson.dumps(document).decode(),
        "fanned_out": False,
    }


async def write(
    conn: AsyncConnection, events: list[Event], now: datetime,
    audit: dict[str, Any] | list[dict[str, Any]] | None = None,
) -> None:
    """Validate every event first, then write them all (with the change's audit rows, if any).

    A bad event raises before anything is written, and the caller's transaction rolls back.
    """
    rows = [outbox_row(ev, now) for ev in events]
    audits = [] if audit is None else [audit] if isinstance(audit, dict) else audit
    if rows or audits:
        await write_change_records(conn, rows, audits)
