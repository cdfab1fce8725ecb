"""Statuses and levels as enums in the database, on both backends.

The columns stayed the VARCHARs they were (revision 0006 changes nothing): a row written
before, as a plain string, reads back as its enum member; an enum written now is stored
as the same lower-case string as before (read with raw SQL); a string that is not a
member is refused on the way in, and a row holding one fails loudly on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError

from core.db import migrate, read_session, write_session
from core.db.engine import get_engine
from core.db.models import (
    ActionHistory,
    AdAccount,
    AutomationRule,
    Base,
    PendingAction,
    RuleExecution,
)
from core.enums import (
    ActionStatus,
    ApprovalStatus,
    ExecutionStatus,
    Level,
    RuleStatus,
    SyncStatus,
    TokenStatus,
)

AT = datetime(2026, 11, 20, 18, 30)  # naive: how both databases store UTC here

# Rows of the 0005 schema, every status and level column holding a string of its enum.
ROWS_BEFORE = [
    "INSERT INTO ad_accounts (id, platform, external_id, name, currency, timezone_name, "
    "account_status, token_encrypted, token_status, last_sync_status, created_at, updated_at) "
    "VALUES (1, 'meta', 'act_1', 'Shop', 'USD', 'UTC', 1, 'x', 'needs_reconnect', 'failed', "
    ":at, :at)",
    "INSERT INTO ad_entities (id, account_id, level, external_id, name, status, "
    "effective_status, first_seen_at, updated_at) VALUES "
    "(1, 1, 'adset', '11', 'Ad set A', 'ACTIVE', 'ACTIVE', :at, :at)",
    "INSERT INTO sync_runs (id, account_id, started_at, status, counts) VALUES "
    "(1, 1, :at, 'succeeded', '{}')",
    "INSERT INTO automation_rules (id, name, level, document, status, "
    "check_frequency_minutes, version, created_at, updated_at) VALUES "
    "(1, 'Scale', 'ad', '{}', 'paused', 60, 1, :at, :at)",
    "INSERT INTO rule_executions (id, rule_id, rule_version, started_at, entities_checked, "
    "entities_matched, actions_taken, actions_skipped, status) VALUES "
    "(1, 1, 1, :at, 1, 1, 0, 0, 'partial')",
    "INSERT INTO action_history (id, rule_id, execution_id, account_id, entity_name, "
    "action_type, status, can_rollback, created_at) VALUES "
    "(1, 1, 1, 1, 'Ad set A', 'pause', 'dry_run', false, :at)",
    "INSERT INTO pending_actions (id, rule_id, execution_id, account_id, action_type, "
    "proposal, status, expires_at, version, created_at) VALUES "
    "(1, 1, 1, 1, 'pause', '{}', 'stale', :at, 1, :at)",
]

# (table, column, the string written before, the member it reads back as)
READ_BACK = [
    ("ad_accounts", "token_status", "needs_reconnect", TokenStatus.NEEDS_RECONNECT),
    ("ad_accounts", "last_sync_status", "failed", SyncStatus.FAILED),
    ("ad_entities", "level", "adset", Level.ADSET),
    ("sync_runs", "status", "succeeded", SyncStatus.SUCCEEDED),
    ("automation_rules", "level", "ad", Level.AD),
    ("automation_rules", "status", "paused", RuleStatus.PAUSED),
    ("rule_executions", "status", "partial", ExecutionStatus.PARTIAL),
    ("action_history", "status", "dry_run", ActionStatus.DRY_RUN),
    ("pending_actions", "status", "stale", ApprovalStatus.STALE),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("fresh_schema")()


def _enum_columns() -> list[sa.Column[object]]:
    return [
        column
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, sa.Enum)
    ]


# enum-typed since 0008, which gave suggestions their lifecycle (the seed's "open" is "new")
SUGGESTION_COLUMNS = {
    ("rex_suggestions", "status"),
    ("rex_suggestions", "level"),
    ("rex_suggestion_events", "previous"),
    ("rex_suggestion_events", "status"),
}


# enum-typed from the start (0012)
NOTIFY_COLUMNS = {("notification_deliveries", "status")}


def test_the_enum_columns_are_the_status_and_level_columns_and_store_values() -> None:
    found = {(column.table.name, column.name) for column in _enum_columns()}
    assert found == {(table, column) for table, column, _, _ in READ_BACK} | SUGGESTION_COLUMNS | (
        NOTIFY_COLUMNS
    )
    for column in _enum_columns():
        kind = column.type
        assert isinstance(kind, sa.Enum) and kind.enum_class is not None
        assert issubclass(kind.enum_class, StrEnum)
        assert kind.enums == [member.value for member in kind.enum_class]  # not the names
        assert not kind.native_enum and not kind.create_constraint


def test_rows_written_before_0006_read_back_as_members(empty_url: str) -> None:
    migrate.upgrade("0005", url=empty_url)
    with get_engine(empty_url).begin() as connection:
        for row in ROWS_BEFORE:
            connection.execute(text(row), {"at": AT})

    migrate.upgrade("head", url=empty_url)
    assert migrate.current_revision(empty_url) == migrate.head_revision()
    with read_session(get_engine(empty_url)) as session:
        for table, column, _, member in READ_BACK:
            value = session.scalar(select(Base.metadata.tables[table].c[column]))
            assert value is member, (table, column)
            assert type(value) is type(member)
        account = session.scalars(select(AdAccount)).one()
    assert account.token_status is TokenStatus.NEEDS_RECONNECT
    with get_engine(empty_url).connect() as connection:  # and the strings are untouched
        for table, column, before, _ in READ_BACK:
            raw = connection.execute(text(f"SELECT {column} FROM {table}")).scalar()
            assert raw == before and type(raw) is str


def _account() -> AdAccount:
    return AdAccount(
        external_id="act_1",
        name="Shop",
        currency="USD",
        timezone_name="UTC",
        account_status=1,
        token_encrypted="x",
    )


def _raw(engine: Engine, statement: str) -> object:
    with engine.connect() as connection:
        return connection.execute(text(statement)).scalar()


def test_an_enum_is_written_as_the_string_it_always_was(db: Engine) -> None:
    now = datetime.now(UTC)
    with write_session() as session:
        account = _account()
        account.token_status = TokenStatus.NEEDS_RECONNECT
        account.last_sync_status = SyncStatus.SUCCEEDED
        rule = AutomationRule(
            name="Scale", level=Level.ADSET, document={}, status=RuleStatus.ACTIVE
        )
        session.add_all([account, rule])
        session.flush()
        execution = RuleExecution(rule_id=rule.id, status=ExecutionStatus.SKIPPED)
        session.add(execution)
        session.flush()
        session.add_all(
            [
                ActionHistory(
                    rule_id=rule.id,
                    execution_id=execution.id,
                    account_id=account.id,
                    action_type="pause",
                    status=ActionStatus.DRY_RUN,
                ),
                PendingAction(
                    rule_id=rule.id,
                    account_id=account.id,
                    action_type="pause",
                    proposal={},
                    status=ApprovalStatus.REJECTED,
                    expires_at=now,
                ),
            ]
        )

    assert _raw(db, "SELECT token_status FROM ad_accounts") == "needs_reconnect"
    assert _raw(db, "SELECT last_sync_status FROM ad_accounts") == "succeeded"
    assert _raw(db, "SELECT level FROM automation_rules") == "adset"
    assert _raw(db, "SELECT status FROM automation_rules") == "active"
    assert _raw(db, "SELECT status FROM rule_executions") == "skipped"
    assert _raw(db, "SELECT status FROM action_history") == "dry_run"
    assert _raw(db, "SELECT status FROM pending_actions") == "rejected"


def test_the_defaults_are_written_as_strings_too(db: Engine) -> None:
    with write_session() as session:
        session.add_all([_account(), AutomationRule(name="New", level=Level.AD, document={})])
    assert _raw(db, "SELECT token_status FROM ad_accounts") == "ok"
    assert _raw(db, "SELECT status FROM automation_rules") == "draft"


def test_a_valid_plain_string_is_accepted_and_read_back_as_the_member(db: Engine) -> None:
    with write_session() as session:
        account = _account()
        account.token_status = "removed"  # type: ignore[assignment]  # what old callers pass
        session.add(account)
    assert _raw(db, "SELECT token_status FROM ad_accounts") == "removed"
    with read_session() as session:
        assert session.scalar(select(AdAccount.token_status)) is TokenStatus.REMOVED
        found = session.scalar(select(AdAccount.id).where(AdAccount.token_status == "removed"))
    assert found is not None


def test_writing_a_string_that_is_not_a_member_is_refused(db: Engine) -> None:
    with (
        pytest.raises(StatementError, match="'bogus' is not among the defined enum values") as e,
        write_session() as session,
    ):
        account = _account()
        account.token_status = "bogus"  # type: ignore[assignment]  # the point of the test
        session.add(account)
    assert isinstance(e.value.orig, LookupError)
    assert _raw(db, "SELECT count(*) FROM ad_accounts") == 0  # nothing written


def test_comparing_with_a_string_that_is_not_a_member_is_refused(db: Engine) -> None:
    with (
        pytest.raises(StatementError, match="'Active' is not among the defined enum values"),
        read_session() as session,
    ):
        session.scalar(select(AutomationRule.id).where(AutomationRule.status == "Active"))


def test_a_row_holding_a_string_that_is_not_a_member_fails_loudly_on_reading(
    db: Engine,
) -> None:
    with write_session() as session:
        session.add(_account())
    with db.begin() as connection:  # as a hand-written UPDATE (or another program) could
        connection.execute(text("UPDATE ad_accounts SET token_status = 'expired'"))

    with (
        pytest.raises(LookupError, match="'expired' is not among the defined enum values"),
        read_session() as session,
    ):
        session.scalars(select(AdAccount)).all()
    assert _raw(db, "SELECT token_status FROM ad_accounts") == "expired"  # left as it was
