"""hosts claimed by an OVN Southbound chassis; the chassis watcher's lease and conflicts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("chassis", sa.String(255), nullable=True))
        batch.create_unique_constraint("uq_hosts_chassis", ["chassis"])
    op.create_table(
        "ovn_chassis_watch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("conflicts", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ovn_chassis_watch"),
    )


def downgrade() -> None:
    op.drop_table("ovn_chassis_watch")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_constraint("uq_hosts_chassis", type_="unique")
        batch.drop_column("chassis")
