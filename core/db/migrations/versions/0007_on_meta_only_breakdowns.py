"""Purchases and revenue are not available by region, DMA or hour.

Meta's Insights API gives no off-Meta action metrics (pixel purchases, their value) with
the region, dma and hourly breakdowns. Rex stored them as 0, which reads as "nothing
sold there". From 0007 `conversions` and `revenue_micros` of `ad_geographic_insights`
and `ad_hourly_insights` may be NULL — not available — and the rows already stored for
regions, DMAs and hours are set to NULL: Meta never sent those numbers, so their zeros
(or a sandbox's invented figures) were never data. Country rows keep theirs.

Downgrading writes 0 back where the value is NULL and makes the columns NOT NULL again.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = {  # table → which of its rows Meta gives no purchases or revenue for
    "ad_geographic_insights": "geo_type IN ('region', 'dma')",
    "ad_hourly_insights": "1 = 1",
}
COLUMNS = ("conversions", "revenue_micros")


def upgrade() -> None:
    for table, rows in TABLES.items():
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.alter_column(column, existing_type=sa.BigInteger(), nullable=True)
        op.execute(f"UPDATE {table} SET conversions = NULL, revenue_micros = NULL WHERE {rows}")


def downgrade() -> None:
    for table in TABLES:
        for column in COLUMNS:
            op.execute(f"UPDATE {table} SET {column} = 0 WHERE {column} IS NULL")
        with op.batch_alter_table(table) as batch:
            for column in COLUMNS:
                batch.alter_column(column, existing_type=sa.BigInteger(), nullable=False)
