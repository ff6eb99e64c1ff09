"""Names and numbers the whole service shares, each with the reason it has that value."""

TYPE_FLAT = "flat"
TYPE_VLAN = "vlan"
TYPE_VXLAN = "vxlan"
TYPE_GENEVE = "geneve"
NETWORK_TYPES = (TYPE_FLAT, TYPE_VLAN, TYPE_VXLAN, TYPE_GENEVE)
TUNNEL_TYPES = (TYPE_VXLAN, TYPE_GENEVE)
PHYSICAL_TYPES = (TYPE_FLAT, TYPE_VLAN)

VLAN_ID_MIN = 1  # 0 means "untagged" in 802.1Q
VLAN_ID_MAX = 4094  # 4095 is reserved by 802.1Q
VNI_MIN = 1  # VNI 0 is not used for tenant traffic
VNI_MAX = 2**24 - 1  # VXLAN and Geneve VNIs are 24 bits

# Encapsulation overhead subtracted from the physical MTU, as Neutron computes it.
IP_HEADER_LENGTH = {4: 20, 6: 40}
VXLAN_ENCAP_OVERHEAD = 30
GENEVE_DEFAULT_MAX_HEADER_SIZE = 30  # Neutron's default; OVN needs at least 38
MTU_MIN_IPV4 = 68  # RFC 791: every IPv4 host must handle 68-byte datagrams
MTU_MIN_IPV6 = 1280  # RFC 8200: every IPv6 link carries 1280-byte packets
MTU_MAX = 65535  # largest IPv4 total length

# Field lengths from neutron-lib's attribute maps.
NAME_MAX_LEN = 255
DESCRIPTION_MAX_LEN = 255
PHYSNET_MAX_LEN = 64
NETWORK_TYPE_MAX_LEN = 32
PROJECT_ID_MAX_LEN = 255
HOST_MAX_LEN = 255  # Neutron's host column
URL_MAX_LEN = 2048  # webhook URLs
SECRET_MAX_LEN = 255  # webhook secrets

# The allocation key of a segment without a physical network (tunnels): SQL unique keys
# treat NULLs as distinct, so the key column stores this instead of NULL.
NO_PHYSNET_KEY = ""
# The allocation ID of a flat segment: one flat segment per physnet is one key per physnet.
FLAT_ALLOC_ID = 0

ALLOCATION_ATTEMPTS = 8  # bounded retries when concurrent writers take the same ID
# Random IDs probed before scanning for the next gap: in a nearly full range "the next gap
# after a random start" sends concurrent allocators to the same few IDs; random probes
# spread them over all free IDs. Each probe is one index lookup, evaluated only if needed.
ALLOCATION_PROBES = 8

STATUS_ACTIVE = "ACTIVE"
STATUS_DOWN = "DOWN"

EVENT_NETWORK_CREATED = "network.created"
EVENT_NETWORK_UPDATED = "network.updated"
EVENT_NETWORK_DELETED = "network.deleted"
EVENT_SEGMENT_CREATED = "segment.created"
EVENT_SEGMENT_UPDATED = "segment.updated"
EVENT_SEGMENT_DELETED = "segment.deleted"
EVENT_SUBNET_CREATED = "subnet.created"
EVENT_SUBNET_UPDATED = "subnet.updated"
EVENT_SUBNET_DELETED = "subnet.deleted"
EVENT_PORT_CREATED = "port.created"
EVENT_PORT_UPDATED = "port.updated"
EVENT_PORT_DELETED = "port.deleted"
EVENT_AGENT_CREATED = "agent.created"
EVENT_AGENT_UPDATED = "agent.updated"
EVENT_AGENT_DELETED = "agent.deleted"
EVENT_HOST_SEGMENTS_CHANGED = "host.segments_changed"
EVENT_TYPES = (
    EVENT_NETWORK_CREATED, EVENT_NETWORK_UPDATED, EVENT_NETWORK_DELETED,
    EVENT_SEGMENT_CREATED, EVENT_SEGMENT_UPDATED, EVENT_SEGMENT_DELETED,
    EVENT_SUBNET_CREATED, EVENT_SUBNET_UPDATED, EVENT_SUBNET_DELETED,
    EVENT_PORT_CREATED, EVENT_PORT_UPDATED, EVENT_PORT_DELETED,
    EVENT_AGENT_CREATED, EVENT_AGENT_UPDATED, EVENT_AGENT_DELETED,
    EVENT_HOST_SEGMENTS_CHANGED,
)

# Host reports: what one report may carry (a report is rejected whole beyond these).
REPORT_MAX_MAPPINGS = 256  # physnets per mapping kind
REPORT_MAX_DEVICES = 64  # devices per physnet in device_mappings
# What one host's reports may make segmentd keep. A host runs a handful of agents (one per
# agent type) whose configurations are a few hundred bytes: the bounds are generous, and
# they make what a host's credential can store bounded.
HOST_MAX_AGENTS = 16
REPORT_MAX_CONFIGURATION_BYTES = 65_536  # an agent's configurations, as stored (JSON)
KNOWN_TUNNEL_TYPES = ("vxlan", "geneve", "gre")  # gre is accepted and reaches nothing
WEBHOOK_TARGET_PREFIX = "webhook:"  # a subscription's delivery target is this + its id

# The agent an OVN Southbound chassis becomes (Neutron's names); only the chassis watcher
# writes it, and it is alive while the chassis row exists.
OVN_AGENT_TYPE = "OVN Controller agent"
OVN_AGENT_BINARY = "ovn-controller"

# Ports.
MAC_PREFIX = (0xFA, 0x16, 0x3E)  # Neutron's default base_mac: locally administered, unicast
MAC_ATTEMPTS = 16  # a generated MAC taken on the network is drawn again, this many times
MAX_FIXED_IPS_PER_PORT = 5  # Neutron's max_fixed_ips_per_port default
DEVICE_FIELD_MAX_LEN = 255  # device_id and device_owner
BINDING_PROFILE_MAX_LEN = 4096  # bytes of binding:profile as JSON
# Ports a network's own services create; they go with the network, any other port blocks
# its deletion (NetworkInUse), as in Neutron.
AUTO_DELETE_DEVICE_OWNERS = ("network:dhcp", "network:distributed")
# A router's interface keeps its subnet in use even where other ports' addresses go with it.
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:ha_router_replicated_interface",
                           "network:router_interface_distributed")
VNIC_TYPES = (
    "normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder",
    "smart-nic", "vdpa", "accelerator-direct", "accelerator-direct-physical", "remote-managed",
)
VIF_TYPE_OVS = "ovs"  # bound: the host reaches one of the port's segments
VIF_TYPE_UNBOUND = "unbound"  # no host
VIF_TYPE_BINDING_FAILED = "binding_failed"  # a host that reaches none of them
IP_ALLOCATION_IMMEDIATE = "immediate"
IP_ALLOCATION_DEFERRED = "deferred"
IP_ALLOCATION_NONE = "none"
# IP allocation: random addresses tried before the subnet's taken addresses are read and
# a free one chosen among them. In a sparse subnet (a /8, a /64) the first try succeeds.
IP_RANDOM_TRIES = 3
IP_SCAN_ATTEMPTS = 12  # scans of a dense subnet before giving up to concurrent writers
IP_SCAN_SPREAD = 32  # a scan picks at random among this many free addresses
