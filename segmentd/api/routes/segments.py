"""/v2.0/segments"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from segmentd.api.deps import (
    known_id,
    body_schema,
    ContextDep,
    collection_links,
    if_match_revision,
    json_response,
    list_query,
    parse_body,
    requested_fields,
    select_fields,
)
from segmentd.api.runtime import runtime
from segmentd.api.schemas import SEGMENT_READ_ONLY, SegmentCreate, SegmentUpdate
from segmentd.errors import SegmentNotFound
from segmentd.services import segments

router = APIRouter(tags=["segments"])
FIELDS = (
    "id", "network_id", "name", "description", "physical_network", "network_type",
    "segmentation_id", "created_at", "updated_at", "revision_number",
)


@router.get("/v2.0/segments")
async def list_segments(request: Request, ctx: ContextDep):
    rt = runtime(request)
    q = list_query(request, rt.settings.pagination_max_limit)
    fields = requested_fields(request, FIELDS)
    async with rt.read() as conn:
        page = await segments.list_segments(ctx, conn, q)
    body = {"segments": [select_fields(s, fields) for s in page.items]}
    links = collection_links(request, "segments", page.items, page.has_more, q)
    if links:
        body["segments_links"] = links
    return json_response(body)


@router.post("/v2.0/segments", status_code=201, openapi_extra=body_schema("segment", SegmentCreate))
async def create_segment(request: Request, ctx: ContextDep):
    rt = runtime(request)
    data = await parse_body(request, "segment", SegmentCreate)
    async with rt.write() as uow:
        seg = await segments.create_segment(ctx, uow, rt.rules, data)
    return json_response({"segment": seg}, 201)


@router.get("/v2.0/segments/{segment_id}")
async def show_segment(segment_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    fields = requested_fields(request, FIELDS)
    known_id(segment_id, SegmentNotFound, "segment_id")
    async with rt.read() as conn:
        seg = await segments.get_segment(ctx, conn, segment_id)
    return json_response({"segment": select_fields(seg, fields)})


@router.put("/v2.0/segments/{segment_id}", openapi_extra=body_schema("segment", SegmentUpdate))
async def update_segment(segment_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(segment_id, SegmentNotFound, "segment_id")
    data = await parse_body(request, "segment", SegmentUpdate, SEGMENT_READ_ONLY)
    revision = if_match_revision(request)
    async with rt.write() as uow:
        seg = await segments.update_segment(ctx, uow, segment_id, data, revision)
    return json_response({"segment": seg})


@router.delete("/v2.0/segments/{segment_id}", status_code=204)
async def delete_segment(segment_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(segment_id, SegmentNotFound, "segment_id")
    revision = if_match_revision(request)
    async with rt.write() as uow:
        await segments.delete_segment(ctx, uow, segment_id, revision)
    return Response(status_code=204)
