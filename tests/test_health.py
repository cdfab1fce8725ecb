"""The system's figures and the Health page: each says what it counts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    AdAccount,
    AdEntity,
    AutomationRule,
    RuleExecution,
    SchedulerHeartbeat,
)
from core.db.types import utcnow
from core.engine.run import run_rule_now
from core.outcomes.record import update_outcomes
from core.rules.store import save_rule
from core.views.health import Counted, system_health
from core.views.outcomes import effect_words, money
from tests.conftest import NOW
from tests.signed import signed_page
from tests.test_engine import SCALE_WINNERS

ROOT = Path(__file__).resolve().parent.parent


def test_figures_after_a_run(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    later = save_rule(
        {
            **SCALE_WINNERS,
            "name": "Pause losers",
            "actions": [{"type": "pause"}],
            "conditions": {"metric": "roas", "window": "last_7d", "op": "<", "value": 3},
        },
        now=NOW,
        by=SYSTEM,
    )
    run_rule_now(later.id, NOW, by=SYSTEM)

    health = system_health(now=NOW + timedelta(days=2), actor=SYSTEM)
    assert (health.rule_success_rate, health.action_success_rate) == (1.0, 1.0)
    assert health.active_rules == 2 and health.pending_approvals == 0
    assert health.actions_today == 0  # they were two days ago
    # A ($250) and C ($400) are active with their new budgets; B was paused
    assert health.budget_under_automation == {"USD": Decimal("650.00")}
    # what the pause and the raises did is measured 7 days after them (+3 to settle)
    assert health.spend_saved == {} and health.revenue_change_after_scaling == {}
    assert health.pauses == Counted(measured=0, waiting=1, without_estimate=0)
    assert health.raises == Counted(measured=0, waiting=2, without_estimate=0)


def test_the_page_says_when_no_scheduler_runs(db: Engine) -> None:
    app = signed_page("pages/health.py", timeout=60)
    app.run()
    assert not app.exception
    assert "python -m core.scheduler" in app.warning[0].value
    assert {m.label for m in app.metric} >= {"Rule success rate", "API error rate"}


def _rule(name: str, actions: list, filters: list | None = None, **safety) -> dict:  # type: ignore[type-arg]
    return {
        "name": name,
        "scope": {"level": "campaign", "account_ids": ["act_2001"], "filters": filters or []},
        "conditions": {"metric": "roas", "window": "last_7d", "op": ">", "value": 100},
        "actions": actions,
        "safety": {"cooldown_minutes": 0, **safety},
    }


def test_budget_under_automation_counts_what_active_rules_can_change(worked) -> None:  # type: ignore[no-untyped-def]
    # A 200, B 150 and C 320 USD a day, all delivering; no rule yet
    assert system_health(now=NOW, actor=SYSTEM).budget_under_automation == {}
    save_rule(_rule("Only says", [{"type": "notify"}]), now=NOW, by=SYSTEM)
    save_rule(_rule("Tries", [{"type": "pause"}], dry_run=True), now=NOW, by=SYSTEM)
    save_rule({**_rule("Off", [{"type": "pause"}]), "status": "paused"}, now=NOW, by=SYSTEM)
    assert (
        system_health(now=NOW, actor=SYSTEM).budget_under_automation == {}
    )  # none of them changes any

    only_c = [{"field": "name", "op": "=", "value": "C"}]
    save_rule(_rule("Guards C", [{"type": "pause"}], only_c), now=NOW, by=SYSTEM)
    health = system_health(now=NOW, actor=SYSTEM)
    assert health.budget_under_automation == {"USD": Decimal("320.00")}
    assert health.entities_under_automation == 1

    not_c = [{"field": "name", "op": "!=", "value": "C"}]
    save_rule(
        _rule("Scales", [{"type": "change_budget", "by_percent": 10, "max": 900}], not_c), by=SYSTEM
    )
    save_rule(_rule("Also C", [{"type": "pause"}], only_c), now=NOW, by=SYSTEM)  # counted once
    health = system_health(now=NOW, actor=SYSTEM)
    assert health.budget_under_automation == {"USD": Decimal("670.00")}
    assert health.entities_under_automation == 3


def _account_with_a_pause(at) -> int:  # type: ignore[no-untyped-def]
    with write_session() as session:
        account = AdAccount(external_id="act_77", name="New shop", currency="EUR",
                            timezone_name="Europe/Berlin", account_status=1,
                            token_encrypted="x")  # fmt: skip
        session.add(account)
        session.flush()
        campaign = AdEntity(account_id=account.id, level="campaign", external_id="c77",
                            name="Fresh", status="PAUSED", effective_status="PAUSED",
                            daily_budget_minor=5_000)  # fmt: skip
        session.add(campaign)
        session.flush()
        session.add(ActionHistory(account_id=account.id, entity_id=campaign.id,
                                  entity_name="Fresh", action_type="pause",
                                  old_value="ACTIVE", new_value="PAUSED", status="succeeded",
                                  created_at=at, finished_at=at))  # fmt: skip
        return account.id


def test_a_pause_without_synced_days_before_it_is_not_enough_data(db: Engine) -> None:
    _account_with_a_pause(utcnow() - timedelta(days=15))  # its 7 days after have settled
    assert system_health(actor=SYSTEM).pauses == Counted(measured=0, waiting=1, without_estimate=0)
    update_outcomes(now=utcnow())  # nothing was synced before it: no estimate
    health = system_health(actor=SYSTEM)
    assert health.spend_saved == {}
    assert health.pauses == Counted(measured=0, waiting=0, without_estimate=1)

    app = signed_page("pages/health.py", timeout=60)
    app.run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Spend saved by pauses (30 days)"] == "not enough data"
    assert metrics["Daily budget under automation"] == "none"
    assert any("1 with too little data for an estimate" in c.value for c in app.caption)


def test_the_page_shows_durations_and_times_as_people_read_them(db: Engine) -> None:
    now = utcnow()
    with write_session() as session:
        jobs = {  # as the scheduler records them: ISO times, whole milliseconds
            "sync": {"last_run_at": "2026-11-20T18:30:05.123456+00:00", "outcome": "ok",
                     "duration_ms": 12_345},
            "heartbeat": {"last_run_at": now.isoformat(), "outcome": "ok", "duration_ms": 4},
            "stopped": "killed (stopped without a word)",  # how recovery closes a killed one
        }  # fmt: skip
        session.add(SchedulerHeartbeat(host="box", pid=42, started_at=now, last_tick_at=now,
                                       jobs=jobs))  # fmt: skip
        rule = AutomationRule(name="r", level="campaign", document={}, status="paused")
        session.add(rule)
        session.flush()
        for ms in (1_000, 2_000):
            session.add(RuleExecution(rule_id=rule.id, started_at=now, duration_ms=ms,
                                      status="succeeded"))  # fmt: skip

    app = signed_page("pages/health.py", timeout=60)
    app.run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Average execution"] == "1.5 s"
    jobs = app.dataframe[0].value
    assert list(jobs.columns) == ["Job", "Last run", "Outcome", "Took"]
    by_job = {row["Job"]: row for row in jobs.to_dict("records")}
    assert set(by_job) == {"sync", "heartbeat"}  # "stopped" is how it ended, not a job
    assert by_job["sync"]["Last run"] == "2026-11-20 18:30:05 UTC"
    assert (by_job["sync"]["Took"], by_job["heartbeat"]["Took"]) == ("12.3 s", "4 ms")


def test_the_impact_figures_are_the_outcomes_estimates_and_hold_the_truth(db: Engine) -> None:
    """A rule pauses one ad set, another raises one's budget 20 %; twelve simulated days
    on, the Health figures are those changes' estimated effects over the 7 days after
    them (against the ad sets not changed); the spend the pause saved holds what it truly
    saved in the sandbox's market (the world with it against the world without)."""
    import copy

    import requests

    from core.accounts import connect_account
    from core.db.models import RexOutcomeCheckpoint, RexSuggestionPerformance
    from core.rules.windows import local_today
    from core.sandbox import SandboxServer
    from tests.test_outcomes import ACCOUNT, scenario, sync

    start, later = NOW, NOW + timedelta(days=12)  # the sandbox's noise follows its days

    def one(name: str, action: dict) -> dict:  # type: ignore[type-arg]
        return {
            "name": name,
            "scope": {"level": "adset", "account_ids": [ACCOUNT],
                      "filters": [{"field": "name", "op": "=", "value": name}]},
            "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0},
            "actions": [action], "safety": {"cooldown_minutes": 0},
        }  # fmt: skip

    with SandboxServer(scenario=copy.deepcopy(scenario()), now=start) as server:
        connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
        sync(start, 35)
        for rule in (
            save_rule(one("Shop · 8004", {"type": "pause"}), now=start, by=SYSTEM),
            save_rule(
                one("Shop · 8003", {"type": "change_budget", "by_percent": 20, "max": 1000}),
                now=start,
                by=SYSTEM,
            ),  # fmt: skip
        ):
            run_rule_now(rule.id, start, by=SYSTEM)
        with write_session() as session:  # as if they had run at `start` (the sandbox's now)
            for action in session.scalars(select(ActionHistory)):
                action.finished_at = start
        moved = requests.post(f"{server.url}/__sandbox/clock", json={"advance_days": 12},
                              timeout=10)  # fmt: skip
        assert moved.ok, moved.text
        sync(later, 16)
        update_outcomes(now=later)
        world = server.state
        changed_on = local_today("America/Los_Angeles", start)
        (paused,) = [c for c in world.changes if c.entity_id == "8004" and c.field == "status"]
        truth_spend = sum(
            world.true_effect(world.entities["8004"], changed_on + timedelta(days=k), paused)[
                "spend"
            ]
            for k in range(1, 8)
        )

    with read_session() as session:
        weeks = {
            outcome.kind: checkpoint
            for outcome, checkpoint in session.execute(
                select(RexSuggestionPerformance, RexOutcomeCheckpoint)
                .join(
                    RexOutcomeCheckpoint,
                    RexOutcomeCheckpoint.performance_id == RexSuggestionPerformance.id,
                )
                .where(RexOutcomeCheckpoint.days == 7)
            )
        }
    pause, raised = weeks["pause"].effects or {}, weeks["change_budget"].effects or {}
    health = system_health(now=later, actor=SYSTEM)
    assert health.pauses == Counted(measured=1) and health.raises == Counted(measured=1)
    saved = health.spend_saved["USD"]  # what the pause did not spend, with its interval
    assert (saved.estimate, saved.low, saved.high) == pytest.approx(
        (-pause["spend"]["estimate"], -pause["spend"]["high"], -pause["spend"]["low"])
    )
    assert saved.low <= -truth_spend <= saved.high and saved.estimate > 0
    assert health.profit_after_pauses["USD"].estimate == pytest.approx(
        pause["profit"]["estimate"]
    )  # fmt: skip
    scaled = health.revenue_change_after_scaling["USD"]
    assert (scaled.estimate, scaled.low, scaled.high) == pytest.approx(
        (raised["revenue"]["estimate"], raised["revenue"]["low"], raised["revenue"]["high"])
    )
    # (a raise's revenue is noisy: over one week its interval is wide, and whether one
    # draw of it holds the truth says little — coverage over many worlds is measured in
    # tests/test_outcomes_estimate.py and bench/outcomes.py; the pause's spend is tight)
    assert scaled.low < scaled.estimate < scaled.high

    # the page reads the real clock: as if the changes had been made 12 days ago
    with write_session() as session:
        for action in session.scalars(select(ActionHistory)):
            action.created_at = utcnow() - timedelta(days=12)
    app = signed_page("pages/health.py", timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Spend saved by pauses (30 days)"] == money(saved.estimate, "USD")
    assert metrics["Revenue change after budget raises (30 days)"] == money(
        scaled.estimate, "USD"
    )  # fmt: skip
    captions = [c.value for c in app.caption]
    assert f"90 %: {effect_words((saved.estimate, saved.low, saved.high), 'USD')}" in captions
    assert "1 pause(s) measured" in captions and "1 raise(s) measured" in captions
