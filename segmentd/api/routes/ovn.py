"""/v2.0/ovn/drift: the last comparison of the database with OVN's Northbound DB."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request

from segmentd.api.deps import ContextDep, json_response
from segmentd.api.runtime import runtime
from segmentd.auth.policy import enforce
from segmentd.errors import OvnDriftReportNotFound
from segmentd.services import realization

router = APIRouter(tags=["ovn"])


@router.get("/v2.0/ovn/drift")
async def show_drift(request: Request, ctx: ContextDep):
    enforce(ctx, "get_ovn_drift")
    async with runtime(request).read() as conn:
        found = await realization.latest_report(conn)
    if found is None:
        raise OvnDriftReportNotFound()
    return json_response({"drift": orjson.loads(found["report"])})
