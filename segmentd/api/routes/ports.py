"""/v2.0/ports"""

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
from segmentd.errors import PortNotFound
from segmentd.schemas.ports import PORT_READ_ONLY, PortCreate, PortUpdate
from segmentd.services import ports

router = APIRouter(tags=["ports"])
NOT_FOUND = (PortNotFound, "port_id")  # an id naming nothing the caller sees
FIELDS = (
    "id", "name", "description", "network_id", "project_id", "tenant_id", "mac_address",
    "admin_state_up", "status", "device_id", "device_owner", "fixed_ips", "ip_allocation",
    "binding:host_id", "binding:vnic_type", "binding:profile", "binding:vif_type",
    "binding:vif_details", "allowed_address_pairs", "extra_dhcp_opts", "security_groups",
    "port_security_enabled", "created_at", "updated_at", "revision_number",
    # Asked for by `openstack port list --long`; segmentd has neither, so they are left out
    # of the answer rather than refusing the request.
    "tags", "trunk_details",
)


@router.get("/v2.0/ports")
async def list_ports(request: Request, ctx: ContextDep):
    return await list_response(request, ctx, "ports", FIELDS, ports.list_ports)


@router.post("/v2.0/ports", status_code=201, openapi_extra=create_body_schema("port", PortCreate))
async def create_port(request: Request, ctx: ContextDep):
    rt = runtime(request)
    return await create_response(
        request, ctx, "port", PortCreate,
        lambda uow, data: ports.create_port(ctx, uow, rt.clock, data),
    )


@router.get("/v2.0/ports/{port_id}")
async def show_port(port_id: str, request: Request, ctx: ContextDep):
    return await show_response(
        request, ctx, "port", FIELDS, ports.get_port, port_id, NOT_FOUND
    )


@router.put("/v2.0/ports/{port_id}", openapi_extra=body_schema("port", PortUpdate))
async def update_port(port_id: str, request: Request, ctx: ContextDep):
    return await update_response(
        request, ctx, "port", PortUpdate, PORT_READ_ONLY, port_id, NOT_FOUND,
        lambda uow, data, revision: ports.update_port(
            ctx, uow, runtime(request).clock, port_id, data, revision))


@router.delete("/v2.0/ports/{port_id}", status_code=204)
async def delete_port(port_id: str, request: Request, ctx: ContextDep):
    return await delete_response(
        request, ctx, port_id, NOT_FOUND,
        lambda uow, revision: ports.delete_port(ctx, uow, port_id, revision))
