"""Write outcomes: when an intent was sent, an index to find unsettled writes, and who
runs a sync.

`action_history.sent_at` is set just before the call to Meta goes out (status
`sending`): an intent without it was never sent, so recovery can tell "never sent" from
"sent, answer lost". The status index serves the guard that holds back a new write to an
entity while an earlier one is unsettled. `sync_runs.owner` (host:pid) lets recovery
close the run of a process that was killed.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("action_history") as batch:
        batch.add_column(
            sa.Column("sent_at", core.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index("ix_action_history_status", ["status"], unique=False)
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("action_history") as batch:
        batch.drop_index("ix_action_history_status")
        batch.drop_column("sent_at")
