"""Deleting a rule or removing an account keeps the record of what Rex did: executions,
versions, actions (with their entity names), approvals and notifications stay and still
name the rule and the account — on SQLite and PostgreSQL, against the sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.access.actor import SYSTEM
from core.accounts import (
    AccountBusyError,
    AccountRemovedError,
    client_for,
    connect_account,
    get_account,
    list_accounts,
    remove_account,
)
from core.actions.approvals import list_approvals
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    AdAccount,
    AdEntity,
    AdMetric,
    AutomationRule,
    Notification,
    PendingAction,
    RuleExecution,
)
from core.engine.claim import claim_due
from core.engine.run import run_due_rules, run_rule_now
from core.errors import InputError, NotFoundError
from core.rules.store import delete_rule, get_rule, list_rules, rule_versions, save_rule
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW
from tests.documents import scale_winners
from tests.signed import ANA

ACCOUNT = "act_2001"
SCALE = scale_winners(
    scope={"level": "campaign", "account_ids": [ACCOUNT]},
    actions=[
        {"type": "change_budget", "by_percent": 25, "max": 500},
        {"type": "notify", "message": "scaled"},
    ],
    safety={"max_daily_actions": 10, "cooldown_minutes": 0},
)
ASK_FIRST = {
    **SCALE,
    "name": "Scale winners, asked first",
    "actions": [{"type": "change_budget", "by_percent": 10, "max": 500}],
    "safety": {"cooldown_minutes": 0, "require_approval": True},
}


def _record() -> dict[str, object]:
    """What the record holds, as the Executions and Approvals pages would name it."""
    with read_session() as session:
        actions = session.execute(
            select(ActionHistory.entity_name, AutomationRule.name, AdAccount.external_id)
            .join(AutomationRule, AutomationRule.id == ActionHistory.rule_id)
            .join(AdAccount, AdAccount.id == ActionHistory.account_id)
            .order_by(ActionHistory.id)
        ).all()
        executions = session.execute(
            select(RuleExecution.id, AutomationRule.name)
            .join(AutomationRule, AutomationRule.id == RuleExecution.rule_id)
            .order_by(RuleExecution.id)
        ).all()
        approvals = session.execute(
            select(PendingAction.id, AutomationRule.name, AdAccount.external_id)
            .join(AutomationRule, AutomationRule.id == PendingAction.rule_id)
            .join(AdAccount, AdAccount.id == PendingAction.account_id)
            .order_by(PendingAction.id)
        ).all()
        notifications = session.execute(
            select(Notification.title, AdAccount.external_id)
            .join(AdAccount, AdAccount.id == Notification.account_id)
            .order_by(Notification.id)
        ).all()
    return {
        "actions": [tuple(r) for r in actions],
        "executions": [tuple(r) for r in executions],
        "approvals": [tuple(r) for r in approvals],
        "notifications": [tuple(r) for r in notifications],
    }


def test_a_deleted_rule_keeps_its_record_and_never_runs_again(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE, now=NOW, by=SYSTEM)
    run = run_rule_now(rule.id, NOW, by=SYSTEM)
    assert run.actions_taken == 4  # a budget change and a notification each for A and C
    before = _record()
    assert sorted(a[:2] for a in before["actions"]) == 2 * [("A", "Scale winners")] + 2 * [
        ("C", "Scale winners")
    ]
    assert len(before["executions"]) == 1
    assert before["notifications"] == [("Scale winners: 2 campaigns matched", ACCOUNT)]

    deleted = delete_rule(rule.id, now=NOW, by=SYSTEM)

    assert deleted.deleted and deleted.status == "deleted"
    assert _record() == before  # executions, actions, notifications: all there, named
    assert [v for v, _ in rule_versions(rule.id, actor=SYSTEM)] == [1]
    assert list_rules(actor=SYSTEM) == []
    assert [(r.id, r.deleted) for r in list_rules(include_deleted=True, actor=SYSTEM)] == [
        (rule.id, True)
    ]
    with pytest.raises(NotFoundError, match="was deleted"):
        get_rule(rule.id, actor=SYSTEM)
    with pytest.raises(NotFoundError, match="was deleted"):
        save_rule({**SCALE, "name": "edited"}, rule_id=rule.id, now=NOW, by=SYSTEM)
    assert get_rule(rule.id, include_deleted=True, actor=SYSTEM).name == "Scale winners"

    # Never due again, even if its next run were set: the claim takes active rules only.
    with write_session() as session:
        session.execute(
            update(AutomationRule).where(AutomationRule.id == rule.id).values(next_execution_at=NOW)
        )
    later = NOW + timedelta(days=1)
    assert claim_due(later) == []
    assert run_due_rules(later) == []
    assert _record() == before and len(worked.state.write_log) == 2


def test_a_removed_account_keeps_the_record_and_comes_back_when_connected(worked) -> None:  # type: ignore[no-untyped-def]
    scale = save_rule(SCALE, now=NOW, by=SYSTEM)
    run_rule_now(scale.id, NOW, by=SYSTEM)
    asked = save_rule(ASK_FIRST, now=NOW, by=SYSTEM)
    run_rule_now(asked.id, NOW, by=SYSTEM)
    assert len(list_approvals(actor=ANA)) == 2
    before = _record()
    assert len(before["actions"]) == 4 and len(before["approvals"]) == 2
    assert len(before["notifications"]) == 1  # the notify action, once for the run
    account_id = get_account(ACCOUNT).id

    removed = remove_account(ACCOUNT, now=NOW, by=SYSTEM)

    assert removed.external_id == ACCOUNT and removed.campaigns == 3
    assert _record() == before  # the record stays, naming the rule, account and entities
    with read_session() as session:
        row = session.get_one(AdAccount, account_id)
        assert row.removed_at == NOW and row.token_encrypted == "" and not row.connected
        assert session.scalar(select(func.count(AdEntity.id))) == 0  # synced data gone
        assert session.scalar(select(func.count(AdMetric.id))) == 0
        assert set(session.scalars(select(ActionHistory.entity_id))) == {None}
    decided = list_approvals(status=None, actor=ANA)
    assert {(p.status, p.decided_by) for p in decided} == {("expired", "rex")}
    assert all(ACCOUNT in (p.decision_reason or "") for p in decided)

    # Not listed, not synced, not acted on, not in a rule's scope.
    assert list_accounts() == []
    assert [a.external_id for a in list_accounts(include_removed=True)] == [ACCOUNT]
    with pytest.raises(NotFoundError, match="was removed"):
        get_account(ACCOUNT)
    with pytest.raises(NotFoundError, match="was removed"):
        sync_accounts([ACCOUNT], options=SyncOptions(days=2, breakdowns=False, now=NOW))
    with pytest.raises(AccountRemovedError, match="connect it again"):
        client_for(row)
    with pytest.raises(InputError, match="it was removed"):
        save_rule({**SCALE, "name": "New"}, now=NOW, by=SYSTEM)
    writes = len(worked.state.write_log)
    after = run_rule_now(scale.id, NOW + timedelta(hours=2), by=SYSTEM)
    assert (after.entities_checked, after.actions_taken) == (0, 0)
    assert len(worked.state.write_log) == writes
    before["executions"].append((after.execution_id, "Scale winners"))

    # Connecting it again brings the same row back; the record is unchanged.
    again = connect_account(ACCOUNT, worked.token, graph_url=worked.url, by=SYSTEM)
    assert again.id == account_id and not again.removed
    sync_accounts([ACCOUNT], options=SyncOptions(days=15, breakdowns=False, now=NOW))
    assert get_account(ACCOUNT).campaigns == 3
    assert _record() == before


def test_an_account_with_unsettled_writes_is_not_removed(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    with write_session() as session:
        session.execute(update(ActionHistory).values(status="unknown"))

    with pytest.raises(AccountBusyError, match="still settling"):
        remove_account(ACCOUNT, now=NOW, by=SYSTEM)

    assert [a.external_id for a in list_accounts()] == [ACCOUNT]
    assert get_account(ACCOUNT).campaigns == 3


def test_the_scheduler_log_line_names_the_rules_it_ran(live, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    """The scheduler's record is its log: `job=engine_tick outcome=ok … rules=2` names them."""
    import logging

    from core.scheduler.service import JobSpec, Scheduler
    from core.settings import reload_settings

    first = save_rule(SCALE, by=SYSTEM)
    second = save_rule({**SCALE, "name": "Scale winners, again"}, by=SYSTEM)
    monkeypatch.setenv("REX_SCHEDULER_FRESH_MINUTES", "0")
    sched = Scheduler(settings=reload_settings())
    tick = sched._instrument(JobSpec("engine_tick", 60, 60, sched.engine_tick))
    with caplog.at_level(logging.INFO, logger="rex.scheduler"):
        tick()
    (line,) = [r.getMessage() for r in caplog.records if "job=engine_tick" in r.getMessage()]
    assert "rules=2" in line
    assert f'ran="#{first.id} Scale winners, #{second.id} Scale winners, again"' in line
    assert sched._rules_ran(list(range(1, 9)), shown=2).endswith('+6 more"')
    monkeypatch.undo()
    reload_settings()
