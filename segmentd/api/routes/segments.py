"""/v2.0/segments"""

from __future__ import annotations

from fastapi import APIRouter, Request

from segmentd.api.bulk import create_body_schema, create_response
from segmentd.api.deps import ContextDep, body_schema
from segmentd.api.render import (
    delete_response,
    list_response,
    show_response,
    update_response,
)
from segmentd.api.runtime import runtime
from segmentd.errors import SegmentNotFound
from segmentd.schemas.networks import SEGMENT_READ_ONLY, SegmentCreate, SegmentUpdate
from segmentd.services import segments

router = APIRouter(tags=["segments"])
NOT_FOUND = (SegmentNotFound, "segment_id")  # an id naming nothing the caller sees
FIELDS = (
    "id", "network_id", "name", "description", "physical_network", "network_type",
    "segmentation_id", "created_at", "updated_at", "revision_number",
)


@router.get("/v2.0/segments")
async def list_segments(request: Request, ctx: ContextDep):
    rt = runtime(request)
    return await list_response(
        request, ctx, "segments", FIELDS, segments.list_segments, rt.clock
    )


@router.post("/v2.0/segments", status_code=201,
             openapi_extra=create_body_schema("segment", SegmentCreate))
async def create_segment(request: Request, ctx: ContextDep):
    rt = runtime(request)
    return await create_response(
        request, ctx, "segment", SegmentCreate,
        lambda uow, data: segments.create_segment(ctx, uow, rt.rules, data),
    )


@router.get("/v2.0/segments/{segment_id}")
async def show_segment(segment_id: str, request: Request, ctx: ContextDep):
    return await show_response(
        request, ctx, "segment", FIELDS, segments.get_segment, segment_id, NOT_FOUND
    )


@router.put("/v2.0/segments/{segment_id}", openapi_extra=body_schema("segment", SegmentUpdate))
async def update_segment(segment_id: str, request: Request, ctx: ContextDep):
    return await update_response(
        request, ctx, "segment", SegmentUpdate, SEGMENT_READ_ONLY, segment_id, NOT_FOUND,
        lambda uow, data, revision: segments.update_segment(ctx, uow, segment_id, data, revision))


@router.delete("/v2.0/segments/{segment_id}", status_code=204)
async def delete_segment(segment_id: str, request: Request, ctx: ContextDep):
    return await delete_response(
        request, ctx, segment_id, NOT_FOUND,
        lambda uow, revision: segments.delete_segment(ctx, uow, segment_id, revision))
