"""Port rows to Neutron's wire shape, and what of it a caller may read."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from segmentd import constants as c
from segmentd.auth import policy
from segmentd.context import RequestContext
from segmentd.services.views import timestamp

VIF_DETAILS_OVS = {"port_filter": True, "connectivity": "l2", "bridge_name": "br-int",
                   "datapath_type": "system"}


def _address_order(pair: tuple[str, str]):
    ip = ipaddress.ip_address(pair[1])
    return ip.version, int(ip)


def port_view(row: Mapping[str, Any], addresses: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """`addresses`: the port's (subnet_id, ip_address) pairs."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "network_id": row["network_id"],
        "project_id": row["project_id"],
        "tenant_id": row["project_id"],
        "mac_address": row["mac_address"],
        "admin_state_up": row["admin_state_up"],
        "status": row["status"],
        "device_id": row["device_id"],
        "device_owner": row["device_owner"],
        "fixed_ips": [{"subnet_id": s, "ip_address": ip}
                      for s, ip in sorted(addresses, key=_address_order)],
        "ip_allocation": row["ip_allocation"],
        "binding:host_id": row["host"],
        "binding:vnic_type": row["vnic_type"],
        "binding:profile": dict(row["profile"] or {}),
        "binding:vif_type": row["vif_type"],
        "binding:vif_details": dict(VIF_DETAILS_OVS) if row["vif_type"] == c.VIF_TYPE_OVS else {},
        "allowed_address_pairs": [],
        "extra_dhcp_opts": [],
        "security_groups": [],
        "port_security_enabled": True,
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "revision_number": row["revision_number"],
    }


def hidden_keys(ctx: RequestContext) -> tuple[str, ...]:
    """The binding attributes the caller may not read (admin and service only, by default)."""
    return tuple(k for k in policy.BINDING_ATTRIBUTES if not policy.check(ctx, f"get_port:{k}"))


def for_caller(view: dict[str, Any], hidden: tuple[str, ...]) -> dict[str, Any]:
    for key in hidden:
        view.pop(key, None)
    return view
