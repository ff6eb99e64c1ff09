"""Audit rows: appended, listed, never changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.listing import Attribute, fetch_page
from segmentd.db.models import audit_events as t
from segmentd.query import ListQuery

INSERT = insert(t)
ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(t.c.id),
    "time": Attribute(t.c.time, filter=False),
    "request_id": Attribute(t.c.request_id, sort=False),
    "token_id": Attribute(t.c.token_id, nullable=True, sort=False),
    "user_id": Attribute(t.c.user_id, nullable=True, sort=False),
    "user_name": Attribute(t.c.user_name, nullable=True, sort=False),
    "project_id": Attribute(t.c.project_id, nullable=True),
    "action": Attribute(t.c.action),
    "resource_type": Attribute(t.c.resource_type),
    "resource_id": Attribute(t.c.resource_id, nullable=True),
    "outcome": Attribute(t.c.outcome),
    "status": Attribute(t.c.status),
}


async def insert_audit_event(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(INSERT, row)


async def list_audit_events(conn: AsyncConnection, q: ListQuery):
    return await fetch_page(conn, select(t), ATTRIBUTES, t.c.id, q)
