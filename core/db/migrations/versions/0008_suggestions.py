"""Suggestions: the finding, its evidence, the change it proposes, and its life.

`rex_suggestions` (the seed's: kind, title, detail, confidence, status) gains the
columns a suggestion needs (core/db/models.py `RexSuggestion`): its level, dimension and
segment, the proposed change (`action`), the evidence, the expected weekly profit with
its interval in the account currency's minor unit, and its lifecycle — status
new | queued | applied | dismissed | expired | superseded, the reason, who decided,
which suggestion superseded it, its approval and its action. The seed's status "open"
becomes "new". A partial unique index on the fingerprint (the change it proposes) keeps
two open suggestions for the same change out, whoever writes them.
`rex_suggestion_events` records every change of status.

PostgreSQL adds the columns and foreign keys in place. SQLite adds a foreign key only by
copying the table (batch mode), and dropping the old copy cascade-deletes the rows of
`rex_suggestion_performance` that point into it: those rows are saved first and written
back after (`_PerformanceKept`).

Downgrading drops the events table, the index and the columns, and makes "new" "open"
again.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
OPEN = "status IN ('new', 'queued')"
COLUMNS = (
    ("level", sa.String(10)),
    ("dimension", sa.String(40)),
    ("segment", JSON),
    ("direction", sa.String(10)),
    ("fingerprint", sa.String(300)),
    ("action", JSON),
    ("evidence", JSON),
    ("currency", sa.String(3)),
    ("weekly_profit_minor", sa.BigInteger()),
    ("weekly_profit_low_minor", sa.BigInteger()),
    ("weekly_profit_high_minor", sa.BigInteger()),
    ("reason", sa.Text()),
    ("decided_by", sa.String(200)),
    ("updated_at", core.db.types.UTCDateTime(timezone=True)),
)
LINKS = (  # column, the table it points to
    ("superseded_by_id", "rex_suggestions"),
    ("approval_id", "pending_actions"),
    ("action_id", "action_history"),
)


def upgrade() -> None:
    with _PerformanceKept(), op.batch_alter_table("rex_suggestions") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        for name, table in LINKS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
            batch.create_foreign_key(
                op.f(f"fk_rex_suggestions_{name}_{table}"),
                table,
                [name],
                ["id"],
                ondelete="SET NULL",
            )
    op.execute("UPDATE rex_suggestions SET status = 'new' WHERE status = 'open'")
    op.create_index(
        "ix_rex_suggestions_account_status", "rex_suggestions", ["account_id", "status"]
    )
    op.create_index(
        "uq_rex_suggestions_open_fingerprint",
        "rex_suggestions",
        ["fingerprint"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_table(
        "rex_suggestion_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("suggestion_id", sa.Integer(), nullable=False),
        sa.Column("at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("previous", sa.String(20), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["suggestion_id"],
            ["rex_suggestions.id"],
            name=op.f("fk_rex_suggestion_events_suggestion_id_rex_suggestions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rex_suggestion_events")),
    )
    op.create_index(
        op.f("ix_rex_suggestion_events_suggestion_id"),
        "rex_suggestion_events",
        ["suggestion_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_rex_suggestion_events_suggestion_id"), "rex_suggestion_events")
    op.drop_table("rex_suggestion_events")
    op.drop_index("uq_rex_suggestions_open_fingerprint", "rex_suggestions")
    op.drop_index("ix_rex_suggestions_account_status", "rex_suggestions")
    op.execute("UPDATE rex_suggestions SET status = 'open' WHERE status = 'new'")
    with _PerformanceKept(), op.batch_alter_table("rex_suggestions") as batch:
        for name, table in reversed(LINKS):
            batch.drop_constraint(op.f(f"fk_rex_suggestions_{name}_{table}"), type_="foreignkey")
            batch.drop_column(name)
        for name, _type in reversed(COLUMNS):
            batch.drop_column(name)


class _PerformanceKept:
    """On SQLite, the rows of `rex_suggestion_performance` saved before `rex_suggestions`
    is copied and written back after (the old copy's implicit DELETE cascades to them)."""

    def __enter__(self) -> None:
        self.rows: list[dict] = []
        if op.get_bind().dialect.name == "sqlite":
            result = op.get_bind().execute(sa.text("SELECT * FROM rex_suggestion_performance"))
            self.rows = [dict(row._mapping) for row in result]

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is not None or not self.rows:
            return
        table = sa.table("rex_suggestion_performance", *(sa.column(name) for name in self.rows[0]))
        kept = {row[0] for row in op.get_bind().execute(sa.text(
            "SELECT id FROM rex_suggestion_performance"))}  # fmt: skip
        missing = [row for row in self.rows if row["id"] not in kept]
        if missing:
            op.bulk_insert(table, missing)
