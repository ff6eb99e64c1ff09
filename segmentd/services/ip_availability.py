"""Network IP availability (Neutron's network-ip-availability): addresses used and total,
per network and per subnet. Totals are the pools' sizes, computed, never enumerated."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.auth.policy import enforce
from segmentd.context import RequestContext
from segmentd.db import networks as network_rows
from segmentd.db import ports as port_rows
from segmentd.db import subnets as subnet_rows
from segmentd.errors import HTTPBadRequest, NetworkNotFound
from segmentd.query import ListQuery, Page
from segmentd.services import allocators
from segmentd.services import subnet_addressing as a

# This resource's filter and sort names, and the network attributes behind them.
RENAMED = {"network_id": "id", "network_name": "name", "project_id": "project_id",
           "tenant_id": "tenant_id"}


def _view(net, subnets, used: dict[str, int], ip_version: int | None) -> dict[str, Any]:
    entries = []
    for s in subnets:
        if ip_version is not None and s["ip_version"] != ip_version:
            continue
        entries.append({
            "subnet_id": s["id"], "subnet_name": s["name"], "cidr": s["cidr"],
            "ip_version": s["ip_version"], "used_ips": used.get(s["id"], 0),
            "total_ips": allocators.pool_total(a.pools_of(s["allocation_pools"])),
        })
    return {
        "network_id": net["id"], "network_name": net["name"],
        "project_id": net["project_id"], "tenant_id": net["project_id"],
        "used_ips": sum(e["used_ips"] for e in entries),
        "total_ips": sum(e["total_ips"] for e in entries),
        "subnet_ip_availability": entries,
    }


def _ip_version(raws: list[str] | None) -> int | None:
    if not raws:
        return None
    if len(raws) != 1 or raws[0] not in ("4", "6"):
        raise HTTPBadRequest(msg="Invalid filter value for ip_version: 4 or 6")
    return int(raws[0])


async def list_availabilities(ctx: RequestContext, conn: AsyncConnection, q: ListQuery) -> Page:
    enforce(ctx, "get_network_ip_availability")
    filters = dict(q.filters)
    ip_version = _ip_version(filters.pop("ip_version", None))
    renamed = {}
    for name, values in filters.items():
        if name not in RENAMED:
            raise HTTPBadRequest(msg=f"['{name}'] is invalid attribute for filtering")
        renamed[RENAMED[name]] = values
    sorts = []
    for name, direction in q.sorts:
        if name not in RENAMED:
            raise HTTPBadRequest(msg=f"['{name}'] is invalid attribute for sort_keys")
        sorts.append((RENAMED[name], direction))
    # The version filter is part of the statement: a page filtered after LIMIT would be short.
    where = subnet_rows.network_has_version(ip_version) if ip_version else None
    found = await network_rows.list_networks(
        conn, ctx, replace(q, filters=renamed, sorts=tuple(sorts)), where=where)
    ids = [n["id"] for n in found]
    subnets = await subnet_rows.subnet_rows_of_networks(conn, ids)
    used = await port_rows.used_by_subnet(conn, ids)
    return Page([_view(n, subnets[n["id"]], used, ip_version) for n in found])


async def get_availability(ctx: RequestContext, conn: AsyncConnection, network_id: str) -> dict:
    enforce(ctx, "get_network_ip_availability")
    net = await network_rows.get_network(conn, ctx, network_id)
    if net is None:
        raise NetworkNotFound(net_id=network_id)
    subnets = await subnet_rows.subnet_rows_of_networks(conn, [network_id])
    used = await port_rows.used_by_subnet(conn, [network_id])
    return _view(net, subnets[network_id], used, None)
