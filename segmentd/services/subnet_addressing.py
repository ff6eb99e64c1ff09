"""Subnet address rules: CIDRs, gateways, allocation pools, DNS servers and host routes.

Pure functions over `ipaddress` objects. Addresses are never enumerated: a pool is a
(first, last) pair, so a /8 or a /64 costs what a /24 does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from segmentd.errors import (
    DNSNameServersExhausted,
    GatewayConflictWithAllocationPools,
    HostRoutesExhausted,
    InvalidAllocationPool,
    InvalidInput,
    OutOfBoundsAllocationPool,
    OverlappingAllocationPools,
)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Prefix lengths a subnet may have: a /8 or a /32 of IPv6 at the large end, and at the
# small end the last size that still leaves addresses for ports.
PREFIX_BOUNDS = {4: (8, 30), 6: (32, 126)}
MAX_ALLOCATION_POOLS = 64
MAX_DNS_NAMESERVERS = 5  # Neutron's max_dns_nameservers default
MAX_HOST_ROUTES = 20  # Neutron's max_subnet_host_routes default
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
EUI64_MODES = ("slaac", "dhcpv6-stateless")  # the address derives from the MAC: needs a /64


@dataclass(frozen=True)
class Pool:
    first: IPAddress
    last: IPAddress

    def view(self) -> dict[str, str]:
        return {"start": str(self.first), "end": str(self.last)}

    def overlaps(self, other: Pool) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __contains__(self, address: IPAddress) -> bool:
        return self.first <= address <= self.last


def parse_cidr(text: str, ip_version: int) -> IPNetwork:
    """The subnet's network, in canonical form; 400 for anything else."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput(error_message=f"'{text}' is not a valid IP subnet") from None
    if net.version != ip_version:
        raise InvalidInput(error_message=f"Cidr {text} and ip version {ip_version} mismatch")
    if net.network_address != ipaddress.ip_interface(text).ip:
        raise InvalidInput(
            error_message=f"'{text}' isn't a recommended CIDR, '{net}' is recommended"
        )
    low, high = PREFIX_BOUNDS[ip_version]
    if not low <= net.prefixlen <= high:
        raise InvalidInput(
            error_message=f"The prefix length of an IPv{ip_version} subnet must be "
            f"between {low} and {high}, not {net.prefixlen}"
        )
    return net


def parse_address(text: str, ip_version: int, what: str) -> IPAddress:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(error_message=f"'{text}' is not a valid IP address for {what}") from None
    if getattr(address, "scope_id", None):  # a scoped address would be stored apart from itself
        raise InvalidInput(error_message=f"'{text}' is not a valid IP address for {what}")
    if address.version != ip_version:
        raise InvalidInput(error_message=f"{what} {text} is not an IPv{ip_version} address")
    return address


def usable_range(net: IPNetwork) -> tuple[IPAddress, IPAddress]:
    """First and last address a port may have: not the network address (IPv6's
    subnet-router anycast) nor, on IPv4, the broadcast."""
    last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
    return net.network_address + 1, last


def check_gateway(net: IPNetwork, text: str | None) -> IPAddress | None:
    if text is None:
        return None
    gateway = parse_address(text, net.version, "gateway_ip")
    first, last = usable_range(net)
    if not first <= gateway <= last:
        raise InvalidInput(error_message=f"Gateway {gateway} is not valid on subnet {net}")
    return gateway


def default_gateway(net: IPNetwork) -> IPAddress:
    return net.network_address + 1


def default_pools(net: IPNetwork, gateway: IPAddress | None) -> list[Pool]:
    """The usable range with the gateway cut out of it."""
    first, last = usable_range(net)
    if gateway is None or not first <= gateway <= last:
        return [Pool(first, last)]
    pools = []
    if gateway > first:
        pools.append(Pool(first, gateway - 1))
    if gateway < last:
        pools.append(Pool(gateway + 1, last))
    return pools


