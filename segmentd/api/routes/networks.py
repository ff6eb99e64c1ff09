"""/v2.0/networks"""

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
from segmentd.api.schemas import NETWORK_READ_ONLY, NetworkCreate, NetworkUpdate
from segmentd.errors import NetworkNotFound
from segmentd.services import networks

router = APIRouter(tags=["networks"])
FIELDS = (
    "id", "name", "description", "project_id", "tenant_id", "admin_state_up", "shared",
    "status", "mtu", "subnets", "created_at", "updated_at", "revision_number",
    "provider:network_type", "provider:physical_network", "provider:segmentation_id",
    "segments",
)


@router.get("/v2.0/networks")
async def list_networks(request: Request, ctx: ContextDep):
    rt = runtime(request)
    q = list_query(request, rt.settings.pagination_max_limit)
    fields = requested_fields(request, FIELDS)
    async with rt.read() as conn:
        page = await networks.list_networks(ctx, conn, q)
    body = {"networks": [select_fields(n, fields) for n in page.items]}
    links = collection_links(request, "networks", page.items, page.has_more, q)
    if links:
        body["networks_links"] = links
    return json_response(body)


@router.post("/v2.0/networks", status_code=201, openapi_extra=body_schema("network", NetworkCreate))
async def create_network(request: Request, ctx: ContextDep):
    rt = runtime(request)
    data = await parse_body(request, "network", NetworkCreate)
    async with rt.write() as uow:
        net = await networks.create_network(ctx, uow, rt.rules, data)
    return json_response({"network": net}, 201)


@router.get("/v2.0/networks/{network_id}")
async def show_network(network_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    fields = requested_fields(request, FIELDS)
    known_id(network_id, NetworkNotFound, "net_id")
    async with rt.read() as conn:
        net = await networks.get_network(ctx, conn, network_id)
    return json_response({"network": select_fields(net, fields)})


@router.put("/v2.0/networks/{network_id}", openapi_extra=body_schema("network", NetworkUpdate))
async def update_network(network_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(network_id, NetworkNotFound, "net_id")
    data = await parse_body(request, "network", NetworkUpdate, NETWORK_READ_ONLY)
    revision = if_match_revision(request)
    async with rt.write() as uow:
        net = await networks.update_network(ctx, uow, rt.rules, network_id, data, revision)
    return json_response({"network": net})


@router.delete("/v2.0/networks/{network_id}", status_code=204)
async def delete_network(network_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(network_id, NetworkNotFound, "net_id")
    revision = if_match_revision(request)
    async with rt.write() as uow:
        await networks.delete_network(ctx, uow, network_id, revision)
    return Response(status_code=204)
