"""The activity read models: every action across rules with its account, newest first,
paged and filtered; links to Ads Manager except for sandbox accounts; approvals that
name their account and say their triggering numbers in words — SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from core.access.actor import SYSTEM
from core.actions.approvals import list_approvals
from core.db import write_session
from core.db.models import AdAccount, RuleExecution
from core.engine.run import run_rule_now
from core.labels import ads_manager_url
from core.rules.store import save_rule
from core.views.activity import activity_feed, execution_detail, list_executions
from tests.conftest import NOW, WORKED_EXAMPLE
from tests.signed import ANA
from tests.test_engine import SCALE_WINNERS

TWIN = "act_2002"
BOTH = {**SCALE_WINNERS, "scope": {"level": "campaign", "account_ids": ["act_2001", TWIN]}}


def _shifted(node: Any) -> Any:
    """The worked example's objects with other ids (names kept): a second account."""
    if isinstance(node, dict):
        moved = {k: _shifted(v) for k, v in node.items()}
        if isinstance(node.get("id"), str) and node["id"].isdigit():
            moved["id"] = str(int(node["id"]) + 50_000)
        return moved
    if isinstance(node, list):
        return [_shifted(v) for v in node]
    return node


@contextmanager
def _twin_accounts(now: datetime | None) -> Iterator[Any]:
    """Two accounts whose campaigns have the same names (A, B, C) and the same numbers,
    in one sandbox (frozen at `now`, or on the real clock), connected and synced."""
    from core.accounts import connect_account
    from core.sandbox import SandboxServer
    from core.sync.runner import SyncOptions, sync_accounts

    scenario = json.loads(Path(WORKED_EXAMPLE).read_text())
    twin = _shifted(copy.deepcopy(scenario["accounts"][0]))
    twin.update(id=TWIN, name="Twin (USD)")
    scenario["accounts"].append(twin)
    with SandboxServer(scenario=scenario, now=now) as server:
        connect_account("act_2001", server.token, graph_url=server.url, by=SYSTEM)
        connect_account(TWIN, server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=15, breakdowns=False, now=now))
        yield server


@pytest.fixture
def twins(db: Engine) -> Iterator[Any]:
    """The twin accounts frozen at NOW."""
    with _twin_accounts(NOW) as server:
        yield server


@pytest.fixture
def live_twins(db: Engine) -> Iterator[Any]:
    """The twin accounts on the real clock (for pages, which expire old proposals)."""
    with _twin_accounts(None) as server:
        yield server


def as_if_on_meta(external_id: str) -> None:
    """The account as if it were served by Meta itself (not a loopback sandbox)."""
    with write_session() as session:
        session.execute(
            update(AdAccount)
            .where(AdAccount.external_id == external_id)
            .values(graph_url="https://graph.facebook.com")
        )


def test_the_feed_names_each_action_s_account(twins) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(BOTH, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)

    feed = activity_feed(actor=ANA)
    assert feed.total == 4 and feed.pages == 1
    assert sorted((a.entity_name, a.account_external_id) for a in feed.rows) == [
        ("A", "act_2001"), ("A", TWIN), ("C", "act_2001"), ("C", TWIN),
    ]  # fmt: skip
    twin_row = next(a for a in feed.rows if a.account_external_id == TWIN)
    assert twin_row.account == f"Twin (USD) ({TWIN})"
    assert twin_row.rule_name == "Scale winners" and twin_row.outcome == "applied"
    assert [a.id for a in activity_feed(actor=ANA, account=TWIN).rows] == [
        a.id for a in feed.rows if a.account_external_id == TWIN
    ]
    assert activity_feed(actor=ANA, rule_id=rule.id + 1).total == 0
    assert activity_feed(actor=ANA, since=NOW - timedelta(minutes=1)).total == 4
    assert activity_feed(actor=ANA, since=NOW + timedelta(minutes=1)).total == 0


