"""Statuses and levels read as enums: a revision that changes nothing in the database.

The models now map every status and level column to its enum (core/enums.py) through
`core.db.types.string_enum`: not a native enum type, no CHECK constraint, the same
length — so on both SQLite and PostgreSQL each column is the `VARCHAR(n)` 0001/0002
created, and it holds the same lower-case values ("active", "needs_reconnect"): the
enums' values, not their member names. Alembic's comparison of the models with a
migrated database finds no difference (tests/test_migrations.py), so there is nothing
to alter and no row to rewrite; the revision marks the point from which the code reads
these columns as enums, and refuses a string that is not a member.

| column                          | enum            | type        |
|---------------------------------|-----------------|-------------|
| ad_accounts.token_status        | TokenStatus     | VARCHAR(20) |
| ad_accounts.last_sync_status    | SyncStatus      | VARCHAR(20) |
| ad_entities.level               | Level           | VARCHAR(10) |
| sync_runs.status                | SyncStatus      | VARCHAR(20) |
| automation_rules.level          | Level           | VARCHAR(10) |
| automation_rules.status         | RuleStatus      | VARCHAR(30) |
| rule_executions.status          | ExecutionStatus | VARCHAR(20) |
| action_history.status           | ActionStatus    | VARCHAR(20) |
| pending_actions.status          | ApprovalStatus  | VARCHAR(20) |

Left as text: `ad_entities.status` and `effective_status` (Meta's own values, upper-case,
as the Graph API sends them) and `rex_suggestions.status` (the seed system's, no enum).

Downgrading changes nothing either.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to alter: the columns already are what the models declare."""


def downgrade() -> None:
    """Nothing to undo."""
