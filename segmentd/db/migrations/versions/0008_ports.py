"""ports, their addresses, and the peer routes of subnets on segments

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _name(length: int):
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("subnets") as batch:
        batch.add_column(sa.Column("peer_routes", sa.JSON(), nullable=True))
    op.execute("UPDATE subnets SET peer_routes = '[]'")
    with op.batch_alter_table("subnets") as batch:
        batch.alter_column("peer_routes", existing_type=sa.JSON(), nullable=False)
    op.create_table(
        "ports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("network_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("mac_address", sa.String(17), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("device_id", sa.String(255), nullable=False),
        sa.Column("device_owner", sa.String(255), nullable=False),
        sa.Column("host", _name(255), nullable=False),
        sa.Column("vnic_type", sa.String(32), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("vif_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bound_segment_id", sa.String(36), nullable=True),
        sa.Column("ip_allocation", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="RESTRICT",
                                name="fk_ports_network_id_networks"),
        sa.ForeignKeyConstraint(["bound_segment_id"], ["segments.id"], ondelete="RESTRICT",
                                name="fk_ports_bound_segment_id_segments"),
        sa.PrimaryKeyConstraint("id", name="pk_ports"),
        sa.UniqueConstraint("network_id", "mac_address", name="uq_ports_network_id_mac_address"),
    )
    for column in ("project_id", "network_id", "device_id", "device_owner", "host",
                   "bound_segment_id"):
        op.create_index(f"ix_ports_{column}", "ports", [column])
    op.create_table(
        "ip_allocations",
        sa.Column("subnet_id", sa.String(36), nullable=False),
        sa.Column("ip_address", sa.String(64), nullable=False),
        sa.Column("port_id", sa.String(36), nullable=False),
        sa.Column("network_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(["subnet_id"], ["subnets.id"], ondelete="RESTRICT",
                                name="fk_ip_allocations_subnet_id_subnets"),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE",
                                name="fk_ip_allocations_port_id_ports"),
        sa.PrimaryKeyConstraint("subnet_id", "ip_address", name="pk_ip_allocations"),
    )
    op.create_index("ix_ip_allocations_port_id", "ip_allocations", ["port_id"])
    op.create_index("ix_ip_allocations_network_id", "ip_allocations", ["network_id"])


def downgrade() -> None:
    op.drop_table("ip_allocations")
    op.drop_table("ports")
    with op.batch_alter_table("subnets") as batch:
        batch.drop_column("peer_routes")
