"""/v2.0/networks"""

from __future__ import annotations

from functools import partial

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
from segmentd.errors import NetworkNotFound
from segmentd.schemas.networks import NETWORK_READ_ONLY, NetworkCreate, NetworkUpdate
from segmentd.services import networks
from segmentd.services.realization import just_written

router = APIRouter(tags=["networks"])
NOT_FOUND = (NetworkNotFound, "net_id")  # an id naming nothing the caller sees
FIELDS = (
    "id", "name", "description", "project_id", "tenant_id", "admin_state_up", "shared",
    "status", "mtu", "subnets", "l2_adjacency", "created_at", "updated_at", "revision_number",
    "provider:network_type", "provider:physical_network", "provider:segmentation_id",
    "segments",
)


@router.get("/v2.0/networks")
async def list_networks(request: Request, ctx: ContextDep):
    return await list_response(request, ctx, "networks", FIELDS, networks.list_networks,
                               runtime(request).realization)


@router.post("/v2.0/networks", status_code=201,
             openapi_extra=create_body_schema("network", NetworkCreate))
async def create_network(request: Request, ctx: ContextDep):
    rt = runtime(request)
    return await create_response(
        request, ctx, "network", NetworkCreate,
        lambda uow, data: networks.create_network(ctx, uow, rt.rules, data),
        partial(just_written, rt.realization),
    )


@router.get("/v2.0/networks/{network_id}")
async def show_network(network_id: str, request: Request, ctx: ContextDep):
    getter = partial(networks.get_network, watch=runtime(request).realization)
    return await show_response(
        request, ctx, "network", FIELDS, getter, network_id, NOT_FOUND
    )


@router.put("/v2.0/networks/{network_id}", openapi_extra=body_schema("network", NetworkUpdate))
async def update_network(network_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    return await update_response(
        request, ctx, "network", NetworkUpdate, NETWORK_READ_ONLY, network_id, NOT_FOUND,
        lambda uow, data, revision: networks.update_network(
            ctx, uow, rt.rules, network_id, data, revision),
        shown=partial(just_written, rt.realization))


@router.delete("/v2.0/networks/{network_id}", status_code=204)
async def delete_network(network_id: str, request: Request, ctx: ContextDep):
    return await delete_response(
        request, ctx, network_id, NOT_FOUND,
        lambda uow, revision: networks.delete_network(ctx, uow, network_id, revision))
