"""Webhook subscription rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.listing import Attribute, fetch_page
from segmentd.db.models import event_subscriptions as t
from segmentd.query import ListQuery

COLUMNS = tuple(t.c)
ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute(t.c.id),
    "name": Attribute(t.c.name),
    "url": Attribute(t.c.url, sort=False),
    "enabled": Attribute(t.c.enabled),
}
BY_ID = select(*COLUMNS).where(t.c.id == bindparam("sub_id"))
TARGETS = select(t.c.id, t.c.url, t.c.secret, t.c.event_types, t.c.enabled)
INSERT = insert(t)
DELETE = delete(t).where(t.c.id == bindparam("sub_id"))


async def insert_subscription(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(INSERT, row)


async def get_subscription(conn: AsyncConnection, sub_id: str):
    return (await conn.execute(BY_ID, {"sub_id": sub_id})).mappings().first()


async def get_subscription_for_update(conn: AsyncConnection, sub_id: str):
    stmt = BY_ID if conn.dialect.name == "sqlite" else BY_ID.with_for_update()
    return (await conn.execute(stmt, {"sub_id": sub_id})).mappings().first()


async def target_subscriptions(conn: AsyncConnection):
    """Every subscription, enabled or not: a disabled one still holds its pending deliveries."""
    return (await conn.execute(TARGETS)).mappings().all()


async def list_subscriptions(conn: AsyncConnection, q: ListQuery):
    return await fetch_page(conn, select(*COLUMNS), ATTRIBUTES, t.c.id, q)


async def update_subscription(conn: AsyncConnection, sub_id: str, values: dict[str, Any]) -> None:
    values = {**values, "revision_number": t.c.revision_number + 1}
    await conn.execute(update(t).where(t.c.id == sub_id).values(values))


async def delete_subscription(conn: AsyncConnection, sub_id: str) -> bool:
    return (await conn.execute(DELETE, {"sub_id": sub_id})).rowcount == 1
