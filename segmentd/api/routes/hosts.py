"""/v2.0/host-reports, /v2.0/hosts and the segment-host mapping queries."""

from __future__ import annotations

from fastapi import APIRouter, Request

from segmentd.api.deps import (
    ContextDep,
    body_schema,
    json_response,
    known_id,
    parse_body,
)
from segmentd.api.render import list_response
from segmentd.api.runtime import runtime
from segmentd.errors import SegmentNotFound
from segmentd.schemas.hosts import HostReport
from segmentd.services import hosts, mappings

router = APIRouter(tags=["hosts"])
HOST_FIELDS = ("host", "physnets", "tunnel_types", "alive", "chassis", "segment_count",
               "reported_at")
SEGMENT_HOST_FIELDS = ("host", "alive", "reported_at")
SEGMENT_FIELDS = (
    "id", "network_id", "name", "description", "physical_network", "network_type",
    "segmentation_id", "created_at", "updated_at", "revision_number",
)


@router.post(
    "/v2.0/host-reports", status_code=201, openapi_extra=body_schema("report", HostReport)
)
async def create_host_report(request: Request, ctx: ContextDep):
    """An agent's state and heartbeat; answers with the agent as recorded."""
    rt = runtime(request)
    report = await parse_body(request, "report", HostReport)
    agent = await rt.write(ctx, request, lambda uow: hosts.apply_report(
        ctx, uow, rt.clock, report, rt.limits.take_host_change))
    return json_response({"agent": agent}, 201)


@router.get("/v2.0/hosts")
async def list_hosts(request: Request, ctx: ContextDep):
    rt = runtime(request)
    return await list_response(
        request, ctx, "hosts", HOST_FIELDS, mappings.list_hosts, rt.clock, key="host"
    )


@router.get("/v2.0/hosts/{host}/segments")
async def list_host_segments(host: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    return await list_response(
        request, ctx, "segments", SEGMENT_FIELDS, mappings.segments_of_host, host, rt.clock
    )


@router.get("/v2.0/segments/{segment_id}/hosts")
async def list_segment_hosts(segment_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(segment_id, SegmentNotFound, "segment_id")
    return await list_response(
        request, ctx, "hosts", SEGMENT_HOST_FIELDS, mappings.hosts_of_segment, segment_id,
        rt.clock, key="host",
    )
