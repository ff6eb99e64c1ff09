"""Rows to Neutron's wire shapes, leaving out what the caller may not read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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
