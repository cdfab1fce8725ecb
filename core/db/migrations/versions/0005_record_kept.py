"""The record says what happened and is kept: counts of queued and would-be actions.

`rule_executions.actions_queued` (proposals put to a person) and `actions_would` (what a
dry run would have done) beside `actions_taken` and `actions_skipped`.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rule_executions") as batch:
        batch.add_column(
            sa.Column("actions_queued", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("actions_would", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("rule_executions") as batch:
        batch.drop_column("actions_would")
        batch.drop_column("actions_queued")
