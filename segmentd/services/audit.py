"""The audit trail: every mutating request, allowed or refused, and who made it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.auth.policy import check
from segmentd.context import RequestContext
from segmentd.db import audit as rows
from segmentd.query import ListQuery, Page
from segmentd.services.clock import utcnow
from segmentd.services.shapes import timestamp


def _safe(value: str | None, limit: int) -> str | None:
    """Audit text is printable and bounded, so no input can make its row unstorable."""
    if value is None:
        return None
    return value[:limit] if value.isprintable() else "<invalid>"


def outcome_of(status: int) -> str:
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    return "rejected" if status < 500 else "error"


def audit_row(
    ctx: RequestContext | None,
    *,
    request_id: str,
    action: str,
    resource_type: str,
    resource_id: str | None,
    status: int,
) -> dict[str, Any]:
    """One audit row; the token's id is kept (a Keystone token's audit id), never the token."""
    return {
        "time": utcnow(),
        "request_id": request_id,
        "token_id": _safe(ctx.token_id, 36) if ctx else None,  # its column's width
        "user_id": _safe(ctx.user_id, 255) if ctx else None,
        "user_name": _safe(ctx.user_name, 255) if ctx else None,
        "project_id": _safe(ctx.project_id, 255) if ctx else None,
        "roles": _safe(",".join(sorted(ctx.roles)), 255) if ctx else "",
        "action": _safe(action, 64),
        "resource_type": _safe(resource_type, 32),
        "resource_id": _safe(resource_id, 64),
        "outcome": outcome_of(status),
        "status": status,
    }


async def record(conn: AsyncConnection, ctx: RequestContext | None, **fields: Any) -> None:
    """Append one audit row in a transaction of its own (refused requests)."""
    await rows.insert_audit_event(conn, audit_row(ctx, **fields))


def audit_view(row) -> dict[str, Any]:
    view = dict(row)
    view["time"] = timestamp(row["time"])
    view["roles"] = [r for r in row["roles"].split(",") if r]
    return view


async def list_audit_events(ctx: RequestContext, conn: AsyncConnection, q: ListQuery) -> Page:
    """Admins read the trail; others see an empty list, as with other hidden collections."""
    if not check(ctx, "get_audit_event"):
        return Page([])
    found = await rows.list_audit_events(conn, q)
    return Page([audit_view(r) for r in found])
