"""Tables. The naming convention keeps constraint names identical on every database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from segmentd import constants as c

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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
    network_type: Mapped[str] = mapped_column(String(c.NETWORK_TYPE_MAX_LEN))
    physical_network: Mapped[str | None] = mapped_column(String(c.PHYSNET_MAX_LEN))
    segmentation_id: Mapped[int | None] = mapped_column(Integer)
    alloc_physnet: Mapped[str] = mapped_column(String(c.PHYSNET_MAX_LEN))
    alloc_id: Mapped[int] = mapped_column(Integer)
    segment_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(c.NAME_MAX_LEN))
    description: Mapped[str] = mapped_column(String(c.DESCRIPTION_MAX_LEN), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


Index("ix_segments_physical_network", Segment.physical_network)


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
    project_id: Mapped[str | None] = mapped_column(String(c.PROJECT_ID_MAX_LEN), index=True)
    roles: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # success | denied | rejected | error
    status: Mapped[int] = mapped_column(Integer)

networks = Network.__table__
segments = Segment.__table__
tokens = Token.__table__
audit_events = AuditEvent.__table__
