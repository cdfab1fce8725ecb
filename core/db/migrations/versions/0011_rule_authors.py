"""Who changed a rule, and four-eyes per account.

`automation_rules.updated_by_id` and `automation_rule_versions.saved_by_id` name the user
who saved each version (empty: Rex itself, or a version saved before users existed;
plain ids, see AUTHORS);
`ad_accounts.four_eyes` turns on the four-eyes rule for the account: whoever last
changed a rule cannot approve its proposals there.

Downgrading drops the three columns.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


# (table, column): the id of the user who saved it. A plain integer, no foreign key:
# users are disabled, never deleted, and SQLite adds a plain column in place — a batch
# copy of `automation_rules` would drop the old copy, which the RESTRICT links into it
# refuse (0005).
AUTHORS = (("automation_rules", "updated_by_id"), ("automation_rule_versions", "saved_by_id"))


def upgrade() -> None:
    for table, column in AUTHORS:
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
    op.add_column(
        "ad_accounts",
        sa.Column("four_eyes", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    for table, column in (("ad_accounts", "four_eyes"), *reversed(AUTHORS)):
        _drop_in_place(table, column)


def _drop_in_place(table: str, column: str) -> None:
    """Drop a column without copying the table (SQLite ≥ 3.35 drops it in place)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)
