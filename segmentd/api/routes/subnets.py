"""/v2.0/subnets"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from segmentd.api.bulk import create_body_schema, create_response
from segmentd.api.deps import (
    ContextDep,
    body_schema,
    if_match_revision,
    json_response,
    known_id,
    parse_body,
)
from segmentd.api.render import list_response, show_response
from segmentd.api.runtime import runtime
from segmentd.errors import SubnetNotFound
from segmentd.schemas.subnets import SUBNET_READ_ONLY, SubnetCreate, SubnetUpdate
from segmentd.services import subnets

router = APIRouter(tags=["subnets"])
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
        request, ctx, "subnet", FIELDS, subnets.get_subnet, subnet_id, (SubnetNotFound, "subnet_id")
    )


@router.put("/v2.0/subnets/{subnet_id}", openapi_extra=body_schema("subnet", SubnetUpdate))
async def update_subnet(subnet_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(subnet_id, SubnetNotFound, "subnet_id")
    data = await parse_body(request, "subnet", SubnetUpdate, SUBNET_READ_ONLY)
    revision = if_match_revision(request)
    subnet = await rt.write(ctx, request, lambda uow: subnets.update_subnet(
        ctx, uow, subnet_id, data, revision))
    return json_response({"subnet": subnet})


@router.delete("/v2.0/subnets/{subnet_id}", status_code=204)
async def delete_subnet(subnet_id: str, request: Request, ctx: ContextDep):
    rt = runtime(request)
    known_id(subnet_id, SubnetNotFound, "subnet_id")
    revision = if_match_revision(request)
    await rt.write(ctx, request, lambda uow: subnets.delete_subnet(ctx, uow, subnet_id, revision))
    return Response(status_code=204)
