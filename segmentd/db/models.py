"""Tables. The naming convention keeps constraint names identical on every database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from segmentd import constants as c

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def Name(length: int) -> String:
    """A name compared byte for byte: MariaDB's default collation would fold case and
    accents, making `physnet1` and `PHYSNET1`, or hosts `h1` and `H1`, the same key."""
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Network(Base):
    """A layer-2 network; its realisation is its segments."""

    __tablename__ = "networks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(c.PROJECT_ID_MAX_LEN), index=True)
    name: Mapped[str] = mapped_column(String(c.NAME_MAX_LEN), default="")
    description: Mapped[str] = mapped_column(String(c.DESCRIPTION_MAX_LEN), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=c.STATUS_ACTIVE)
    mtu: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class Segment(Base):
    """One L2 segment of a network, holding its segmentation-ID allocation.

    The allocation key (network_type, alloc_physnet, alloc_id) is unique: a taken ID is this
    row, a free ID is no row at all, so range size costs nothing. alloc_physnet is the
    physnet or "" for tunnels (NULLs would be distinct in a unique key); alloc_id is the
    segmentation ID, or 0 for flat segments (one flat segment per physnet).
    """

    __tablename__ = "segments"
    __table_args__ = (
        UniqueConstraint("network_type", "alloc_physnet", "alloc_id"),
        UniqueConstraint("network_id", "segment_index"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE")
    )
    network_type: Mapped[str] = mapped_column(Name(c.NETWORK_TYPE_MAX_LEN))
    physical_network: Mapped[str | None] = mapped_column(Name(c.PHYSNET_MAX_LEN))
    segmentation_id: Mapped[int | None] = mapped_column(Integer)
    alloc_physnet: Mapped[str] = mapped_column(Name(c.PHYSNET_MAX_LEN))
    alloc_id: Mapped[int] = mapped_column(Integer)
    segment_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(c.NAME_MAX_LEN))
    description: Mapped[str] = mapped_column(String(c.DESCRIPTION_MAX_LEN), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


Index("ix_segments_physical_network", Segment.physical_network)


class Subnet(Base):
    """An IP range on a network, optionally pinned to one segment (routed networks).

    Pools, DNS servers and host routes are short bounded lists read and written with the
    subnet, so they are JSON columns; addresses themselves are never stored one per row.
    A segment with subnets cannot be deleted (the foreign key restricts too).
    """

    __tablename__ = "subnets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(c.PROJECT_ID_MAX_LEN), index=True)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("segments.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(c.NAME_MAX_LEN), default="")
    description: Mapped[str] = mapped_column(String(c.DESCRIPTION_MAX_LEN), default="")
    cidr: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)
    gateway_ip: Mapped[str | None] = mapped_column(String(64))
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    allocation_pools: Mapped[list] = mapped_column(JSON)
    dns_nameservers: Mapped[list] = mapped_column(JSON)
    host_routes: Mapped[list] = mapped_column(JSON)  # as the user gave them
    # Routes to the subnets on the network's other segments (segments-peer-subnet-host-routes),
    # recomputed whenever a sibling changes; shown after the user's.
    peer_routes: Mapped[list] = mapped_column(JSON, default=list)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(16))
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class Port(Base):
    """A port on a network: its MAC, its binding to a host and the segment that host reaches.

    Addresses live in ip_allocations, one row per address actually given to a port.
    """

    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(c.PROJECT_ID_MAX_LEN), index=True)
    # RESTRICT: a network is deleted only after its ports are (NetworkInUse otherwise).
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(c.NAME_MAX_LEN), default="")
    description: Mapped[str] = mapped_column(String(c.DESCRIPTION_MAX_LEN), default="")
    mac_address: Mapped[str] = mapped_column(String(17))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    device_id: Mapped[str] = mapped_column(String(c.DEVICE_FIELD_MAX_LEN), default="", index=True)
    device_owner: Mapped[str] = mapped_column(String(c.DEVICE_FIELD_MAX_LEN), default="",
                                              index=True)
    host: Mapped[str] = mapped_column(Name(c.HOST_MAX_LEN), default="", index=True)  # "" unbound
    vnic_type: Mapped[str] = mapped_column(String(32), default="normal")
    profile: Mapped[dict] = mapped_column(JSON, default=dict)
    vif_type: Mapped[str] = mapped_column(String(32), default=c.VIF_TYPE_UNBOUND)
    # ACTIVE while bound (vif_type ovs) and admin_state_up; DOWN otherwise. Stored, so that
    # lists filter and sort on it; every write that changes either input sets it.
    status: Mapped[str] = mapped_column(String(16), default=c.STATUS_DOWN)
    # The segment the port is bound to; a segment with bound ports cannot be deleted.
    bound_segment_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("segments.id", ondelete="RESTRICT"), index=True
    )
    ip_allocation: Mapped[str] = mapped_column(String(16), default=c.IP_ALLOCATION_IMMEDIATE)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class IpAllocation(Base):
    """One address given to one port. Free addresses are never stored: the key on
    (subnet, address) is what makes concurrent allocators in any process never collide."""

    __tablename__ = "ip_allocations"

    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id", ondelete="RESTRICT"), primary_key=True
    )
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)  # canonical text
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), index=True
    )
    network_id: Mapped[str] = mapped_column(String(36), index=True)


class Token(Base):
    """An API credential. Only a SHA-256 hash of the secret is kept."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(c.NAME_MAX_LEN), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(String(c.PROJECT_ID_MAX_LEN))
    roles: Mapped[str] = mapped_column(String(255))  # comma-separated
    host: Mapped[str | None] = mapped_column(String(c.NAME_MAX_LEN))  # reports for this host only
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditEvent(Base):
    """One mutating request, allowed or refused: who, what, on which resource, and how it ended."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(DateTime, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    token_id: Mapped[str | None] = mapped_column(String(36))
    user_id: Mapped[str | None] = mapped_column(String(c.NAME_MAX_LEN))
    user_name: Mapped[str | None] = mapped_column(String(255))  # migration 0010
    project_id: Mapped[str | None] = mapped_column(String(c.PROJECT_ID_MAX_LEN), index=True)
    roles: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # success | denied | rejected | error
    status: Mapped[int] = mapped_column(Integer)

# An ever-growing sequence: BIGINT where the database has it, SQLite's rowid alias otherwise.
Sequence = BigInteger().with_variant(Integer, "sqlite")
# JSON documents that may pass 64 KiB (MariaDB's TEXT): MEDIUMTEXT there (migration 0009).
Document = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


class Host(Base):
    """A host some agent reported; its row is the lock that serialises changes to its reach."""

    __tablename__ = "hosts"

    name: Mapped[str] = mapped_column(Name(c.HOST_MAX_LEN), primary_key=True)
    reported_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # newest heartbeat
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # The OVN Southbound chassis that claimed this hostname: such a host stays alive while
    # the chassis exists, and no other chassis may claim it.
    chassis: Mapped[str | None] = mapped_column(String(255), unique=True)


class Agent(Base):
    """One agent on a host and what it last reported (Neutron's agents table)."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("host", "agent_type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host: Mapped[str] = mapped_column(
        Name(c.HOST_MAX_LEN), ForeignKey("hosts.name", ondelete="CASCADE")
    )
    agent_type: Mapped[str] = mapped_column(Name(c.NAME_MAX_LEN))
    binary: Mapped[str] = mapped_column(String(c.NAME_MAX_LEN))
    description: Mapped[str] = mapped_column(String(c.DESCRIPTION_MAX_LEN), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    configurations: Mapped[str] = mapped_column(Document)  # the report's JSON, canonical form
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # Set by the sweeper once the heartbeat is older than the grace period; a report clears it.
    expired: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class HostReach(Base):
    """What a host reaches, keyed like a segment's allocation: (network_type, physnet).

    A physnet P is two rows, (flat, P) and (vlan, P); a tunnel type T is (T, ""). A segment
    is reached by a host exactly when (segment.network_type, segment.alloc_physnet) is one
    of the host's rows, so segment-host pairs are a join on keys both tables index.
    """

    __tablename__ = "host_reach"

    host: Mapped[str] = mapped_column(
        Name(c.HOST_MAX_LEN), ForeignKey("hosts.name", ondelete="CASCADE"), primary_key=True
    )
    network_type: Mapped[str] = mapped_column(Name(c.NETWORK_TYPE_MAX_LEN), primary_key=True)
    physnet: Mapped[str] = mapped_column(Name(c.PHYSNET_MAX_LEN), primary_key=True)


Index("ix_host_reach_network_type_physnet_host", HostReach.network_type, HostReach.physnet,
      HostReach.host)


class OutboxEvent(Base):
    """A committed change, written in the transaction that made it; delivered after commit."""

    __tablename__ = "outbox_events"

    seq: Mapped[int] = mapped_column(Sequence, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(c.HOST_MAX_LEN))
    project_id: Mapped[str | None] = mapped_column(String(c.PROJECT_ID_MAX_LEN))
    # Events with one ordering key reach each target in seq order: a segment's events share
    # its network's key, so no segment event overtakes the network's creation or deletion.
    ordering_key: Mapped[str] = mapped_column(String(300))
    time: Mapped[datetime] = mapped_column(DateTime, index=True)
    body: Mapped[str] = mapped_column(Document)  # the JSON document delivered, schema-checked
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)


