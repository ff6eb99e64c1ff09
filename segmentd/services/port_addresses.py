"""Which subnets a port takes addresses from, and taking them (reference §2.8).

A routed network's subnets sit on segments: a port gets its addresses from the subnets of
one segment its host reaches. Without a host and without requested addresses the
allocation waits (`deferred`) until the port is bound.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd import constants as c
from segmentd.db import ports as port_rows
from segmentd.errors import (
    FixedIpsSubnetsNotOnSameSegment,
    HostNotCompatibleWithFixedIps,
    HostNotConnectedToAnySegment,
    InvalidInput,
    InvalidIpForNetwork,
    InvalidIpForSubnet,
    IpAddressAlreadyAllocated,
    IpAddressGenerationFailure,
    SubnetNotFound,
)
from segmentd.services import allocators
from segmentd.services import subnet_addressing as a

_rng = random.SystemRandom()


@dataclass
class Request:
    """One fixed_ips entry, resolved: the subnet, and the address asked for (or any)."""

    subnet: dict[str, Any]
    ip: a.IPAddress | None = None


@dataclass
class Plan:
    ip_allocation: str
    requests: list[Request] = field(default_factory=list)  # explicit addresses
    segments: list[str | None] = field(default_factory=list)  # automatic: tried in order
    subnets: list[dict[str, Any]] = field(default_factory=list)  # the candidates

    def segments_expected(self) -> set[str | None]:
        """The segments the addresses will come from, unless the first one has no room."""
        if self.requests:
            return {r.subnet["segment_id"] for r in self.requests}
        return {self.segments[0]} if self.segments else set()


def is_routed(subnets) -> bool:
    return any(s["segment_id"] is not None for s in subnets)


def check_entry_count(entries: list[dict[str, Any]]) -> None:
    if len(entries) > c.MAX_FIXED_IPS_PER_PORT:
        raise InvalidInput(error_message=(
            f"Exceeded maximum amount of fixed ips per port ({c.MAX_FIXED_IPS_PER_PORT})"))


def canonical(text: str) -> str:
    """An address's canonical text (as stored); text that is no address stays as it is."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def refuse_duplicates(entries: list[dict[str, Any]]) -> None:
    """One address named twice is a mistake in the request (subnets never overlap, so the
    address alone identifies it)."""
    seen: set[str] = set()
    for entry in entries:
        if entry.get("ip_address") is None:
            continue
        ip = canonical(entry["ip_address"])
        if ip in seen:
            raise InvalidInput(error_message=f"Duplicate IP address '{ip}' in fixed_ips")
        seen.add(ip)


def resolve_fixed_ips(network_id: str, subnets, entries: list[dict[str, Any]]) -> list[Request]:
    """Check requested fixed_ips against the network's subnets (400/404 per Neutron)."""
    check_entry_count(entries)
    refuse_duplicates(entries)
    by_id = {s["id"]: s for s in subnets}
    out: list[Request] = []
    for entry in entries:
        subnet_id, text = entry.get("subnet_id"), entry.get("ip_address")
        if subnet_id is None and text is None:
            raise InvalidInput(error_message="A fixed_ips entry needs subnet_id or ip_address")
        subnet = by_id.get(subnet_id) if subnet_id is not None else None
        if subnet_id is not None and subnet is None:
            raise SubnetNotFound(subnet_id=subnet_id)  # not on this network, or not visible
        ip = None
        if text is not None:
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                raise InvalidInput(error_message=f"'{text}' is not a valid IP address") from None
            if getattr(ip, "scope_id", None):  # fe80::1%eth0 names the same address
                raise InvalidInput(error_message=f"'{text}' is not a valid IP address")
            if subnet is None:
                subnet = next((s for s in subnets
                               if ip in ipaddress.ip_network(s["cidr"])), None)
                if subnet is None:
                    raise InvalidIpForNetwork(ip_address=text)
            net = ipaddress.ip_network(subnet["cidr"])
            if ip.version != net.version or ip not in net or (
                    net.version == 4 and net.prefixlen < 31
                    and ip in (net.network_address, net.broadcast_address)):
                raise InvalidIpForSubnet(ip_address=text)
            if allocators.is_auto_address(subnet["ip_version"], subnet["ipv6_address_mode"]):
                raise InvalidInput(error_message=(
                    f"IPv6 address {text} cannot be directly assigned to a port on subnet "
                    f"{subnet['id']} with {subnet['ipv6_address_mode']} address mode"))
            if subnet["gateway_ip"] and ip == ipaddress.ip_address(subnet["gateway_ip"]):
                raise IpAddressAlreadyAllocated(ip=str(ip), subnet_id=subnet["id"])
        out.append(Request(subnet, ip))
    segments = {r.subnet["segment_id"] for r in out}
    if len(segments) > 1:
        raise FixedIpsSubnetsNotOnSameSegment()
    return out


def same_segment_auto(subnets, requests: list[Request]) -> list[Request]:
    """IPv6 SLAAC/stateless subnets give every port an address: those of the requested
    addresses' segment that the request did not name are added."""
    segment = requests[0].subnet["segment_id"] if requests else None
    named = {r.subnet["id"] for r in requests}
    return [Request(s) for s in subnets
            if allocators.is_auto_address(s["ip_version"], s["ipv6_address_mode"])
            and s["segment_id"] == segment and s["id"] not in named]


def check_host_fits(host: str, port_id: str, segment_ids, reached: list[str],
                    shown_host: str | None = None) -> None:
    """Every address's segment must be one the host reaches (no segment: any host).
    `shown_host`: how the error names the host (a caller may not be allowed to read it)."""
    if host and any(sid is not None and sid not in reached for sid in segment_ids):
        raise HostNotCompatibleWithFixedIps(host=shown_host or host, port_id=port_id)


