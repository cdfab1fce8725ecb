"""The schema: Alembic migrations up, one step down and up again, on both databases."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from core.db import migrate
from core.db.engine import get_engine
from core.db.models import Base

SEED_TABLES = {
    "ad_metrics",
    "automation_rules",
    "rule_executions",
    "action_history",
    "ad_demographic_insights",
    "ad_placement_insights",
    "ad_geographic_insights",
    "ad_hourly_insights",
    "rex_suggestions",
    "rex_suggestion_performance",
    "ad_entities",
}
USERS_TABLES = {"user_grants", "user_sessions", "audit_log"}
NOTIFY_TABLES = {"notification_receipts", "notification_deliveries", "notification_preferences"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("fresh_schema")()


def _tables(url: str) -> set[str]:
    return set(inspect(get_engine(url)).get_table_names()) - {"alembic_version"}


def _differences(url: str) -> list:
    with get_engine(url).connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_upgrade_head_on_an_empty_database_creates_the_whole_model(empty_url: str) -> None:
    migrate.upgrade("head", url=empty_url)

    assert migrate.current_revision(empty_url) == migrate.head_revision()
    assert _tables(empty_url) >= SEED_TABLES
    assert _tables(empty_url) == set(Base.metadata.tables)
    assert _differences(empty_url) == []  # the migrations build exactly the models


def test_one_step_down_and_up_again(empty_url: str) -> None:
    migrate.upgrade("head", url=empty_url)
    head = migrate.current_revision(empty_url)

    migrate.downgrade("-1", url=empty_url)
    below = migrate.current_revision(empty_url)
    assert below not in (None, head)
    # 0012 undone: the inbox, the outbox and the preferences are gone, notifications stay
    assert _tables(empty_url) == set(Base.metadata.tables) - NOTIFY_TABLES
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("notifications")}
    assert "fanned_out_at" not in columns and "title" in columns
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("action_history")}
    assert "announced_at" not in columns and "sent_at" in columns

    migrate.downgrade("-1", url=empty_url)
    # 0011 undone: rules no longer name who saved them, accounts have no four-eyes flag
    assert _tables(empty_url) == set(Base.metadata.tables) - NOTIFY_TABLES
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("automation_rules")}
    assert "updated_by_id" not in columns and "deleted_at" in columns
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("ad_accounts")}
    assert "four_eyes" not in columns and "removed_at" in columns

    migrate.downgrade("-1", url=empty_url)
    # 0010 undone: grants, sessions and the audit log are gone, the seed's users stay
    assert _tables(empty_url) == set(Base.metadata.tables) - USERS_TABLES - NOTIFY_TABLES
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("users")}
    assert "password_hash" not in columns and "email" in columns

    migrate.downgrade("-1", url=empty_url)
    # 0009 undone: the outcomes' checkpoints and columns are gone
    assert _tables(empty_url) == set(Base.metadata.tables) - {
        "rex_outcome_checkpoints",
        *USERS_TABLES,
        *NOTIFY_TABLES,
    }
    columns = {
        c["name"] for c in inspect(get_engine(empty_url)).get_columns("rex_suggestion_performance")
    }
    assert "action_id" not in columns and "baseline_metrics" in columns

    migrate.downgrade("-1", url=empty_url)
    # 0008 undone: the suggestions' events, columns and indexes are gone
    assert _tables(empty_url) == set(Base.metadata.tables) - {
        "rex_suggestion_events",
        "rex_outcome_checkpoints",
        *USERS_TABLES,
        *NOTIFY_TABLES,
    }
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("rex_suggestions")}
    assert "fingerprint" not in columns and "confidence" in columns

    migrate.downgrade("-1", url=empty_url)
    # 0007 undone: purchases and revenue by region, DMA and hour are NOT NULL again (the
    # other differences are 0008's, 0009's and 0010's: column changes come as lists,
    # additions as tuples)
    changed = [
        d for d in _differences(empty_url)
        if isinstance(d, list) and d[0][2] not in ("rex_suggestion_performance", "users")
    ]  # fmt: skip
    assert sorted((d[0][0], d[0][2], d[0][3]) for d in changed) == [
        ("modify_nullable", table, column)
        for table in ("ad_geographic_insights", "ad_hourly_insights")
        for column in ("conversions", "revenue_micros")
    ]

    migrate.downgrade("-1", url=empty_url)  # 0006 altered nothing
    migrate.downgrade("-1", url=empty_url)
    columns = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("rule_executions")}
    assert "actions_queued" not in columns and "actions_taken" in columns  # 0005 undone only
    history = {c["name"] for c in inspect(get_engine(empty_url)).get_columns("action_history")}
    assert "sent_at" in history  # 0004 kept

    migrate.upgrade("head", url=empty_url)
    assert migrate.current_revision(empty_url) == head
    assert _differences(empty_url) == []


def test_down_to_base_leaves_no_table(empty_url: str) -> None:
    migrate.upgrade("head", url=empty_url)
    migrate.downgrade("base", url=empty_url)
    assert _tables(empty_url) == set()


def _seed_record(url: str) -> None:
    """A rule, an account, an execution, two actions (one the rollback of the other) and
    an approval that points at the first action, written as rows of the 0004 schema."""
    rows = [
        "INSERT INTO ad_accounts (id, platform, external_id, name, currency, timezone_name, "
        "account_status, token_encrypted, token_status, created_at, updated_at) VALUES "
        "(1, 'meta', 'act_1', 'Shop', 'USD', 'UTC', 1, 'x', 'ok', :at, :at)",
        "INSERT INTO automation_rules (id, name, level, document, status, "
        "check_frequency_minutes, version, created_at, updated_at) VALUES "
        "(1, 'Scale', 'adset', '{}', 'active', 60, 1, :at, :at)",
        "INSERT INTO rule_executions (id, rule_id, rule_version, started_at, entities_checked, "
        "entities_matched, actions_taken, actions_skipped, status) VALUES "
        "(1, 1, 1, :at, 1, 1, 1, 0, 'succeeded')",
        "INSERT INTO action_history (id, rule_id, execution_id, account_id, entity_name, "
        "action_type, status, can_rollback, created_at) VALUES "
        "(1, 1, 1, 1, 'Ad set A', 'pause', 'succeeded', true, :at)",
        "INSERT INTO action_history (id, rule_id, execution_id, account_id, entity_name, "
        "action_type, status, can_rollback, rollback_of_id, created_at) VALUES "
        "(2, 1, 1, 1, 'Ad set A', 'resume', 'succeeded', false, 1, :at)",
        "UPDATE action_history SET rolled_back_by_id = 2 WHERE id = 1",
        "INSERT INTO pending_actions (id, rule_id, execution_id, account_id, action_type, "
        "proposal, status, expires_at, action_id, version, created_at) VALUES "
        "(1, 1, 1, 1, 'pause', '{}', 'approved', :at, 1, 2, :at)",
        "INSERT INTO notifications (id, account_id, rule_id, kind, title, created_at) VALUES "
        "(1, 1, 1, 'action', 'Paused Ad set A', :at)",
    ]
    at = datetime(2026, 11, 20, 18, 30)  # naive: how both databases store UTC here
    with get_engine(url).begin() as connection:
        for row in rows:
            connection.execute(text(row), {"at": at})


LINKS = (
    "SELECT a.execution_id, a.rollback_of_id, a.rolled_back_by_id, p.execution_id, "
    "p.action_id FROM action_history a, pending_actions p WHERE a.id = 1 AND p.id = 1"
)


def test_upgrading_to_0005_keeps_every_link_of_the_record(empty_url: str) -> None:
    migrate.upgrade("0004", url=empty_url)
    _seed_record(empty_url)
    with get_engine(empty_url).connect() as connection:
        before = connection.execute(text(LINKS)).one()
    assert tuple(before) == (1, None, 2, 1, 1)

    migrate.upgrade("head", url=empty_url)
    with get_engine(empty_url).connect() as connection:
        assert tuple(connection.execute(text(LINKS)).one()) == tuple(before)
        rollback = connection.execute(
            text("SELECT rollback_of_id FROM action_history WHERE id = 2")
        ).scalar()
    assert rollback == 1

    migrate.downgrade("0004", url=empty_url)  # and back down: still linked
    with get_engine(empty_url).connect() as connection:
        assert tuple(connection.execute(text(LINKS)).one()) == tuple(before)


def test_upgrading_to_0008_keeps_the_seed_suggestions_and_their_performance(
    empty_url: str,
) -> None:
    migrate.upgrade("0007", url=empty_url)
    _seed_record(empty_url)
    at = datetime(2026, 11, 20, 18, 30)
    with get_engine(empty_url).begin() as connection:
        connection.execute(text(
            "INSERT INTO rex_suggestions (id, account_id, kind, title, detail, confidence, "
            "status, created_at) VALUES (1, 1, 'demographic', 'Exclude 65+', '{}', 0.7, "
            "'open', :at)"), {"at": at})  # fmt: skip
        connection.execute(text(
            "INSERT INTO rex_suggestion_performance (id, suggestion_id, baseline_metrics) "
            "VALUES (1, 1, '{\"spend\": 10}')"))  # fmt: skip

    migrate.upgrade("head", url=empty_url)
    with get_engine(empty_url).connect() as connection:
        status = connection.execute(text("SELECT status FROM rex_suggestions")).scalar()
        kept = connection.execute(text("SELECT suggestion_id FROM rex_suggestion_performance"))
        assert (status, kept.scalars().all()) == ("new", [1])  # the seed's "open" is "new"
        # 0009: the outcome takes its account and kind from its suggestion
        outcome = connection.execute(text(
            "SELECT account_id, kind FROM rex_suggestion_performance")).one()  # fmt: skip
        assert tuple(outcome) == (1, "demographic")
        # two open suggestions for the same change are refused by the database itself
        connection.execute(text("UPDATE rex_suggestions SET fingerprint = 'f'"))
        with pytest.raises(IntegrityError):
            connection.execute(text(
                "INSERT INTO rex_suggestions (account_id, kind, title, detail, status, "
                "fingerprint, created_at) VALUES (1, 'demographic', 'again', '{}', 'new', "
                "'f', :at)"), {"at": at})  # fmt: skip
        connection.rollback()

    migrate.downgrade("0007", url=empty_url)
    with get_engine(empty_url).connect() as connection:
        assert connection.execute(text("SELECT status FROM rex_suggestions")).scalar() == "open"
        performance = connection.execute(text("SELECT count(*) FROM rex_suggestion_performance"))
        assert performance.scalar() == 1


def test_upgrading_to_0007_makes_purchases_by_region_dma_and_hour_not_available(
    empty_url: str,
) -> None:
    # rows as Rex stored them before 0007: zeros (or a sandbox's figures) Meta never sent
    migrate.upgrade("0006", url=empty_url)
    _seed_record(empty_url)
    rows = [
        "INSERT INTO ad_entities (id, account_id, level, external_id, name, status, "
        "effective_status, first_seen_at, updated_at) VALUES "
        "(1, 1, 'adset', '11', 'Ad set A', 'ACTIVE', 'ACTIVE', :at, :at)",
        *(
            "INSERT INTO ad_geographic_insights (account_id, entity_id, date, geo_type, "
            "geo_value, spend_micros, impressions, clicks, reach, conversions, revenue_micros) "
            f"VALUES (1, 1, '2026-11-18', '{geo}', '{value}', 5000000, 100, 4, 90, 2, 30000000)"
            for geo, value in (("country", "US"), ("region", "California"), ("dma", "Fresno"))
        ),
        "INSERT INTO ad_hourly_insights (account_id, entity_id, date, hour, spend_micros, "
        "impressions, clicks, reach, conversions, revenue_micros) VALUES "
        "(1, 1, '2026-11-18', 13, 5000000, 100, 4, 90, 0, 0)",
    ]
    with get_engine(empty_url).begin() as connection:
        for row in rows:
            connection.execute(text(row), {"at": datetime(2026, 11, 20, 18, 30)})

    migrate.upgrade("head", url=empty_url)
    with get_engine(empty_url).connect() as connection:
        geo = {
            row[0]: tuple(row[1:])
            for row in connection.execute(
                text(
                    "SELECT geo_type, conversions, revenue_micros, spend_micros "
                    "FROM ad_geographic_insights"
                )  # fmt: skip
            )
        }
        hourly = connection.execute(
            text("SELECT conversions, revenue_micros, spend_micros FROM ad_hourly_insights")
        ).one()
    assert geo == {
        "country": (2, 30000000, 5000000),  # Meta reports purchases by country: kept
        "region": (None, None, 5000000),
        "dma": (None, None, 5000000),
    }
    assert tuple(hourly) == (None, None, 5000000)

    migrate.downgrade("0006", url=empty_url)  # back down: zeros again, spend as it was
    with get_engine(empty_url).connect() as connection:
        assert connection.execute(
            text("SELECT conversions, revenue_micros FROM ad_hourly_insights")
        ).one() == (0, 0)


@pytest.mark.parametrize(
    "statement",
    ["DELETE FROM automation_rules WHERE id = 1", "DELETE FROM ad_accounts WHERE id = 1"],
)
def test_the_database_refuses_a_delete_that_would_take_the_record(
    empty_url: str, statement: str
) -> None:
    migrate.upgrade("head", url=empty_url)
    _seed_record(empty_url)
    with pytest.raises(IntegrityError), get_engine(empty_url).begin() as connection:
        connection.execute(text(statement))
    counts = (
        "SELECT (SELECT count(*) FROM rule_executions) + (SELECT count(*) FROM "
        "action_history) + (SELECT count(*) FROM pending_actions) + (SELECT count(*) FROM "
        "notifications)"
    )
    with get_engine(empty_url).connect() as connection:
        assert connection.execute(text(counts)).scalar() == 5
        names = connection.execute(
            text(
                "SELECT r.name, c.external_id FROM action_history a JOIN automation_rules r "
                "ON r.id = a.rule_id JOIN ad_accounts c ON c.id = a.account_id WHERE a.id = 1"
            )
        ).one()
    assert tuple(names) == ("Scale", "act_1")
