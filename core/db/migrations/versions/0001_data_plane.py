"""Data plane: users, ad accounts, entities, daily metrics, breakdowns, sync runs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "ad_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("timezone_name", sa.String(length=64), nullable=False),
        sa.Column("account_status", sa.SmallInteger(), nullable=False),
        sa.Column("min_daily_budget_minor", sa.BigInteger(), nullable=True),
        sa.Column("graph_url", sa.String(length=500), nullable=True),
        sa.Column("token_encrypted", sa.Text(), nullable=False),
        sa.Column("token_status", sa.String(length=20), nullable=False),
        sa.Column("token_checked_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("token_error", sa.Text(), nullable=True),
        sa.Column(
            "rate_limited_until",
            core.db.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("last_sync_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_sync_status", sa.String(length=20), nullable=True),
        sa.Column("last_sync_error", sa.Text(), nullable=True),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_ad_accounts_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_accounts")),
        sa.UniqueConstraint(
            "platform", "external_id", name=op.f("uq_ad_accounts_platform_external_id")
        ),
    )
    op.create_table(
        "ad_entities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("external_id", sa.String(length=40), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("meta_campaign_id", sa.String(length=40), nullable=True),
        sa.Column("meta_adset_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("effective_status", sa.String(length=40), nullable=False),
        sa.Column("daily_budget_minor", sa.BigInteger(), nullable=True),
        sa.Column("lifetime_budget_minor", sa.BigInteger(), nullable=True),
        sa.Column("budget_remaining_minor", sa.BigInteger(), nullable=True),
        sa.Column("bid_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("objective", sa.String(length=60), nullable=True),
        sa.Column("created_time", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_time", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ad_accounts.id"],
            name=op.f("fk_ad_entities_account_id_ad_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["ad_entities.id"],
            name=op.f("fk_ad_entities_parent_id_ad_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_entities")),
        sa.UniqueConstraint(
            "account_id",
            "external_id",
            name=op.f("uq_ad_entities_account_id_external_id"),
        ),
    )
    with op.batch_alter_table("ad_entities", schema=None) as batch_op:
        batch_op.create_index("ix_ad_entities_account_level", ["account_id", "level"], unique=False)
        batch_op.create_index(batch_op.f("ix_ad_entities_parent_id"), ["parent_id"], unique=False)
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("started_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column(
            "counts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ad_accounts.id"],
            name=op.f("fk_sync_runs_account_id_ad_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_runs_account_started", ["account_id", "started_at"], unique=False
        )
    op.create_table(
        "ad_demographic_insights",
        sa.Column("age", sa.String(length=20), nullable=False),
        sa.Column("gender", sa.String(length=20), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("reach", sa.BigInteger(), nullable=False),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("revenue_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ad_accounts.id"],
            name=op.f("fk_ad_demographic_insights_account_id_ad_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["ad_entities.id"],
            name=op.f("fk_ad_demographic_insights_entity_id_ad_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_demographic_insights")),
        sa.UniqueConstraint(
            "entity_id",
            "date",
            "age",
            "gender",
            name=op.f("uq_ad_demographic_insights_entity_id_date_age_gender"),
        ),
    )
    with op.batch_alter_table("ad_demographic_insights", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ad_demographic_insights_account_date",
            ["account_id", "date"],
            unique=False,
        )
    op.create_table(
        "ad_geographic_insights",
        sa.Column("geo_type", sa.String(length=10), nullable=False),
        sa.Column("geo_value", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("reach", sa.BigInteger(), nullable=False),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("revenue_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ad_accounts.id"],
            name=op.f("fk_ad_geographic_insights_account_id_ad_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["ad_entities.id"],
            name=op.f("fk_ad_geographic_insights_entity_id_ad_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_geographic_insights")),
        sa.UniqueConstraint(
            "entity_id",
            "date",
            "geo_type",
            "geo_value",
            name=op.f("uq_ad_geographic_insights_entity_id_date_geo_type_geo_value"),
        ),
    )
    with op.batch_alter_table("ad_geographic_insights", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ad_geographic_insights_account_date",
            ["account_id", "date"],
            unique=False,
        )
    op.create_table(
        "ad_hourly_insights",
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("reach", sa.BigInteger(), nullable=False),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("revenue_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ad_accounts.id"],
            name=op.f("fk_ad_hourly_insights_account_id_ad_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["ad_entities.id"],
            name=op.f("fk_ad_hourly_insights_entity_id_ad_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_hourly_insights")),
        sa.UniqueConstraint(
            "entity_id",
            "date",
            "hour",
            name=op.f("uq_ad_hourly_insights_entity_id_date_hour"),
        ),
    )
    with op.batch_alter_table("ad_hourly_insights", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ad_hourly_insights_account_date", ["account_id", "date"], unique=False
        )
    op.create_table(
        "ad_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("reach", sa.BigInteger(), nullable=False),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("revenue_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ad_accounts.id"],
            name=op.f("fk_ad_metrics_account_id_ad_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["ad_entities.id"],
            name=op.f("fk_ad_metrics_entity_id_ad_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_metrics")),
        sa.UniqueConstraint("entity_id", "date", name=op.f("uq_ad_metrics_entity_id_date")),
    )
    with op.batch_alter_table("ad_metrics", schema=None) as batch_op:
        batch_op.create_index("ix_ad_metrics_account_date", ["account_id", "date"], unique=False)
    op.create_table(
        "ad_placement_insights",
        sa.Column("publisher_platform", sa.String(length=40), nullable=False),
        sa.Column("platform_position", sa.String(length=60), nullable=False),
        sa.Column("impression_device", sa.String(length=40), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("reach", sa.BigInteger(), nullable=False),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("revenue_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ad_accounts.id"],
            name=op.f("fk_ad_placement_insights_account_id_ad_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["ad_entities.id"],
            name=op.f("fk_ad_placement_insights_entity_id_ad_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_placement_insights")),
        sa.UniqueConstraint(
            "entity_id",
            "date",
            "publisher_platform",
            "platform_position",
            "impression_device",
            name=op.f(
                "uq_ad_placement_insights_entity_id_date_publisher_platform_platform_position_impression_device"
            ),
        ),
    )
    with op.batch_alter_table("ad_placement_insights", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ad_placement_insights_account_date",
            ["account_id", "date"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("ad_placement_insights")
    op.drop_table("ad_metrics")
    op.drop_table("ad_hourly_insights")
    op.drop_table("ad_geographic_insights")
    op.drop_table("ad_demographic_insights")
    op.drop_table("sync_runs")
    op.drop_table("ad_entities")
    op.drop_table("ad_accounts")
    op.drop_table("users")
