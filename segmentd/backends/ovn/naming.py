"""What segmentd writes to the Northbound DB for a network and a segment.

Names and `external_ids` keys follow Neutron's OVN driver, so OVN tooling that reads
Neutron's conventions reads segmentd's rows the same way; `segmentd:owner` (added by the
commands) marks the rows segmentd may change.
"""

from __future__ import annotations

from typing import Any

from segmentd import constants as c


def switch_name(network_id: str) -> str:
    return f"neutron-{network_id}"


def localnet_port_name(segment_id: str) -> str:
    return f"provnet-{segment_id}"


def switch_columns(network: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(external_ids, other_config) of a network's switch, from its API view."""
    physnet = network.get("provider:physical_network")
    external_ids = {
        "neutron:network_name": network.get("name") or "",
        "neutron:mtu": str(network.get("mtu") or 0),
        "neutron:revision_number": str(network["revision_number"]),
        "neutron:availability_zone_hints": "",
        # Set for a single-segment network only, as Neutron does.
        "neutron:provnet-network-type": network.get("provider:network_type") or "",
    }
    if physnet:
        external_ids["neutron:provnet-physical-network"] = physnet
    other_config = {
        "mcast_snoop": "false",
        "mcast_flood_unregistered": "false",
        "vlan-passthru": "false",
    }
    if physnet:
        other_config["fdb_age_threshold"] = "300"
    return external_ids, other_config


def has_localnet_port(segment: dict[str, Any]) -> bool:
    return bool(segment.get("physical_network"))


def localnet_columns(segment: dict[str, Any]) -> tuple[int | None, dict[str, str], dict[str, str]]:
    """(tag_request, external_ids, options) of a segment's localnet port."""
    physnet = segment["physical_network"]
    tag = segment["segmentation_id"] if segment["network_type"] == c.TYPE_VLAN else None
    external_ids = {"neutron:provnet-physical-network": physnet}
    options = {
        "network_name": physnet,
        "mcast_flood_reports": "true",
        "mcast_flood": "false",
        "localnet_learn_fdb": "false",
    }
    return tag, external_ids, options
