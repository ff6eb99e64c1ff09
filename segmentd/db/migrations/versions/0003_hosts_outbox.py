"""hosts, agents, host reach, the event outbox, deliveries and webhook subscriptions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def name(length: int):
    """Byte-for-byte comparison on MariaDB too (its default collation folds case)."""
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql")


def upgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        # Segments join host reach on these columns: same (binary) collation on both sides.
        for column, length, nullable in (("network_type", 32, False),
                                         ("physical_network", 64, True),
                                         ("alloc_physnet", 64, False)):
            op.alter_column("segments", column, type_=name(length),
                            existing_type=sa.String(length), existing_nullable=nullable)
    op.create_table(
        "hosts",
        sa.Column("name", name(255), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_hosts"),
    )
    op.create_index("ix_hosts_reported_at", "hosts", ["reported_at"])
    op.create_table(
        "agents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("host", name(255), nullable=False),
        sa.Column("agent_type", name(255), nullable=False),
        sa.Column("binary", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("configurations", sa.Text(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("expired", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["host"], ["hosts.name"], name="fk_agents_host_hosts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("host", "agent_type", name="uq_agents_host_agent_type"),
    )
    op.create_index("ix_agents_heartbeat_at", "agents", ["heartbeat_at"])
    op.create_table(
        "host_reach",
        sa.Column("host", name(255), nullable=False),
        sa.Column("network_type", name(32), nullable=False),
        sa.Column("physnet", name(64), nullable=False),
        sa.ForeignKeyConstraint(["host"], ["hosts.name"], name="fk_host_reach_host_hosts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("host", "network_type", "physnet", name="pk_host_reach"),
    )
    op.create_index("ix_host_reach_network_type_physnet_host", "host_reach",
                    ["network_type", "physnet", "host"])
    op.create_table(
        "outbox_events",
        sa.Column("seq", SEQUENCE, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=True),
        sa.Column("ordering_key", sa.String(300), nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fanned_out", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox_events"),
        sa.UniqueConstraint("id", name="uq_outbox_events_id"),
    )
    op.create_index("ix_outbox_events_time", "outbox_events", ["time"])
    op.create_index("ix_outbox_events_fanned_out", "outbox_events", ["fanned_out"])
    op.create_table(
        "event_deliveries",
        sa.Column("id", SEQUENCE, autoincrement=True, nullable=False),
        sa.Column("event_seq", SEQUENCE, nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("ordering_key", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["event_seq"], ["outbox_events.seq"],
                                name="fk_event_deliveries_event_seq_outbox_events",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_event_deliveries"),
    )
    op.create_index("ix_event_deliveries_event_seq", "event_deliveries", ["event_seq"])
    op.create_index("ix_event_deliveries_pending", "event_deliveries",
                    ["delivered_at", "next_attempt_at"])
    op.create_index("ix_event_deliveries_order", "event_deliveries",
                    ["target", "ordering_key", "event_seq"])
    op.create_table(
        "event_subscriptions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_subscriptions"),
    )
    lock = op.create_table(
        "dispatch_lock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dispatch_lock"),
    )
    op.bulk_insert(lock, [{"id": 1}])


def downgrade() -> None:
    for table in ("dispatch_lock", "event_subscriptions", "event_deliveries", "outbox_events",
                  "host_reach", "agents", "hosts"):
        op.drop_table(table)
