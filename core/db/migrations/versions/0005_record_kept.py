"""The record says what happened and is kept.

* `rule_executions.actions_queued` (proposals put to a person) and `actions_would` (what
  a dry run would have done) beside `actions_taken` and `actions_skipped`.
* Deleting keeps the record: `automation_rules.deleted_at` (a deleted rule keeps its row,
  status `deleted`) and `ad_accounts.removed_at` (a removed account keeps its row, token
  wiped). The foreign keys from the record into rules and accounts — versions,
  executions, actions, approvals, notifications — become RESTRICT, so that the database
  itself refuses a delete that would take the record with it (they were CASCADE or SET
  NULL: deleting a rule deleted its executions and left its actions naming no rule).

SQLite alters a foreign key by copying the table (batch mode). Dropping the old copy
runs an implicit DELETE whose ON DELETE SET NULL actions would blank the links *into* the
copied tables (an action's execution, an approval's action, a rollback's original), so
on SQLite those links are saved first and written back after (`_Links`).

Downgrading restores the old foreign keys and drops the two columns (in place: see
`_drop_in_place`); rows deleted or removed meanwhile stay (as status `deleted`, token
status `removed`).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# (table, column, referred table, ondelete before 0005, ondelete from 0005 on)
FOREIGN_KEYS = (
    ("automation_rule_versions", "rule_id", "automation_rules", "CASCADE", "RESTRICT"),
    ("rule_executions", "rule_id", "automation_rules", "CASCADE", "RESTRICT"),
    ("action_history", "rule_id", "automation_rules", "SET NULL", "RESTRICT"),
    ("action_history", "account_id", "ad_accounts", "CASCADE", "RESTRICT"),
    ("pending_actions", "rule_id", "automation_rules", "SET NULL", "RESTRICT"),
    ("pending_actions", "account_id", "ad_accounts", "CASCADE", "RESTRICT"),
    ("notifications", "rule_id", "automation_rules", "SET NULL", "RESTRICT"),
    ("notifications", "account_id", "ad_accounts", "CASCADE", "RESTRICT"),
)
# Links into the tables SQLite copies, blanked by their ON DELETE SET NULL when the old
# copy is dropped: (table, column).
LINKS = (
    ("action_history", "execution_id"),
    ("pending_actions", "execution_id"),
    ("pending_actions", "action_id"),
    ("action_history", "rollback_of_id"),
    ("action_history", "rolled_back_by_id"),
)


def upgrade() -> None:
    with _Links():
        with op.batch_alter_table("rule_executions") as batch:
            batch.add_column(
                sa.Column("actions_queued", sa.Integer(), nullable=False, server_default="0")
            )
            batch.add_column(
                sa.Column("actions_would", sa.Integer(), nullable=False, server_default="0")
            )
        _foreign_keys(new=True)
    with op.batch_alter_table("automation_rules") as batch:
        batch.add_column(
            sa.Column("deleted_at", core.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("ad_accounts") as batch:
        batch.add_column(
            sa.Column("removed_at", core.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    _drop_in_place("ad_accounts", "removed_at")
    _drop_in_place("automation_rules", "deleted_at")
    with _Links():
        _foreign_keys(new=False)
        with op.batch_alter_table("rule_executions") as batch:
            batch.drop_column("actions_would")
            batch.drop_column("actions_queued")


def _drop_in_place(table: str, column: str) -> None:
    """Drop a column without copying the table. On SQLite a batch copy of `ad_accounts` or
    `automation_rules` would drop the old copy, and that implicit DELETE would cascade into
    every table that refers to it (or be refused by RESTRICT); SQLite ≥ 3.35 drops a
    plain column in place."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def _foreign_keys(*, new: bool) -> None:
    tables: dict[str, list[tuple[str, str, str]]] = {}
    for table, column, referred, before, after in FOREIGN_KEYS:
        tables.setdefault(table, []).append((column, referred, after if new else before))
    for table, keys in tables.items():
        with op.batch_alter_table(table) as batch:
            for column, referred, ondelete in keys:
                name = f"fk_{table}_{column}_{referred}"
                batch.drop_constraint(name, type_="foreignkey")
                batch.create_foreign_key(name, referred, [column], ["id"], ondelete=ondelete)


class _Links:
    """On SQLite: save LINKS before the tables are copied, write them back after."""

    def __enter__(self) -> _Links:
        self.sqlite = op.get_bind().dialect.name == "sqlite"
        if self.sqlite:
            for table, column in LINKS:
                op.execute(
                    f"CREATE TEMP TABLE _keep_{table}_{column} AS "
                    f"SELECT id, {column} AS link FROM {table} WHERE {column} IS NOT NULL"
                )
        return self

    def __exit__(self, kind: object, *_rest: object) -> None:
        if not self.sqlite:
            return
        for table, column in LINKS:
            if kind is None:
                op.execute(
                    f"UPDATE {table} SET {column} = (SELECT link FROM _keep_{table}_{column} "
                    f"k WHERE k.id = {table}.id) "
                    f"WHERE id IN (SELECT id FROM _keep_{table}_{column})"
                )
            op.execute(f"DROP TABLE _keep_{table}_{column}")
