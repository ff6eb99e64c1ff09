"""MariaDB/MySQL: event bodies and agent configurations as MEDIUMTEXT

TEXT holds 65,535 bytes on MariaDB and MySQL: an agent whose configurations are near the
report limit, or the host.segments_changed event of a host reaching thousands of
physnets, did not fit and the report failed. MEDIUMTEXT holds 16 MiB. PostgreSQL's and
SQLite's TEXT have no such limit; nothing changes there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (("outbox_events", "body"), ("agents", "configurations"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=mysql.MEDIUMTEXT(), existing_type=sa.Text(),
                        existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Text(), existing_type=mysql.MEDIUMTEXT(),
                        existing_nullable=False)