def check_requested_fit(host: str, network_id: str, requests: list[Request],
                        reached: list[str]) -> None:
    """On create, a requested subnet the host cannot reach is a bad request (Neutron's 400)."""
    for req in requests:
        segment_id = req.subnet["segment_id"]
        if host and segment_id is not None and segment_id not in reached:
            raise InvalidInput(error_message=(
                f"Failed to create port on network {network_id}, because fixed_ips included "
                f"invalid subnet {req.subnet['id']}"))


def automatic_plan(network_id: str, subnets, host: str, reached: list[str]) -> Plan:
    """No fixed_ips asked for: where the port's addresses come from, or that they wait."""
    if not subnets:
        return Plan(c.IP_ALLOCATION_IMMEDIATE)
    if not is_routed(subnets):
        return Plan(c.IP_ALLOCATION_IMMEDIATE, segments=[None], subnets=list(subnets))
    if not host:
        return Plan(c.IP_ALLOCATION_DEFERRED)
    with_subnets = {s["segment_id"] for s in subnets}
    segments = [sid for sid in reached if sid in with_subnets]
    if not segments:
        raise HostNotConnectedToAnySegment(host=host, network_id=network_id)
    return Plan(c.IP_ALLOCATION_IMMEDIATE, segments=segments, subnets=list(subnets))


async def allocate(conn: AsyncConnection, port: dict[str, Any], plan: Plan) -> list[tuple[str, str]]:
    """Take the plan's addresses for the port; returns (subnet_id, address) pairs."""
    taken: list[tuple[str, str]] = []
    for req in plan.requests:
        taken.append(await _take(conn, port, req.subnet, req.ip))
    if not plan.segments:
        return taken
    for segment_id in plan.segments:
        on_segment = [s for s in plan.subnets if s["segment_id"] == segment_id]
        got = await _take_automatic(conn, port, on_segment)
        if got is not None:
            return taken + got
    raise IpAddressGenerationFailure(net_id=port["network_id"])


async def _take_automatic(conn, port, subnets) -> list[tuple[str, str]] | None:
    """One address of each IPv4 and stateful IPv6 family from the first subnet with room,
    an EUI-64 address on every SLAAC/stateless subnet; None if a family has no room."""
    out: list[tuple[str, str]] = []
    for version_subnets in _families(subnets):
        for subnet in version_subnets:
            got = await _take_any(conn, port, subnet)
            if got is not None:
                out.append(got)
                break
        else:  # this segment cannot serve every family: give back what it gave
            await port_rows.release_addresses(conn, port["id"], out)
            return None
    for subnet in subnets:
        if allocators.is_auto_address(subnet["ip_version"], subnet["ipv6_address_mode"]):
            out.append(await _take(conn, port, subnet, None))
    return out


def _families(subnets):
    v4 = [s for s in subnets if s["ip_version"] == 4]
    v6 = [s for s in subnets if s["ip_version"] == 6
          and not allocators.is_auto_address(6, s["ipv6_address_mode"])]
    return [f for f in (v4, v6) if f]


def _row(port, subnet, ip) -> dict[str, Any]:
    return {"subnet_id": subnet["id"], "ip_address": str(ip), "port_id": port["id"],
            "network_id": port["network_id"]}


async def _take(conn, port, subnet, ip) -> tuple[str, str]:
    """A requested address (or the EUI-64 one of an auto-address subnet); 409 if taken."""
    if ip is None:
        if allocators.is_auto_address(subnet["ip_version"], subnet["ipv6_address_mode"]):
            ip = allocators.eui64(ipaddress.ip_network(subnet["cidr"]), port["mac_address"])
        else:
            got = await _take_any(conn, port, subnet)
            if got is None:
                raise IpAddressGenerationFailure(net_id=port["network_id"])
            return got
    if not await port_rows.insert_allocation(conn, _row(port, subnet, ip)):
        raise IpAddressAlreadyAllocated(ip=str(ip), subnet_id=subnet["id"])
    return subnet["id"], str(ip)


async def _take_any(conn, port, subnet) -> tuple[str, str] | None:
    """Any free address of the subnet's pools; None when they are full.

    A few random addresses first (one statement each, nearly always the first in a sparse
    subnet); then read what is taken and pick among the first free addresses, again after
    losing a race, so that concurrent writers in any process end with distinct addresses.
    """
    pools = a.pools_of(subnet["allocation_pools"])
    gateway = ipaddress.ip_address(subnet["gateway_ip"]) if subnet["gateway_ip"] else None
    version = subnet["ip_version"]
    for value in allocators.random_addresses(pools, _rng, c.IP_RANDOM_TRIES):
        ip = allocators.as_address(version, value)
        if ip != gateway and await port_rows.insert_allocation(conn, _row(port, subnet, ip)):
            return subnet["id"], str(ip)
    for _ in range(c.IP_SCAN_ATTEMPTS):
        taken = {int(ipaddress.ip_address(t)) for t in
                 await port_rows.taken_addresses(conn, subnet["id"])}
        if gateway is not None:
            taken.add(int(gateway))
        free = allocators.free_addresses(pools, taken, c.IP_SCAN_SPREAD)
        if not free:
            return None
        ip = allocators.as_address(version, _rng.choice(free))
        if await port_rows.insert_allocation(conn, _row(port, subnet, ip)):
            return subnet["id"], str(ip)
    raise IpAddressGenerationFailure(net_id=port["network_id"])
