"""index the outbox by (fanned_out, seq) so the dispatcher finds new events at once

The dispatcher asks for the oldest events not yet fanned out. An index on fanned_out
alone left PostgreSQL walking the primary key past every retained event (tens of
milliseconds per wake-up once a few thousand events are kept); the composite index
answers it with a range scan whatever the retention.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_events_unfanned", "outbox_events", ["fanned_out", "seq"])
    op.drop_index("ix_outbox_events_fanned_out", table_name="outbox_events")


def downgrade() -> None:
    op.create_index("ix_outbox_events_fanned_out", "outbox_events", ["fanned_out"])
    op.drop_index("ix_outbox_events_unfanned", table_name="outbox_events")
