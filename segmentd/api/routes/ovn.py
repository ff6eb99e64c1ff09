"""/v2.0/ovn: the last comparison of the database with OVN's Northbound DB, and the
backend's state (connected, and the events it has not applied yet)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request

from segmentd.api.deps import ContextDep, json_response
from segmentd.api.runtime import runtime
from segmentd.auth.policy import enforce
from segmentd.errors import OvnBackendNotConfigured, OvnDriftReportNotFound
from segmentd.services import chassis, drift, realization

router = APIRouter(tags=["ovn"])


@router.get("/v2.0/ovn/drift")
async def show_drift(request: Request, ctx: ContextDep):
    enforce(ctx, "get_ovn_drift")
    async with runtime(request).read() as conn:
        found = await drift.latest_report(conn)
        conflicts = await chassis.chassis_conflicts(conn)
    if found is None:
        raise OvnDriftReportNotFound()
    return json_response({"drift": {**orjson.loads(found["report"]),
                                    "chassis_conflicts": conflicts}})


PENDING_SHOWN = 100


@router.get("/v2.0/ovn/status")
async def show_status(request: Request, ctx: ContextDep):
    enforce(ctx, "get_ovn_status")
    rt = runtime(request)
    if rt.realization is None:
        raise OvnBackendNotConfigured()
    async with rt.read() as conn:
        status = await realization.backend_status(conn, rt.realization, PENDING_SHOWN)
    return json_response({"ovn": status})