def check_pools(
    net: IPNetwork, gateway: IPAddress | None, given: Sequence[dict[str, str]]
) -> list[Pool]:
    """Pools as asked: inside the subnet, well-ordered, disjoint, clear of the gateway."""
    if len(given) > MAX_ALLOCATION_POOLS:
        raise InvalidInput(
            error_message=f"A subnet has at most {MAX_ALLOCATION_POOLS} allocation pools"
        )
    low, high = usable_range(net)
    pools = []
    for item in given:
        text = f"{item['start']}-{item['end']}"
        try:
            first, last = ipaddress.ip_address(item["start"]), ipaddress.ip_address(item["end"])
        except ValueError:
            raise InvalidAllocationPool(pool=text) from None
        if first.version != net.version or last.version != net.version or first > last:
            raise InvalidAllocationPool(pool=text)
        if first < low or last > high:
            raise OutOfBoundsAllocationPool(pool=text, subnet_cidr=str(net))
        pools.append(Pool(first, last))
    ordered = sorted(pools, key=lambda p: p.first)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.overlaps(after):
            raise OverlappingAllocationPools(
                pool_1=_text(before), pool_2=_text(after), subnet_cidr=str(net)
            )
    if gateway is not None:
        for pool in ordered:
            if gateway in pool:
                raise GatewayConflictWithAllocationPools(ip_address=str(gateway), pool=_text(pool))
    return ordered


def _text(pool: Pool) -> str:
    return f"{pool.first}-{pool.last}"


def pools_of(stored: Iterable[dict[str, str]]) -> list[Pool]:
    return [Pool(ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"])) for p in stored]


def check_dns(ip_version: int, given: Sequence[str]) -> list[str]:
    if len(given) > MAX_DNS_NAMESERVERS:
        raise DNSNameServersExhausted(quota=MAX_DNS_NAMESERVERS)
    seen: list[str] = []
    for text in given:
        address = str(parse_address(text, ip_version, "dns_nameservers"))
        if address in seen:
            raise InvalidInput(error_message=f"Duplicate nameserver '{text}'")
        seen.append(address)
    return seen


def check_routes(ip_version: int, given: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    if len(given) > MAX_HOST_ROUTES:
        raise HostRoutesExhausted(quota=MAX_HOST_ROUTES)
    routes: list[dict[str, str]] = []
    for item in given:
        try:
            destination = ipaddress.ip_network(item["destination"])
        except ValueError:
            raise InvalidInput(
                error_message=f"'{item['destination']}' is not a valid route destination"
            ) from None
        if destination.version != ip_version:
            raise InvalidInput(error_message=f"Route destination {destination} is not IPv{ip_version}")
        nexthop = parse_address(item["nexthop"], ip_version, "nexthop")
        route = {"destination": str(destination), "nexthop": str(nexthop)}
        if route in routes:
            raise InvalidInput(error_message=f"Duplicate hostroute '{destination}'")
        routes.append(route)
    return routes


def check_ipv6_modes(net: IPNetwork, ra_mode: str | None, address_mode: str | None) -> None:
    if ra_mode is None and address_mode is None:
        return
    if net.version != 6:
        raise InvalidInput(
            error_message="ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version is 4"
        )
    if ra_mode and address_mode and ra_mode != address_mode:
        raise InvalidInput(
            error_message=f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to "
            f"'{address_mode}' is not valid. If both attributes are set, they must be the same value"
        )
    if (address_mode or ra_mode) in EUI64_MODES and net.prefixlen != 64:
        raise InvalidInput(
            error_message=f"Invalid CIDR {net} for IPv6 address mode. OpenStack uses the "
            "EUI-64 address format, which requires the prefix to be /64"
        )


def overlapping(net: IPNetwork, others: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The first of `others` (rows with a cidr) whose network overlaps `net`."""
    for row in others:
        other = ipaddress.ip_network(row["cidr"])
        if other.version == net.version and other.overlaps(net):
            return row
    return None


def peer_routes(subnet: dict[str, Any], siblings: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Routes from a subnet on a segment to the same-version subnets on the network's other
    segments, through its own gateway (Neutron's segments-peer-subnet-host-routes). A user
    route whose destination already covers a peer subnet takes its place."""
    if subnet["segment_id"] is None or not subnet["gateway_ip"]:
        return []
    covered = [ipaddress.ip_network(r["destination"]) for r in subnet["host_routes"]]
    routes = []
    for other in siblings:
        if (other["id"] == subnet["id"] or other["ip_version"] != subnet["ip_version"]
                or other["segment_id"] in (None, subnet["segment_id"])):
            continue
        net = ipaddress.ip_network(other["cidr"])
        if any(net.version == c.version and net.subnet_of(c) for c in covered):
            continue
        routes.append({"destination": other["cidr"], "nexthop": subnet["gateway_ip"]})
    return routes
