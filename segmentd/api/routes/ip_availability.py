"""/v2.0/network-ip-availabilities (admin-only by default, as in Neutron)"""

from __future__ import annotations

from fastapi import APIRouter, Request

from segmentd.api.deps import ContextDep
from segmentd.api.render import list_response, show_response
from segmentd.errors import NetworkNotFound
from segmentd.services import ip_availability

router = APIRouter(tags=["network-ip-availabilities"])
FIELDS = ("network_id", "network_name", "project_id", "tenant_id", "used_ips", "total_ips",
          "subnet_ip_availability")


@router.get("/v2.0/network-ip-availabilities")
async def list_availabilities(request: Request, ctx: ContextDep):
    return await list_response(request, ctx, "network_ip_availabilities", FIELDS,
                               ip_availability.list_availabilities, key="network_id")


@router.get("/v2.0/network-ip-availabilities/{network_id}")
async def show_availability(network_id: str, request: Request, ctx: ContextDep):
    return await show_response(request, ctx, "network_ip_availability", FIELDS,
                               ip_availability.get_availability, network_id,
                               (NetworkNotFound, "net_id"))