class EventDelivery(Base):
    """One event for one target (a webhook, the bus, in-process subscribers)."""

    __tablename__ = "event_deliveries"

    id: Mapped[int] = mapped_column(Sequence, primary_key=True, autoincrement=True)
    event_seq: Mapped[int] = mapped_column(
        Sequence, ForeignKey("outbox_events.seq", ondelete="CASCADE"), index=True
    )
    target: Mapped[str] = mapped_column(String(64))
    ordering_key: Mapped[str] = mapped_column(String(300))  # copied from the event
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)


# The dispatcher's "oldest events not yet fanned out" is a range scan of this index.
Index("ix_outbox_events_unfanned", OutboxEvent.fanned_out, OutboxEvent.seq)
Index("ix_event_deliveries_pending", EventDelivery.delivered_at, EventDelivery.next_attempt_at)
Index("ix_event_deliveries_order", EventDelivery.target, EventDelivery.ordering_key,
      EventDelivery.event_seq)


class EventSubscription(Base):
    """A webhook: where to POST events of which types, and the secret that signs them."""

    __tablename__ = "event_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(c.NAME_MAX_LEN), default="")
    url: Mapped[str] = mapped_column(String(c.URL_MAX_LEN))
    secret: Mapped[str] = mapped_column(String(c.SECRET_MAX_LEN))  # write-only in the API
    event_types: Mapped[str] = mapped_column(Text)  # JSON list
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class DispatchLock(Base):
    """One row; whoever holds its row lock fans out and claims deliveries (keeps order)."""

    __tablename__ = "dispatch_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class OvnDriftCheck(Base):
    """One row: the last drift report, and when a process last claimed a check round."""

    __tablename__ = "ovn_drift_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime)
    mode: Mapped[str | None] = mapped_column(String(16))
    report: Mapped[str | None] = mapped_column(Text)


class OvnChassisWatch(Base):
    """One row: which process watches the Southbound chassis (a lease), and the chassis
    it refused (a hostname another chassis holds, or data a host report may not carry)."""

    __tablename__ = "ovn_chassis_watch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    conflicts: Mapped[str | None] = mapped_column(Text)  # JSON list
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)


networks = Network.__table__
segments = Segment.__table__
subnets = Subnet.__table__
ports = Port.__table__
ip_allocations = IpAllocation.__table__
tokens = Token.__table__
audit_events = AuditEvent.__table__
hosts = Host.__table__
agents = Agent.__table__
host_reach = HostReach.__table__
outbox_events = OutboxEvent.__table__
event_deliveries = EventDelivery.__table__
event_subscriptions = EventSubscription.__table__
dispatch_lock = DispatchLock.__table__
ovn_drift_checks = OvnDriftCheck.__table__
ovn_chassis_watch = OvnChassisWatch.__table__
