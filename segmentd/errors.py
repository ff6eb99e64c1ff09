"""Domain errors. The class name is the `type` of Neutron's error body, so names are API."""


class SegmentdError(Exception):
    """Base of every error the API renders; the message template lives on the class."""

    status = 500
    message = "An unknown error occurred."
    headers: dict[str, str] | None = None

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        super().__init__(self.message.format(**kwargs))

    @property
    def type(self) -> str:
        return type(self).__name__


class BadRequest(SegmentdError):
    status = 400
    message = "Bad {resource} request: {msg}."


class NotAuthenticated(SegmentdError):
    """No token, or one that is unknown, expired or revoked: which one is only logged."""

    status = 401
    message = "Authentication required."


class NotAuthorized(SegmentdError):
    status = 403
    message = "Not authorized."


class NotFound(SegmentdError):
    status = 404
    message = "An unknown exception occurred."


class Conflict(SegmentdError):
    status = 409
    message = "A conflict occurred."


class InUse(Conflict):
    message = "The resource is in use."


class PreconditionFailed(SegmentdError):
    status = 412
    message = "Precondition failed."


class ServiceUnavailable(SegmentdError):
    status = 503
    message = "The service is unavailable."


class DatabaseContention(ServiceUnavailable):
    """The database kept choosing this request's transaction as a deadlock victim; nothing
    of it was committed, and the same request may simply be sent again."""

    message = ("The request conflicted with concurrent changes {attempts} times; nothing was "
               "changed, retry it.")
    headers = {"Retry-After": "1"}


class IdentityUnavailable(ServiceUnavailable):
    """Keystone cannot be asked about a token this process has not validated lately."""

    message = ("The identity service cannot be reached to validate the token; retry after "
               "{retry_after} second(s).")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.headers = {"Retry-After": str(kwargs["retry_after"])}


class InvalidInput(BadRequest):
    message = "Invalid input for operation: {error_message}."


class HTTPBadRequest(BadRequest):
    """Payload errors: what Neutron's API layer reports for malformed attributes."""

    message = "{msg}"


class MalformedRequestBody(BadRequest):
    message = "Malformed request body: {reason}."


class PolicyNotAuthorized(NotAuthorized):
    message = "rule:{action} is disallowed by policy"


class NetworkNotFound(NotFound):
    message = "Network {net_id} could not be found."


class SegmentNotFound(NotFound):
    message = "Segment {segment_id} could not be found."


class HTTPNotFound(NotFound):
    message = "The resource could not be found."


class VlanIdInUse(InUse):
    message = (
        "Unable to create the network. The VLAN {vlan_id} on physical network "
        "{physical_network} is in use."
    )


class TunnelIdInUse(InUse):
    message = "Unable to create the network. The tunnel ID {tunnel_id} is in use."


class FlatNetworkInUse(InUse):
    message = (
        "Unable to create the flat network. Physical network {physical_network} is in use."
    )


class TokenNameInUse(Conflict):
    message = "A token named '{name}' already exists."


class SegmentInUse(InUse):
    message = "Segment '{segment_id}' cannot be deleted: {reason}."


class SubnetNotFound(NotFound):
    message = "Subnet {subnet_id} could not be found."


class SubnetInUse(InUse):
    message = "Unable to complete operation on subnet {subnet_id}: {reason}."


class NetworkMTUSubnetConflict(Conflict):
    message = "MTU of {net_id} is not valid, subnet requires a minimum of {mtu}"


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool {pool} is not valid."


class OutOfBoundsAllocationPool(BadRequest):
    message = "The allocation pool {pool} spans beyond the subnet cidr {subnet_cidr}."


class OverlappingAllocationPools(BadRequest):
    """Neutron answers 409; an overlap within one request is a bad request."""

    message = "Found overlapping allocation pools: {pool_1} and {pool_2} for subnet {subnet_cidr}."


class GatewayConflictWithAllocationPools(BadRequest):
    """Neutron answers 409; a gateway inside the pools asked for is a bad request."""

    message = "Gateway ip {ip_address} conflicts with allocation pool {pool}."


class DNSNameServersExhausted(BadRequest):
    message = "Unable to complete operation for the subnet. The number of DNS nameservers exceeds the limit {quota}."


class HostRoutesExhausted(BadRequest):
    message = "Unable to complete operation for the subnet. The number of host routes exceeds the limit {quota}."


class NetworkIdsDontMatch(BadRequest):
    message = "The subnet's network id, '{subnet_network}', doesn't match the segment's network id, '{segment_id}'."


