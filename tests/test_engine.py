"""The rule engine end to end: rules evaluated on synced data, acted on through the
sandbox over HTTP, once, inside the safety rails, on the record — SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.actions.approvals import ApprovalError, approve, expire_approvals, list_approvals, reject
from core.actions.rollback import RollbackRefused, rollback
from core.db import read_session
from core.db.models import ActionHistory, AdEntity, Notification, RuleExecution
from core.engine.claim import claim_rule
from core.engine.run import run_claimed, run_rule_now
from core.rules.store import save_rule
from core.settings import reload_settings
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW
from tests.documents import scale_winners
from tests.signed import ANA, BO

# Other test modules import this one; a new test can call scale_winners() instead.
SCALE_WINNERS = scale_winners(
    scope={"level": "campaign", "account_ids": ["act_2001"]},
    safety={"max_daily_actions": 10, "cooldown_minutes": 0},
)


def budgets(server) -> dict[str, int | None]:  # type: ignore[no-untyped-def]
    with server.state.lock:
        return {e.name: e.daily_budget for e in server.state.entities.values()
                if e.level == "campaign"}  # fmt: skip


def actions() -> list[ActionHistory]:
    with read_session() as session:
        return list(session.scalars(select(ActionHistory).order_by(ActionHistory.id)))


def test_the_worked_example_scales_a_and_c(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    result = run_rule_now(rule.id, NOW, by=SYSTEM)

    assert (result.status, result.entities_checked, result.entities_matched) == (
        "succeeded", 3, 2,
    )  # fmt: skip
    assert budgets(worked) == {"A": 25_000, "B": 15_000, "C": 40_000}
    assert [(a.entity_name, a.old_value, a.new_value, a.status) for a in actions()] == [
        ("A", "200.00 USD", "250.00 USD", "succeeded"),
        ("C", "320.00 USD", "400.00 USD", "succeeded"),
    ]
    assert sorted(w.params["daily_budget"] for w in worked.state.write_log) == ["25000", "40000"]
    with read_session() as session:  # refreshed from what Meta now reports
        local = dict(session.execute(
            select(AdEntity.name, AdEntity.daily_budget_minor).where(AdEntity.level == "campaign")
        ).all())  # fmt: skip
        execution = session.get_one(RuleExecution, result.execution_id)
    assert local == {"A": 25_000, "B": 15_000, "C": 40_000}
    assert (execution.actions_taken, execution.status) == (2, "succeeded")
    assert {c["name"] for c in execution.trace["candidates"] if c["matched"]} == {"A", "C"}


def test_dry_run_writes_nothing_to_meta(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"dry_run": True}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    assert worked.state.write_log == []
    assert [(a.entity_name, a.new_value, a.status) for a in actions()] == [
        ("A", "250.00 USD", "dry_run"),
        ("C", "400.00 USD", "dry_run"),
    ]


def test_the_same_slot_twice_writes_once(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    claim = claim_rule(rule.id, NOW)
    run_claimed(claim, NOW)
    again = claim_rule(rule.id, NOW + timedelta(seconds=5))
    second = run_claimed(again, NOW + timedelta(seconds=5))  # same minute: same slot
    assert len(worked.state.write_log) == 2
    assert {s.reason for s in second.steps} == {"already done in this slot"}


def test_daily_cap_counts_across_runs(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts(options=SyncOptions(days=8, breakdowns=False, now=NOW,
                                      client_options={"poll_seconds": 0.01}))  # fmt: skip
    rule = save_rule(
        {
            "name": "Pause everything that spent",
            "scope": {"level": "ad", "account_ids": [account],
                      "filters": [{"field": "effective_status", "op": "in", "value": ["ACTIVE"]}]},
            "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0},
            "actions": [{"type": "pause"}],
            "safety": {"max_daily_actions": 2, "cooldown_minutes": 0},
        },
        now=NOW, by=SYSTEM)  # fmt: skip
    first = run_rule_now(rule.id, NOW, by=SYSTEM)
    second = run_rule_now(rule.id, NOW + timedelta(hours=1), by=SYSTEM)

    assert first.entities_matched >= 5
    assert len(sandbox.state.write_log) == 2
    assert first.actions_taken == 2 and first.actions_skipped == first.entities_matched - 2
    caps = [s for s in first.steps if (s.reason or "").startswith("daily cap")]
    assert len(caps) == first.entities_matched - 2
    assert second.actions_taken == 0  # the cap is the account's day, across runs


def test_a_budget_under_a_campaign_budget_is_reported_not_sent(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts(options=SyncOptions(days=8, breakdowns=False, now=NOW,
                                      client_options={"poll_seconds": 0.01}))  # fmt: skip
    rule = save_rule(
        {
            "name": "Scale retargeting ad sets",
            "scope": {"level": "adset", "account_ids": [account],
                      "filters": [{"field": "name", "op": "contains", "value": "Retargeting"}]},
            "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0},
            "actions": [{"type": "change_budget", "by_percent": 10}],
        },
        now=NOW, by=SYSTEM)  # fmt: skip
    result = run_rule_now(rule.id, NOW, by=SYSTEM)
    assert result.entities_matched >= 1 and sandbox.state.write_log == []
    assert all("lives on its campaign" in s.reason for s in result.steps)


def test_approve_reject_expire_and_double_approve(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    queued = list_approvals(actor=ANA)
    assert [(q.entity_name, q.old, q.new) for q in queued] == [
        ("A", "200.00 USD", "250.00 USD"),
        ("C", "320.00 USD", "400.00 USD"),
    ]
    assert worked.state.write_log == []
    assert queued[0].justification["values"]["roas@last_7d"].startswith("4.19")

    done = approve(queued[0].id, by=ANA, now=NOW + timedelta(minutes=5))
    assert done.status == "approved" and budgets(worked)["A"] == 25_000
    with pytest.raises(ApprovalError, match="already approved by ana"):
        approve(queued[0].id, by=BO, now=NOW + timedelta(minutes=6))
    assert len(worked.state.write_log) == 1

    rejected = reject(queued[1].id, by=BO, reason="not this week", now=NOW)
    assert rejected.status == "rejected" and budgets(worked)["C"] == 32_000


def test_an_expired_proposal_cannot_be_approved(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    a, _c = list_approvals(actor=ANA)

    with pytest.raises(ApprovalError, match="expired at"):
        approve(a.id, by=ANA, now=NOW + timedelta(hours=25))
    assert expire_approvals(NOW + timedelta(hours=25)) == 2
    assert {q.status for q in list_approvals(None, actor=ANA)} == {"expired"}
    assert worked.state.write_log == []


@pytest.fixture
def two_hour_approvals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REX_APPROVAL_TTL_HOURS", "2")
    reload_settings()
    yield
    monkeypatch.delenv("REX_APPROVAL_TTL_HOURS")
    reload_settings()


def test_the_approval_window_is_a_setting(worked, two_hour_approvals) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    a, _c = list_approvals(actor=ANA)

    assert a.expires_at == NOW + timedelta(hours=2)
    with pytest.raises(ApprovalError, match="expired at"):
        approve(a.id, by=ANA, now=NOW + timedelta(hours=3))
    assert worked.state.write_log == []


def test_a_stale_proposal_is_not_executed(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    c = next(q for q in list_approvals(actor=ANA) if q.entity_name == "C")
    with worked.state.lock:  # someone changes C's budget in Ads Manager meanwhile
        next(e for e in worked.state.entities.values() if e.name == "C").daily_budget = 35_000

    with pytest.raises(ApprovalError, match="stale"):
        approve(c.id, by=ANA, now=NOW + timedelta(minutes=1))
    assert worked.state.write_log == []
    assert next(q for q in list_approvals(None, actor=ANA) if q.id == c.id).status == "stale"


def test_a_stale_proposal_says_the_budget_in_its_currency(worked) -> None:  # type: ignore[no-untyped-def]
    """Defect 7: the drift is said as money ("now 350.00 USD"), never in minor units."""
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    c = next(q for q in list_approvals(actor=ANA) if q.entity_name == "C")
    with worked.state.lock:  # 350.00 USD set in Ads Manager; the proposal saw 320.00 USD
        next(e for e in worked.state.entities.values() if e.name == "C").daily_budget = 35_000

    with pytest.raises(ApprovalError) as refused:
        approve(c.id, by=ANA, now=NOW + timedelta(minutes=1))
    message = str(refused.value)
    assert "daily budget is now 350.00 USD, not the 320.00 USD" in message
    assert "minor" not in message and "35000" not in message
    stale = next(q for q in list_approvals(None, actor=ANA) if q.id == c.id)
    assert "350.00 USD" in stale.decision_reason


def test_rollback_restores_and_refuses_after_drift(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    on_a, on_c = actions()

    undo = rollback(on_a.id, by=ANA, now=NOW)
    assert (undo.status, undo.old_value, undo.new_value) == (
        "succeeded",
        "250.00 USD",
        "200.00 USD",
    )
    assert budgets(worked)["A"] == 20_000
    with pytest.raises(RollbackRefused, match="already rolled back"):
        rollback(on_a.id, by=ANA, now=NOW)

    with worked.state.lock:  # C was changed by hand after Rex raised it
        next(e for e in worked.state.entities.values() if e.name == "C").daily_budget = 45_000
    with pytest.raises(RollbackRefused, match="someone changed it since"):
        rollback(on_c.id, by=ANA, now=NOW)
    assert budgets(worked)["C"] == 45_000


def test_a_rejected_token_during_a_run_holds_the_account(worked) -> None:  # type: ignore[no-untyped-def]
    from core.sandbox import FaultConfig

    rule = save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    worked.set_faults(FaultConfig(expired_token=True))
    result = run_rule_now(rule.id, NOW, by=SYSTEM)

    assert result.status == "failed"
    assert {a.status for a in actions()} == {"failed"}
    with read_session() as session:
        notes = session.scalars(select(Notification)).all()
    assert [n.kind for n in notes] == ["account_held"]  # once, however many calls fail
    again = run_rule_now(rule.id, NOW + timedelta(hours=1), by=SYSTEM)
    assert all("needs reconnecting" in s.reason for s in again.steps)
    assert len(actions()) == 2  # nothing new was sent


def test_cooldown_and_the_next_run_time(worked) -> None:  # type: ignore[no-untyped-def]
    from core.rules.store import get_rule

    rule = save_rule(
        {**SCALE_WINNERS, "actions": [{"type": "pause"}], "schedule": {"every_minutes": 30},
         "safety": {"cooldown_minutes": 120}},
        now=NOW, by=SYSTEM)  # fmt: skip
    run_rule_now(rule.id, NOW, by=SYSTEM)
    paused = {e.name for e in worked.state.entities.values() if e.status == "PAUSED"}
    assert paused == {"A", "C"}
    assert get_rule(rule.id, actor=SYSTEM).next_execution_at == NOW.replace(second=0) + timedelta(
        minutes=30
    )

    on_a = actions()[0]
    undo = rollback(on_a.id, by=ANA, now=NOW + timedelta(minutes=1))
    assert (undo.old_value, undo.new_value) == ("PAUSED", "ACTIVE")
    assert next(e for e in worked.state.entities.values() if e.name == "A").status == "ACTIVE"

    again = run_rule_now(
        rule.id, NOW + timedelta(minutes=30), by=SYSTEM
    )  # A matches again, cooling down
    assert [s.reason[:16] for s in again.steps if s.name == "A"] == ["in cooldown unti"]


def test_duplicate_makes_a_paused_copy_and_rollback_archives_it(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(
        {**SCALE_WINNERS, "actions": [{"type": "duplicate", "name_suffix": " (Rex)"}]},
        now=NOW,
        by=SYSTEM,
    )
    run_rule_now(rule.id, NOW, by=SYSTEM)
    copies = {e.name: e for e in worked.state.entities.values() if e.name.endswith(" (Rex)")}
    assert {(name, e.status) for name, e in copies.items()} == {
        ("A (Rex)", "PAUSED"),
        ("C (Rex)", "PAUSED"),
    }
    on_a = actions()[0]
    assert on_a.new_value == copies["A (Rex)"].id

    rollback(on_a.id, by=ANA, now=NOW)
    assert copies["A (Rex)"].status == "ARCHIVED"
    copies["C (Rex)"].status = "ACTIVE"  # someone launched the other copy meanwhile
    with pytest.raises(RollbackRefused, match="now ACTIVE"):
        rollback(actions()[1].id, by=ANA, now=NOW)
