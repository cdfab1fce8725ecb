"""Notifications that reach people: inbox receipts, the outbox, preferences.

`notifications` (the seed's, one row per thing to tell) gains the page it links to, its
details (entity, matched values), a key that makes it once (a digest per person and
day) and the instant it was fanned out into `notification_receipts` (one per person:
the in-app inbox, read or not) and `notification_deliveries` (one per recipient and
channel: the outbox the scheduler delivers at most once). `notification_preferences`
holds each person's events, channels, digest and quiet hours.
`action_history.announced_at` and `pending_actions.announced_at` say that a failure or
a proposal was told to people.

What exists before the upgrade counts as told already: an upgrade sends nothing about
the past.

Downgrading drops the three tables and the columns.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
WHEN = core.db.types.UTCDateTime(timezone=True)

# (table, column) added in place: plain columns, so SQLite needs no copy of the table
# (a batch copy of a table others link to with RESTRICT is refused, see 0011)
COLUMNS: tuple[tuple[str, sa.Column[object]], ...] = (
    ("notifications", sa.Column("link", sa.String(500), nullable=True)),
    ("notifications", sa.Column("details", JSON, nullable=True)),
    ("notifications", sa.Column("event_key", sa.String(200), nullable=True)),
    ("notifications", sa.Column("fanned_out_at", WHEN, nullable=True)),
    ("action_history", sa.Column("announced_at", WHEN, nullable=True)),
    ("pending_actions", sa.Column("announced_at", WHEN, nullable=True)),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, column)
    op.create_index("uq_notifications_event_key", "notifications", ["event_key"], unique=True)
    op.create_index("ix_notifications_fanned_out_at", "notifications", ["fanned_out_at"])
    # the past counts as told: an upgrade mails nobody about last month
    op.execute("UPDATE notifications SET fanned_out_at = created_at")
    op.execute("UPDATE action_history SET announced_at = created_at")
    op.execute("UPDATE pending_actions SET announced_at = created_at")

    op.create_table(
        "notification_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("read_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"],
                                name=op.f("fk_notification_receipts_notification_id_notifications"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_notification_receipts_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_receipts")),
        sa.UniqueConstraint("notification_id", "user_id",
                            name=op.f("uq_notification_receipts_notification_id_user_id")),
    )  # fmt: skip
    op.create_index(
        "ix_notification_receipts_user_read", "notification_receipts", ["user_id", "read_at"]
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", WHEN, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claim_expires_at", WHEN, nullable=True),
        sa.Column("in_flight_at", WHEN, nullable=True),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"],
                                name=op.f("fk_notification_deliveries_notification_id_notifications"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_notification_deliveries_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        sa.UniqueConstraint("idempotency_key",
                            name=op.f("uq_notification_deliveries_idempotency_key")),
    )  # fmt: skip
    op.create_index(
        "ix_notification_deliveries_due", "notification_deliveries", ["status", "not_before"]
    )
    op.create_index(
        op.f("ix_notification_deliveries_notification_id"),
        "notification_deliveries",
        ["notification_id"],
    )
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("muted", JSON, nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("digest_hour", sa.SmallInteger(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        sa.Column("slack_url", sa.Text(), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_notification_preferences_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_preferences")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("notification_preferences")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_receipts")
    op.drop_index("ix_notifications_fanned_out_at", table_name="notifications")
    op.drop_index("uq_notifications_event_key", table_name="notifications")
    for table, column in reversed(COLUMNS):
        if op.get_bind().dialect.name == "sqlite":  # in place (SQLite ≥ 3.35)
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column.name}")
        else:
            op.drop_column(table, column.name)
