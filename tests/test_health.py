"""The system's figures and the Health page: each says what it counts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from core.actions.rollback import rollback
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
from core.rules.store import save_rule
from core.views.health import system_health
from tests.conftest import NOW
from tests.test_engine import SCALE_WINNERS

ROOT = Path(__file__).resolve().parent.parent


def test_figures_after_a_run(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, now=NOW)
    run_rule_now(rule.id, NOW)
    later = save_rule(
        {
            **SCALE_WINNERS,
            "name": "Pause losers",
            "actions": [{"type": "pause"}],
            "conditions": {"metric": "roas", "window": "last_7d", "op": "<", "value": 3},
        },
        now=NOW,
    )
    run_rule_now(later.id, NOW)

    health = system_health(now=NOW + timedelta(days=2))
    assert (health.rule_success_rate, health.action_success_rate) == (1.0, 1.0)
    assert health.active_rules == 2 and health.pending_approvals == 0
    assert health.actions_today == 0  # they were two days ago
    # A ($250) and C ($400) are active with their new budgets; B was paused
    assert health.budget_under_automation == {"USD": Decimal("650.00")}
    # B spent 45.45 over the 7 days before its pause: 6.4929/day × 2 days paused
    assert health.spend_saved["USD"].quantize(Decimal("0.01")) == Decimal("12.99")
    assert health.revenue_change_after_scaling == {}  # the 7 days after are not over yet


def test_the_page_says_when_no_scheduler_runs(db: Engine) -> None:
    app = AppTest.from_file(str(ROOT / "pages/health.py"), default_timeout=60)
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
    assert system_health(now=NOW).budget_under_automation == {}
    save_rule(_rule("Only says", [{"type": "notify"}]), now=NOW)
    save_rule(_rule("Tries", [{"type": "pause"}], dry_run=True), now=NOW)
    save_rule({**_rule("Off", [{"type": "pause"}]), "status": "paused"}, now=NOW)
    assert system_health(now=NOW).budget_under_automation == {}  # none of them changes any

    only_c = [{"field": "name", "op": "=", "value": "C"}]
    save_rule(_rule("Guards C", [{"type": "pause"}], only_c), now=NOW)
    health = system_health(now=NOW)
    assert health.budget_under_automation == {"USD": Decimal("320.00")}
    assert health.entities_under_automation == 1

    not_c = [{"field": "name", "op": "!=", "value": "C"}]
    save_rule(_rule("Scales", [{"type": "change_budget", "by_percent": 10, "max": 900}], not_c))
    save_rule(_rule("Also C", [{"type": "pause"}], only_c), now=NOW)  # counted once
    health = system_health(now=NOW)
    assert health.budget_under_automation == {"USD": Decimal("670.00")}
    assert health.entities_under_automation == 3


def test_spend_saved_counts_the_time_paused_so_far_and_stops_at_the_undo(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(
        {**_rule("Pause B", [{"type": "pause"}]), "conditions": {
            "metric": "roas", "window": "last_7d", "op": "<", "value": 3}},
        now=NOW,
    )  # fmt: skip
    run_rule_now(rule.id, NOW)
    per_day = Decimal("45.45") / 7  # B's spend over the 7 days before the pause
    soon = system_health(now=NOW + timedelta(hours=6))
    assert soon.pauses_counted == 1 and soon.pauses_without_data == 0
    assert soon.spend_saved["USD"].quantize(Decimal("0.0001")) == (per_day / 4).quantize(
        Decimal("0.0001")
    )  # a quarter of a day paused

    with read_session() as session:
        pause = session.scalars(select(ActionHistory).where(ActionHistory.action_type == "pause"))
        pause_id = next(iter(pause)).id
    rollback(pause_id, now=NOW + timedelta(days=1))
    later = system_health(now=NOW + timedelta(days=3))  # paused for one day only
    assert later.spend_saved["USD"].quantize(Decimal("0.0001")) == per_day.quantize(
        Decimal("0.0001")
    )


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
                                  created_at=at))  # fmt: skip
        return account.id


def test_a_pause_without_synced_days_before_it_is_not_enough_data(db: Engine) -> None:
    _account_with_a_pause(utcnow() - timedelta(hours=2))  # nothing synced before it
    health = system_health()
    assert health.spend_saved == {} and health.pauses_without_data == 1

    app = AppTest.from_file(str(ROOT / "pages/health.py"), default_timeout=60)
    app.run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Spend saved by pauses (30 days)"] == "not enough data yet"
    assert metrics["Daily budget under automation"] == "none"
    assert any("no synced day before them" in c.value for c in app.caption)


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

    app = AppTest.from_file(str(ROOT / "pages/health.py"), default_timeout=60)
    app.run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Average execution"] == "1.5 s"
    jobs = app.dataframe[0].value
    assert list(jobs.columns) == ["Job", "Last run", "Outcome", "Took"]
    by_job = {row["Job"]: row for row in jobs.to_dict("records")}
    assert set(by_job) == {"sync", "heartbeat"}  # "stopped" is how it ended, not a job
    assert by_job["sync"]["Last run"] == "2026-11-20 18:30:05 UTC"
    assert (by_job["sync"]["Took"], by_job["heartbeat"]["Took"]) == ("12.3 s", "4 ms")
