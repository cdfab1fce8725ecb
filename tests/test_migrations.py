"""The schema: Alembic migrations up, one step down and up again, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

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
