"""Rows to Neutron's wire shapes, leaving out what the caller may not read."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from segmentd import constants as c
from segmentd.auth import policy
from segmentd.context import RequestContext

PROVIDER_KEYS = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def timestamp(value: datetime) -> str:
    """Neutron's format: UTC, whole seconds, a trailing Z.

    (isoformat, not strftime: a page of 100 segments formats 200 of these, and strftime
    was a sixth of the page's time.) Stored times are naive UTC.
    """
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def segment_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "network_id": row["network_id"],
        "name": row["name"],
        "description": row["description"],
        "physical_network": row["physical_network"],
        "network_type": row["network_type"],
        "segmentation_id": row["segmentation_id"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "revision_number": row["revision_number"],
    }


def subnet_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "network_id": row["network_id"],
        "segment_id": row["segment_id"],
        "project_id": row["project_id"],
        "tenant_id": row["project_id"],
        "cidr": row["cidr"],
        "ip_version": row["ip_version"],
        "gateway_ip": row["gateway_ip"],
        "enable_dhcp": row["enable_dhcp"],
        "allocation_pools": list(row["allocation_pools"]),
        "dns_nameservers": list(row["dns_nameservers"]),
        "host_routes": [*row["host_routes"], *(row.get("peer_routes") or ())],
        "ipv6_ra_mode": row["ipv6_ra_mode"],
        "ipv6_address_mode": row["ipv6_address_mode"],
        "subnetpool_id": None,
        "service_types": [],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "revision_number": row["revision_number"],
    }


def provider_view(segments: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One segment as provider:* attributes, several as the multi-provider list."""
    if len(segments) > 1:
        return {
            "segments": [
                {
                    "provider:network_type": s["network_type"],
                    "provider:physical_network": s["physical_network"],
                    "provider:segmentation_id": s["segmentation_id"],
                }
                for s in segments
            ]
        }
    if not segments:
        return dict.fromkeys(PROVIDER_KEYS)
    s = segments[0]
    return {
        "provider:network_type": s["network_type"],
        "provider:physical_network": s["physical_network"],
        "provider:segmentation_id": s["segmentation_id"],
    }


def network_view(
    row: Mapping[str, Any],
    segments: Sequence[Mapping[str, Any]],
    show_provider: bool,
    subnets: Sequence[tuple[str, str | None]] = (),
) -> dict[str, Any]:
    """`subnets` are the network's (subnet id, segment id) pairs: its subnets are on
    segments (it is routed, so not L2-adjacent) when the first one is."""
    view = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "project_id": row["project_id"],
        "tenant_id": row["project_id"],
        "admin_state_up": row["admin_state_up"],
        "shared": row["shared"],
        "status": row["status"],
        "mtu": row["mtu"],
        "subnets": [subnet_id for subnet_id, _ in subnets],
        "l2_adjacency": not subnets or subnets[0][1] is None,
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "revision_number": row["revision_number"],
    }
    if show_provider:
        view.update(provider_view(segments))
    return view


def shows_provider(ctx: RequestContext) -> bool:
    """Whether the caller may read where networks live (admin-only by default)."""
    return all(policy.check(ctx, f"get_network:{a}") for a in policy.PROVIDER_ATTRIBUTES)


# -- ports, and the binding attributes a caller may not read

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
