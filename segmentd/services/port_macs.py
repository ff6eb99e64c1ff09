"""Changing a port's MAC address: when Neutron allows it, and the addresses derived from it."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.db import ports as rows
from segmentd.errors import MacAddressInUse, PortBound, UnsupportedPortDeviceOwner
from segmentd.services import allocators, port_addresses

UNPLUGGED = (c.VIF_TYPE_UNBOUND, c.VIF_TYPE_BINDING_FAILED)  # Neutron's VIF_UNPLUGGED_TYPES


def new_mac(current, given: str, device_owner: str) -> str | None:
    """The MAC a port update asks for, or None when it is the port's own. As Neutron: 409
    PortBound while the port is bound, 409 UnsupportedPortDeviceOwner for a port of the
    network's own services (device_owner network:*, as the update leaves it)."""
    mac = allocators.parse_mac(given)
    if mac == current["mac_address"]:
        return None
    if current["vif_type"] not in UNPLUGGED:
        raise PortBound(port_id=current["id"], vif_type=current["vif_type"],
                        old_mac=current["mac_address"], new_mac=mac)
    if device_owner.startswith("network:"):
        raise UnsupportedPortDeviceOwner(op="mac address update", port_id=current["id"],
                                         device_owner=device_owner)
    return mac


async def change_mac(conn: AsyncConnection, port: dict[str, Any], old_mac: str, subnets,
                     held: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Give `port` (already carrying its new MAC) that MAC, 409 MacAddressInUse if the
    network has it; the EUI-64 addresses of the old MAC on SLAAC/stateless subnets are
    derived again from the new one, as Neutron does. Returns the port's addresses."""
    if not await rows.set_mac(conn, port["id"], port["mac_address"]):
        raise MacAddressInUse(net_id=port["network_id"], mac=port["mac_address"])
    by_id = {s["id"]: s for s in subnets}
    derived = []
    for subnet_id, ip in held:
        subnet = by_id[subnet_id]
        if (allocators.is_auto_address(subnet["ip_version"], subnet["ipv6_address_mode"])
                and ip == str(allocators.eui64(ipaddress.ip_network(subnet["cidr"]), old_mac))):
            derived.append((subnet_id, ip))
    if not derived:
        return list(held)
    await rows.release_addresses(conn, port["id"], derived)
    plan = port_addresses.Plan(c.IP_ALLOCATION_IMMEDIATE,
                               requests=[port_addresses.Request(by_id[sid]) for sid, _ in derived])
    return [p for p in held if p not in derived] + await port_addresses.allocate(conn, port, plan)
