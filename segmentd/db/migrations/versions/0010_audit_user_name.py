"""Audit rows name the user as well as its id

A Keystone user's id is a UUID that says little in a change log; the row now keeps the
user's name beside it (for segmentd's own tokens both are the token's name). Rows written
before this have no name.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("user_name", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("user_name")