class SubnetsNotAllAssociatedWithSegments(BadRequest):
    message = "All of the subnets on network '{network_id}' must either all be associated with segments or all not associated with any segment."


class SubnetSegmentAssociationChangeNotAllowed(BadRequest):
    message = "A subnet that is already associated with a segment cannot change its segment association."


class NoUpdateSubnetWhenMultipleSegmentsOnNetwork(BadRequest):
    message = "The network '{network_id}' has multiple segments; the segment association of its subnet cannot be changed."


class NoNetworkAvailable(ServiceUnavailable):
    message = "Unable to create the network. No project network is available for allocation."


class RevisionNumberConstraintFailed(PreconditionFailed):
    message = "Constrained to {constraint}, but current revision is {current}"


class SegmentsSetInConjunctionWithProviders(InvalidInput):
    message = "Segments and provider values cannot both be set."


class SegmentsContainDuplicateEntry(InvalidInput):
    message = "Duplicate segment entry in request."


class ProviderUpdateNotSupported(InvalidInput):
    message = (
        "Invalid input for operation: Plugin does not support updating the following "
        "provider network attributes: {attrs}."
    )


class RequestEntityTooLarge(SegmentdError):
    status = 413
    message = "Request body is larger than {limit} bytes."


class OverLimit(SegmentdError):
    """Too many requests for one credential; Retry-After says when to come back."""

    status = 429
    message = "Too many requests: retry after {retry_after} second(s)."

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.headers = {"Retry-After": str(kwargs["retry_after"])}


class AgentNotFound(NotFound):
    message = "Agent {id} could not be found."


class OvnDriftReportNotFound(NotFound):
    message = "No OVN drift check has run yet."


class HostClaimedByChassis(Conflict):
    message = "Host {host} is held by OVN chassis {chassis}."


class TooManyAgents(Conflict):
    """A report of a new agent type for a host that has as many agents as a host may."""

    message = "Host {host} has {limit} agents, as many as a host may have; delete one first."


class OvnBackendNotConfigured(NotFound):
    message = "This server does not realize networks in OVN (backend is not \"ovn\")."


class HostNotFound(NotFound):
    message = "Host {host} could not be found."


class HostReportNotAllowed(NotAuthorized):
    """A token bound to one host reporting for another."""

    message = "This credential may report for host {bound} only, not {host}."


class EventSubscriptionNotFound(NotFound):
    message = "Event subscription {id} could not be found."


class EventTypeNotFound(NotFound):
    message = "Event type {type} could not be found."


# -- ports and addresses

class PortNotFound(NotFound):
    message = "Port {port_id} could not be found."


class NetworkInUse(InUse):
    message = (
        "Unable to complete operation on network {net_id}. There are one or more ports "
        "still in use on the network."
    )


class MacAddressInUse(InUse):
    message = "Unable to complete operation for network {net_id}. The mac address {mac} is in use."


class PortBound(InUse):
    message = (
        "Unable to complete operation on port {port_id}, port is already bound, port type: "
        "{vif_type}, old_mac {old_mac}, new_mac {new_mac}."
    )


class UnsupportedPortDeviceOwner(Conflict):
    message = "Operation {op} is not supported for device_owner {device_owner} on port {port_id}."


class MacAddressGenerationFailure(ServiceUnavailable):
    message = "Unable to generate unique mac on network {net_id}."


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network {net_id}."


class IpAddressAlreadyAllocated(Conflict):
    message = (
        "IP address {ip} already allocated in subnet {subnet_id}"
    )


class InvalidIpForSubnet(BadRequest):
    message = "IP address {ip_address} is not a valid IP for the specified subnet."


class InvalidIpForNetwork(BadRequest):
    message = (
        "IP address {ip_address} is not a valid IP for any of the subnets on the specified "
        "network."
    )


class HostNotConnectedToAnySegment(Conflict):
    message = (
        "Host {host} is not connected to any segments on routed provider network "
        "'{network_id}'.  It should be connected to one."
    )


class HostNotCompatibleWithFixedIps(Conflict):
    message = (
        "Host {host} is not connected to a segment where the existing fixed_ips on port "
        "{port_id} will function given the routed network topology."
    )


class FixedIpsSubnetsNotOnSameSegment(BadRequest):
    message = "Cannot allocate addresses from different segments."


class InvalidSharedSetting(Conflict):
    message = (
        "Unable to reconfigure sharing settings for network {network}. Multiple tenants are "
        "using it."
    )