def test_the_feed_pages_newest_first(twins) -> None:  # type: ignore[no-untyped-def]
    from core.actions.rollback import rollback

    rule = save_rule(BOTH, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    first = activity_feed(actor=ANA).rows
    undo = rollback(first[-1].id, by=ANA, now=NOW + timedelta(minutes=5))

    pages = [activity_feed(actor=ANA, page=n, per_page=2) for n in (1, 2, 3)]
    assert [(p.page, p.pages, p.total) for p in pages] == [(1, 3, 5), (2, 3, 5), (3, 3, 5)]
    ids = [a.id for p in pages for a in p.rows]
    assert ids[0] == undo.id  # the newest first: the undo
    assert sorted(ids) == sorted({*ids}) and len(ids) == 5
    assert activity_feed(actor=ANA, page=9, per_page=2).page == 3  # past the end: the last page
    undone = next(a for a in pages[2].rows + pages[1].rows if a.id == first[-1].id)
    assert undone.outcome == f"applied, then undone (action #{undo.id})"
    assert not undone.can_rollback
    assert pages[0].rows[0].action == "undo change budget"


def test_links_to_ads_manager_except_for_sandbox_accounts(twins) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(BOTH, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    as_if_on_meta(TWIN)

    links = {
        (a.account_external_id, a.entity_name): a.ads_manager_url
        for a in activity_feed(actor=ANA).rows
    }
    assert links[("act_2001", "A")] is None  # its Graph URL is the loopback sandbox
    assert links[(TWIN, "A")] == (
        "https://adsmanager.facebook.com/adsmanager/manage/campaigns"
        "?act=2002&selected_campaign_ids=53001"
    )
    assert ads_manager_url("adset", "act_2002", "54001") == (
        "https://adsmanager.facebook.com/adsmanager/manage/adsets?act=2002&selected_adset_ids=54001"
    )
    assert ads_manager_url("ad", "act_2002", "55001") == (
        "https://adsmanager.facebook.com/adsmanager/manage/ads?act=2002&selected_ad_ids=55001"
    )
    approval = save_rule(
        {**BOTH, "name": "Ask", "safety": {"require_approval": True}}, now=NOW, by=SYSTEM
    )
    run_rule_now(approval.id, NOW, by=SYSTEM)
    urls = {
        (p.account_external_id, p.entity_name): p.ads_manager_url for p in list_approvals(actor=ANA)
    }
    assert urls[("act_2001", "C")] is None
    assert urls[(TWIN, "C")].endswith("?act=2002&selected_campaign_ids=53003")


def test_approvals_name_their_account_and_numbers_in_words(twins) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**BOTH, "safety": {"require_approval": True}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)

    pending = list_approvals(actor=ANA)
    assert sorted((p.entity_name, p.account) for p in pending) == [
        ("A", "Twin (USD) (act_2002)"), ("A", "Worked example (USD) (act_2001)"),
        ("C", "Twin (USD) (act_2002)"), ("C", "Worked example (USD) (act_2001)"),
    ]  # fmt: skip
    c = next(p for p in pending if p.entity_name == "C")
    assert (c.level, c.currency) == ("campaign", "USD")
    why = " · ".join(c.why)
    # C: ROAS 5.0 and profit 180 over the last 7 days (the scenario), against 3 and 100
    assert "ROAS" in why and "last 7 days" in why and "5.00" in why
    assert "180.00 USD" in why and "100.00 USD" in why
    assert "@" not in why and "minor" not in why


def test_a_run_s_skipped_actions_name_their_account(twins) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**BOTH, "safety": {"cooldown_minutes": 600}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    again = run_rule_now(rule.id, NOW + timedelta(hours=1), by=SYSTEM)  # every match cooling down

    skipped = execution_detail(again.execution_id, actor=SYSTEM).skipped
    assert sorted((s.entity_name, s.account) for s in skipped) == [
        ("A", "Twin (USD) (act_2002)"), ("A", "Worked example (USD) (act_2001)"),
        ("C", "Twin (USD) (act_2002)"), ("C", "Worked example (USD) (act_2001)"),
    ]  # fmt: skip
    assert {s.action for s in skipped} == {"change budget"}
    assert all(s.reason.startswith("in cooldown") for s in skipped)


def test_execution_counts_say_what_happened(twins) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(BOTH, now=NOW, by=SYSTEM)
    result = run_rule_now(rule.id, NOW, by=SYSTEM)
    with write_session() as session:  # as core/engine/run.py records them (issue 11)
        session.execute(
            update(RuleExecution)
            .where(RuleExecution.id == result.execution_id)
            .values(actions_taken=0, actions_queued=3, actions_would=0, actions_skipped=1)
        )
    (row,) = list_executions(rule_id=rule.id, actor=SYSTEM)
    assert (row.actions_queued, row.actions_would) == (3, 0)
    assert row.outcome == "3 queued for approval, 1 skipped"
    with write_session() as session:
        session.execute(
            update(RuleExecution)
            .where(RuleExecution.id == result.execution_id)
            .values(actions_queued=0, actions_would=2, actions_skipped=0)
        )
    assert list_executions(rule_id=rule.id, actor=SYSTEM)[0].outcome == "2 would act (dry run)"


def test_runs_count_queued_and_would_be_actions(twins) -> None:  # type: ignore[no-untyped-def]
    """The counts as a real run records them (core/engine/run.py), said in words."""
    ask = save_rule(
        {**BOTH, "name": "Ask", "safety": {"require_approval": True}}, now=NOW, by=SYSTEM
    )
    run_rule_now(ask.id, NOW, by=SYSTEM)
    trial = save_rule({**BOTH, "name": "Try", "safety": {"dry_run": True}}, now=NOW, by=SYSTEM)
    run_rule_now(trial.id, NOW, by=SYSTEM)

    (asked,) = list_executions(rule_id=ask.id, actor=SYSTEM)
    assert (asked.actions_taken, asked.actions_queued, asked.actions_would) == (0, 4, 0)
    assert asked.outcome == "4 queued for approval"
    (tried,) = list_executions(rule_id=trial.id, actor=SYSTEM)
    assert (tried.actions_taken, tried.actions_queued, tried.actions_would) == (0, 0, 4)
    assert tried.outcome == "4 would act (dry run)"
