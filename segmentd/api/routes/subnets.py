"""/v2.0/subnets"""

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
from segmentd.errors import SubnetNotFound
from segmentd.schemas.subnets import SUBNET_READ_ONLY, SubnetCreate, SubnetUpdate
from segmentd.services import subnets

router = APIRouter(tags=["subnets"])
NOT_FOUND = (SubnetNotFound, "subnet_id")  # an id naming nothing the caller sees
FIELDS = (
    "id", "name", "description", "network_id", "segment_id", "project_id", "tenant_id",
    "cidr", "ip_version", "gateway_ip", "enable_dhcp", "allocation_pools", "dns_nameservers",
    "host_routes", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "service_types",
    "created_at", "updated_at", "revision_number",
)


@router.get("/v2.0/subnets")
async def list_subnets(request: Request, ctx: ContextDep):
    return await list_response(request, ctx, "subnets", FIELDS, subnets.list_subnets)


@router.post("/v2.0/subnets", status_code=201,
             openapi_extra=create_body_schema("subnet", SubnetCreate))
async def create_subnet(request: Request, ctx: ContextDep):
    return await create_response(
        request, ctx, "subnet", SubnetCreate,
        lambda uow, data: subnets.create_subnet(ctx, uow, data),
    )


@router.get("/v2.0/subnets/{subnet_id}")
async def show_subnet(subnet_id: str, request: Request, ctx: ContextDep):
    return await show_response(
        request, ctx, "subnet", FIELDS, subnets.get_subnet, subnet_id, NOT_FOUND
    )


@router.put("/v2.0/subnets/{subnet_id}", openapi_extra=body_schema("subnet", SubnetUpdate))
async def update_subnet(subnet_id: str, request: Request, ctx: ContextDep):
    return await update_response(
        request, ctx, "subnet", SubnetUpdate, SUBNET_READ_ONLY, subnet_id, NOT_FOUND,
        lambda uow, data, revision: subnets.update_subnet(ctx, uow, subnet_id, data, revision))


@router.delete("/v2.0/subnets/{subnet_id}", status_code=204)
async def delete_subnet(subnet_id: str, request: Request, ctx: ContextDep):
    return await delete_response(
        request, ctx, subnet_id, NOT_FOUND,
        lambda uow, revision: subnets.delete_subnet(ctx, uow, subnet_id, revision))
