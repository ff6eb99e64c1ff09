"""Webhook subscriptions (admin-only): where events go, and how their delivery is going."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.auth.policy import enforce
from segmentd.context import RequestContext
from segmentd.db import outbox as outbox_rows
from segmentd.db import subscriptions as rows
from segmentd.errors import EventSubscriptionNotFound, InvalidInput
from segmentd.events.addresses import AddressPolicy, AddressRefused, InvalidUrl
from segmentd.query import ListQuery, Page
from segmentd.services.clock import utcnow
from segmentd.services.shapes import timestamp
from segmentd.services.uow import UnitOfWork


def target_name(sub_id: str) -> str:
    return c.WEBHOOK_TARGET_PREFIX + sub_id


def subscription_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """Everything but the secret, which is write-only."""
    return {
        "id": row["id"],
        "name": row["name"],
        "url": row["url"],
        "event_types": orjson.loads(row["event_types"]),
        "enabled": row["enabled"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "revision_number": row["revision_number"],
    }


def _check_url(policy: AddressPolicy, url: str) -> None:
    try:
        policy.check_url(url)
    except (InvalidUrl, AddressRefused) as exc:
        raise InvalidInput(error_message=f"url: {exc}") from None


async def create_subscription(
    ctx: RequestContext, uow: UnitOfWork, policy: AddressPolicy, data: dict[str, Any]
) -> dict[str, Any]:
    enforce(ctx, "create_event_subscription")
    _check_url(policy, data["url"])
    now = utcnow()
    row = {
        "id": str(uuid.uuid4()),
        "name": data.get("name") or "",
        "url": data["url"],
        "secret": data["secret"],
        "event_types": orjson.dumps(sorted(data["event_types"])).decode(),
        "enabled": data.get("enabled", True),
        "created_at": now,
        "updated_at": now,
        "revision_number": 0,
    }
    await rows.insert_subscription(uow.conn, row)
    return subscription_view(row)


async def _existing(conn: AsyncConnection, sub_id: str, lock: bool = False):
    row = await (rows.get_subscription_for_update if lock else rows.get_subscription)(conn, sub_id)
    if row is None:
        raise EventSubscriptionNotFound(id=sub_id)
    return row


async def get_subscription(ctx: RequestContext, conn: AsyncConnection, sub_id: str):
    enforce(ctx, "get_event_subscription")
    return subscription_view(await _existing(conn, sub_id))


async def list_subscriptions(ctx: RequestContext, conn: AsyncConnection, q: ListQuery) -> Page:
    enforce(ctx, "get_event_subscription")
    found = await rows.list_subscriptions(conn, q)
    return Page([subscription_view(r) for r in found])


async def update_subscription(
    ctx: RequestContext, uow: UnitOfWork, policy: AddressPolicy, sub_id: str, data: dict
) -> dict[str, Any]:
    enforce(ctx, "update_event_subscription")
    row = await _existing(uow.conn, sub_id, lock=True)
    if "url" in data:
        _check_url(policy, data["url"])
    values = {k: data[k] for k in ("name", "url", "secret", "enabled") if k in data}
    if values.get("name", "") is None:
        values["name"] = ""
    if "event_types" in data:
        values["event_types"] = orjson.dumps(sorted(data["event_types"])).decode()
    values["updated_at"] = utcnow()
    await rows.update_subscription(uow.conn, sub_id, values)
    if values.get("enabled") and not row["enabled"]:
        # What it was owed waited out the longest backoff while disabled: send it now.
        await outbox_rows.resume_target(uow.conn, target_name(sub_id), values["updated_at"])
        uow.wake = True  # the dispatcher delivers them right after the commit
    return subscription_view({**row, **values, "revision_number": row["revision_number"] + 1})


async def delete_subscription(ctx: RequestContext, uow: UnitOfWork, sub_id: str) -> None:
    """Delete it and forget what it had not received yet."""
    enforce(ctx, "delete_event_subscription")
    await _existing(uow.conn, sub_id, lock=True)
    await outbox_rows.drop_pending(uow.conn, target_name(sub_id))
    await rows.delete_subscription(uow.conn, sub_id)


def delivery_view(row: Mapping[str, Any]) -> dict[str, Any]:
    delivered = row["delivered_at"]
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "target": row["target"],
        "status": "delivered" if delivered else ("retrying" if row["attempts"] else "pending"),
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "next_attempt_at": None if delivered else timestamp(row["next_attempt_at"]),
        "delivered_at": timestamp(delivered) if delivered else None,
    }


async def list_deliveries(
    ctx: RequestContext, conn: AsyncConnection, q: ListQuery, sub_id: str
) -> Page:
    """What happened to each event sent to one subscription: attempts, last error, next try."""
    enforce(ctx, "get_event_subscription")
    await _existing(conn, sub_id)
    found = await outbox_rows.list_deliveries(conn, target_name(sub_id), q)
    return Page([delivery_view(r) for r in found])
