"""Subnet request bodies: shapes and types here, address rules in services/subnet_addressing."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from segmentd.schemas.common import Description, Name, ProjectId, Strict, Uuid

# Address text is parsed by the service; this only bounds it. List lengths here only cap
# the body: the service answers the documented limits with Neutron's error types.
AddressText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LIST_CAP = 256
Ipv6Mode = Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"]


class PoolBody(Strict):
    start: AddressText
    end: AddressText


class RouteBody(Strict):
    destination: AddressText
    nexthop: AddressText


class SubnetCreate(Strict):
    network_id: Uuid
    cidr: AddressText
    ip_version: Literal[4, 6]
    name: Name = ""
    description: Description | None = None
    segment_id: Uuid | None = None
    gateway_ip: AddressText | None = None
    allocation_pools: Annotated[list[PoolBody], Field(max_length=LIST_CAP)] | None = None
    dns_nameservers: Annotated[list[AddressText], Field(max_length=LIST_CAP)] | None = None
    host_routes: Annotated[list[RouteBody], Field(max_length=LIST_CAP)] | None = None
    enable_dhcp: bool = True
    ipv6_ra_mode: Ipv6Mode | None = None
    ipv6_address_mode: Ipv6Mode | None = None
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class SubnetUpdate(Strict):
    name: Name = None
    description: Description | None = None
    segment_id: Uuid | None = None
    gateway_ip: AddressText | None = None
    allocation_pools: Annotated[list[PoolBody], Field(max_length=LIST_CAP)] = None
    dns_nameservers: Annotated[list[AddressText], Field(max_length=LIST_CAP)] | None = None
    host_routes: Annotated[list[RouteBody], Field(max_length=LIST_CAP)] | None = None
    enable_dhcp: bool = None


SUBNET_READ_ONLY = {
    "id", "network_id", "cidr", "ip_version", "project_id", "tenant_id", "created_at",
    "updated_at", "revision_number", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id",
    "service_types",
}
