"""What segmentd writes to the Northbound DB for a network and a segment.

Names and `external_ids` keys follow Neutron's OVN driver, so OVN tooling that reads
Neutron's conventions reads segmentd's rows the same way; `segmentd:owner` (added by the
commands) marks the rows segmentd may change.
"""

from __future__ import annotations

import hashlib
import ipaddress
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


# -- ports and DHCP options (what Neutron's OVN driver writes, reference §4.4)

def realizes_port(port: dict[str, Any]) -> bool:
    """A deferred port has no address yet and no Logical_Switch_Port until it gets one."""
    return bool(port["fixed_ips"]) or port["ip_allocation"] != c.IP_ALLOCATION_DEFERRED


def lsp_columns(port: dict[str, Any], cidrs: dict[str, str]) -> dict[str, Any]:
    """The columns of a port's Logical_Switch_Port (`cidrs`: known subnet CIDRs by id)."""
    ips = [f["ip_address"] for f in port["fixed_ips"]]
    addresses = " ".join([port["mac_address"], *ips])
    host = port.get("binding:host_id") or ""
    with_prefix = []
    for fixed in port["fixed_ips"]:
        cidr = cidrs.get(fixed["subnet_id"])
        prefix = cidr.split("/")[1] if cidr else ("32" if ":" not in fixed["ip_address"] else "128")
        with_prefix.append(f"{fixed['ip_address']}/{prefix}")
    return {
        "addresses": [addresses],
        "port_security": [addresses] if port.get("port_security_enabled", True) else [],
        "enabled": [bool(port["admin_state_up"])],
        "options": {"requested-chassis": host} if host else {},
        "external_ids": {
            "neutron:port_name": port["name"],
            "neutron:device_id": port["device_id"],
            "neutron:device_owner": port["device_owner"],
            "neutron:project_id": port["project_id"],
            "neutron:network_name": switch_name(port["network_id"]),
            "neutron:cidrs": " ".join(with_prefix),
            "neutron:security_group_ids": "",
            "neutron:revision_number": str(port["revision_number"]),
            "neutron:vnic_type": port.get("binding:vnic_type") or "normal",
            "neutron:host_id": host,
        },
    }


def dhcp_server_mac(subnet_id: str) -> str:
    """A stable server MAC per subnet (Neutron draws one at random and keeps it in the NB)."""
    digest = hashlib.sha256(subnet_id.encode()).hexdigest()
    return "fa:16:3e:" + ":".join(digest[i:i + 2] for i in (0, 2, 4))


def switch_mtu(switch) -> int | None:
    """The MTU a switch row carries in neutron:mtu (None without a usable one)."""
    try:
        return int(switch.external_ids.get("neutron:mtu", "")) or None
    except ValueError:
        return None


def has_dhcp_options(subnet: dict[str, Any]) -> bool:
    if not subnet["enable_dhcp"]:
        return False
    return subnet["ip_version"] == 4 or subnet["ipv6_address_mode"] in (
        "dhcpv6-stateful", "dhcpv6-stateless")


def dhcp_columns(subnet: dict[str, Any], mtu: int | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """(cidr, options, external_ids) of a subnet's DHCP_Options row."""
    mac = dhcp_server_mac(subnet["id"])
    dns = subnet["dns_nameservers"]
    if subnet["ip_version"] == 4:
        options = {"lease_time": str(DHCP_LEASE_TIME), "server_mac": mac}
        if subnet["gateway_ip"]:
            options["router"] = subnet["gateway_ip"]
            options["server_id"] = subnet["gateway_ip"]
        else:
            options["server_id"] = _first_host(subnet["cidr"])
        if mtu:
            options["mtu"] = str(mtu)
        if dns:
            options["dns_server"] = "{" + ", ".join(dns) + "}"
        routes = [f"{r['destination']},{r['nexthop']}" for r in subnet["host_routes"]]
        if routes and subnet["gateway_ip"]:
            # RFC 3442: a client given option 121 ignores option 3 (router), so the default
            # route goes in too, as Neutron's OVN driver does.
            routes.append(f"0.0.0.0/0,{subnet['gateway_ip']}")
        if routes:
            options["classless_static_route"] = "{" + ", ".join(routes) + "}"
    else:
        options = {"server_id": mac}
        if dns:
            options["dns_server"] = "{" + ", ".join(dns) + "}"
        if subnet["ipv6_address_mode"] == "dhcpv6-stateless":
            options["dhcpv6_stateless"] = "true"
    external_ids = {"subnet_id": subnet["id"],
                    "neutron:revision_number": str(subnet["revision_number"]),
                    NETWORK_KEY: subnet["network_id"]}
    return subnet["cidr"], options, external_ids


def _first_host(cidr: str) -> str:
    return str(next(ipaddress.ip_network(cidr).hosts()))


DHCP_LEASE_TIME = 43200  # Neutron's dhcp_lease_duration default (12 h)
NETWORK_KEY = "segmentd:network_id"  # which switch's MTU a DHCP_Options row follows
