"""/v2.0/audit-events: the audit trail, for admins."""

from __future__ import annotations

from fastapi import APIRouter, Request

from segmentd.api.deps import ContextDep
from segmentd.api.render import list_response
from segmentd.services import audit

router = APIRouter(tags=["audit"])
FIELDS = (
    "id", "time", "request_id", "token_id", "user_id", "user_name", "project_id", "roles", "action",
    "resource_type", "resource_id", "outcome", "status",
)


@router.get("/v2.0/audit-events")
async def list_audit_events(request: Request, ctx: ContextDep):
    return await list_response(request, ctx, "audit_events", FIELDS, audit.list_audit_events)
