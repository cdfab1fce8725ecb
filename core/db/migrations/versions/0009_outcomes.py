"""Outcomes: what each applied change did, measured against what would have happened.

`rex_suggestion_performance` (the seed's: baseline, current metrics, deltas,
is_improving, last comparison) becomes the outcome of every applied change, a rule's as
well as a suggestion's: `suggestion_id` may be empty, and it gains the action measured
(`action_id`, unique), its account, entity and kind, the account-local day of the
change, and the headline checkpoint's effects, verdict and learning mark
(core/db/models.py `RexSuggestionPerformance`). Rows from 0008 take their action,
account, entity and kind from their suggestion. `rex_outcome_checkpoints` holds each
checkpoint (1, 3, 7, 14 days after), one per outcome and number of days.

SQLite changes a column's nullability and adds foreign keys only by copying the table
(batch mode); nothing points into `rex_suggestion_performance` before this revision.

Downgrading drops the checkpoints, deletes the outcomes of rule actions (rows without a
suggestion: 0008 had none) and drops the columns.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
COLUMNS = (
    ("kind", sa.String(30)),
    ("changed_on", sa.Date()),
    ("effects", JSON),
    ("verdict", sa.String(40)),
    ("learning", sa.Boolean()),
)
LINKS = (  # column, the table it points to, on delete
    ("action_id", "action_history", "SET NULL"),
    ("account_id", "ad_accounts", "RESTRICT"),
    ("entity_id", "ad_entities", "SET NULL"),
)


def upgrade() -> None:
    with op.batch_alter_table("rex_suggestion_performance") as batch:
        batch.alter_column("suggestion_id", existing_type=sa.Integer(), nullable=True)
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        for name, table, ondelete in LINKS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
            batch.create_foreign_key(
                op.f(f"fk_rex_suggestion_performance_{name}_{table}"),
                table,
                [name],
                ["id"],
                ondelete=ondelete,
            )
        batch.create_unique_constraint(
            op.f("uq_rex_suggestion_performance_action_id"), ["action_id"]
        )
        batch.create_index(
            op.f("ix_rex_suggestion_performance_account_id"), ["account_id"], unique=False
        )
    for column, source in (("action_id", "action_id"), ("account_id", "account_id"),
                           ("entity_id", "entity_id"), ("kind", "kind")):  # fmt: skip
        op.execute(
            f"UPDATE rex_suggestion_performance SET {column} = (SELECT s.{source} FROM "
            "rex_suggestions s WHERE s.id = rex_suggestion_performance.suggestion_id)"
        )
    op.create_table(
        "rex_outcome_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("performance_id", sa.Integer(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("measured_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("learning", sa.Boolean(), nullable=False),
        sa.Column("current_metrics", JSON, nullable=True),
        sa.Column("expected_metrics", JSON, nullable=True),
        sa.Column("deltas", JSON, nullable=True),
        sa.Column("effects", JSON, nullable=True),
        sa.Column("comparison", JSON, nullable=True),
        sa.Column("is_improving", sa.Boolean(), nullable=True),
        sa.Column("verdict", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["performance_id"],
            ["rex_suggestion_performance.id"],
            name=op.f("fk_rex_outcome_checkpoints_performance_id_rex_suggestion_performance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rex_outcome_checkpoints")),
        sa.UniqueConstraint(
            "performance_id", "days", name=op.f("uq_rex_outcome_checkpoints_performance_id_days")
        ),
    )


def downgrade() -> None:
    op.drop_table("rex_outcome_checkpoints")
    op.execute("DELETE FROM rex_suggestion_performance WHERE suggestion_id IS NULL")
    with op.batch_alter_table("rex_suggestion_performance") as batch:
        batch.drop_index(op.f("ix_rex_suggestion_performance_account_id"))
        batch.drop_constraint(op.f("uq_rex_suggestion_performance_action_id"), type_="unique")
        for name, table, _ondelete in reversed(LINKS):
            batch.drop_constraint(
                op.f(f"fk_rex_suggestion_performance_{name}_{table}"), type_="foreignkey"
            )
            batch.drop_column(name)
        for name, _type in reversed(COLUMNS):
            batch.drop_column(name)
        batch.alter_column("suggestion_id", existing_type=sa.Integer(), nullable=False)
