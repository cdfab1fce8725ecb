"""Deciding several proposals at once — `approve_many` and `reject_many`, the one path the
Approvals page and the CLI share — against the sandbox over HTTP, on SQLite and
PostgreSQL: mixed batches (pending, already decided, unknown, stale, expired, Meta
unreachable), one typed outcome per id in words, Meta asked in batches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM, Actor
from core.access.audit import audit_log
from core.access.roles import Role
from core.accounts import connect_account
from core.actions.approvals import (
    ApprovalView,
    DecisionOutcome,
    approve_many,
    expire_approvals,
    list_approvals,
    reject_many,
)
from core.db import read_session
from core.db.models import AdAccount
from core.engine.run import run_rule_now
from core.rules.store import save_rule
from core.sandbox import FaultConfig
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW
from tests.documents import scale_winners
from tests.signed import ANA, BO, CY, person

LATER = NOW + timedelta(minutes=1)
UNKNOWN = 99_999_999


def raise_budgets(account: str) -> dict[str, Any]:
    """Ad sets that spent get 10% more budget, after a person approves."""
    return {
        "name": f"Raise spending ad sets of {account}",
        "scope": {"level": "adset", "account_ids": [account],
                  "filters": [{"field": "effective_status", "op": "in", "value": ["ACTIVE"]}]},
        "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0},
        "actions": [{"type": "change_budget", "by_percent": 10}],
        "safety": {"require_approval": True, "max_daily_actions": 100, "cooldown_minutes": 0},
    }  # fmt: skip


@pytest.fixture
def queued(db: Engine, sandbox) -> dict[str, list[ApprovalView]]:  # type: ignore[no-untyped-def]
    """Both sandbox accounts (USD, JPY) synced, with budget proposals waiting on each:
    account → its pending proposals."""
    for account in sandbox.account_ids:
        connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts(options=SyncOptions(days=8, breakdowns=False, now=NOW,
                                      client_options={"poll_seconds": 0.01}))  # fmt: skip
    for account in sandbox.account_ids:
        run_rule_now(save_rule(raise_budgets(account), now=NOW, by=SYSTEM).id, NOW, by=SYSTEM)
    pending = list_approvals(actor=ANA)
    by_account = {
        a: [p for p in pending if p.account_external_id == a] for a in sandbox.account_ids
    }
    assert all(len(p) >= 3 for p in by_account.values()), by_account
    with sandbox.state.lock:
        assert sandbox.state.write_log == []
        sandbox.state.request_log.clear()
    return by_account


def set_budget(sandbox, proposal: ApprovalView, minor: int) -> None:  # type: ignore[no-untyped-def]
    """Someone changes the ad set's budget in Ads Manager after the rule proposed."""
    with sandbox.state.lock:
        sandbox.state.entities[proposal.entity_external_id].daily_budget = minor


def statuses() -> dict[int, str]:
    return {p.id: p.status for p in list_approvals(None, actor=ANA)}


def test_approving_a_mixed_batch_says_each_outcome_and_writes_once(sandbox, queued) -> None:  # type: ignore[no-untyped-def]
    usd, jpy = sandbox.account_ids
    decided, stale, first, second = queued[usd][:4]
    moved = queued[jpy][0]
    assert reject_many([decided.id], by=BO, now=NOW).all_decided
    set_budget(sandbox, stale, 12_345)  # 123.45 USD
    set_budget(sandbox, moved, 6_250)  # 6,250 JPY: yen have no minor unit
    with sandbox.state.lock:
        sandbox.state.request_log.clear()

    batch = [stale.id, first.id, decided.id, UNKNOWN, second.id, moved.id, first.id]
    result = approve_many(batch, by=ANA, reason="good week", now=LATER)

    assert [d.approval_id for d in result] == batch  # one per id given, in that order
    assert [d.outcome for d in result] == [
        DecisionOutcome.STALE,
        DecisionOutcome.APPROVED,
        DecisionOutcome.ALREADY_DECIDED,
        DecisionOutcome.NOT_FOUND,
        DecisionOutcome.APPROVED,
        DecisionOutcome.STALE,
        DecisionOutcome.APPROVED,
    ]
    assert not result.all_decided
    # stale: the value Meta has now, as the currency writes it — never minor units
    assert result.of(stale.id).current == "123.45 USD"
    assert result.of(stale.id).message == (
        f"proposal {stale.id} is stale and was not executed: its daily budget is now "
        f"123.45 USD, not the {stale.old} it had when the rule proposed this"
    )
    assert result.of(moved.id).current == "6,250 JPY"
    assert "6250" not in result.of(moved.id).message
    assert (
        result.of(decided.id).message
        == f"proposal {decided.id} is already rejected by bo@example.com"
    )
    assert result.of(UNKNOWN).message == f"no pending action with id {UNKNOWN}"
    assert result.of(UNKNOWN).view is None
    for proposal in (first, second):
        done = result.of(proposal.id)
        assert (done.action_status, done.view.status) == ("succeeded", "approved")
        assert done.view.action_id == done.action_id and done.view.decided_by == "ana@example.com"

    with sandbox.state.lock:
        writes = list(sandbox.state.write_log)
        log = list(sandbox.state.request_log)
    assert sorted(w.object_id for w in writes) == sorted(
        [first.entity_external_id, second.entity_external_id]
    )  # the duplicate id executed once; the stale ones not at all
    assert len([r for r in log if "POST" in r.get("batch", [])]) == 1  # ⌈2/50⌉
    after = statuses()
    assert (after[stale.id], after[moved.id], after[decided.id]) == ("stale", "stale", "rejected")
    assert "123.45 USD" in result.of(stale.id).view.decision_reason


def test_rejecting_a_mixed_batch_asks_nothing_of_meta(sandbox, queued) -> None:  # type: ignore[no-untyped-def]
    usd, jpy = sandbox.account_ids
    approved, first, second = queued[usd][:3]
    other = queued[jpy][0]
    assert approve_many([approved.id], by=ANA, now=LATER).all_decided
    with sandbox.state.lock:
        sandbox.state.request_log.clear()

    batch = [first.id, approved.id, UNKNOWN, other.id, second.id]
    result = reject_many(batch, by=BO, reason="not this week", now=LATER)

    assert [d.outcome for d in result] == [
        DecisionOutcome.REJECTED,
        DecisionOutcome.ALREADY_DECIDED,
        DecisionOutcome.NOT_FOUND,
        DecisionOutcome.REJECTED,
        DecisionOutcome.REJECTED,
    ]
    assert [d.decided for d in result] == [True, False, False, True, True]
    assert result.of(first.id).message == "rejected by bo@example.com: not this week"
    assert (
        result.of(approved.id).message
        == f"proposal {approved.id} is already approved by ana@example.com"
    )
    assert result.of(UNKNOWN).message == f"no pending action with id {UNKNOWN}"
    for proposal in (first, second, other):
        view = result.of(proposal.id).view
        assert (view.status, view.decided_by, view.decision_reason, view.action_id) == (
            "rejected", "bo@example.com", "not this week", None,
        )  # fmt: skip
    with sandbox.state.lock:
        assert sandbox.state.request_log == []  # no re-read, no write
        assert len(sandbox.state.write_log) == 1  # the earlier approval's
    again = reject_many([first.id], by=CY, now=LATER)
    assert again.of(first.id).outcome == DecisionOutcome.ALREADY_DECIDED
    assert statuses()[first.id] == "rejected"


def test_when_meta_cannot_be_read_the_proposals_stay_pending(sandbox, queued) -> None:  # type: ignore[no-untyped-def]
    usd = sandbox.account_ids[0]
    decided, first, second = queued[usd][:3]
    reject_many([decided.id], by=BO, now=NOW)
    sandbox.set_faults(FaultConfig(rates={"5xx": 1.0}))  # every request fails

    batch = [first.id, decided.id, second.id, UNKNOWN]
    result = approve_many(batch, by=ANA, now=LATER)

    assert [d.outcome for d in result] == [
        DecisionOutcome.UNREACHABLE,
        DecisionOutcome.ALREADY_DECIDED,
        DecisionOutcome.UNREACHABLE,
        DecisionOutcome.NOT_FOUND,
    ]
    unreachable = result.of(first.id)
    assert unreachable.message.startswith(
        f"proposal {first.id} was not decided: Meta cannot read the entity now ("
    )
    assert unreachable.message.endswith("); try again in a few minutes")
    assert unreachable.view.status == "pending" and unreachable.view.decided_by is None
    assert sandbox.state.write_log == []

    sandbox.set_faults(FaultConfig())  # Meta answers again: the same ids go through
    retried = approve_many([first.id, second.id], by=ANA, now=LATER)
    assert [d.outcome for d in retried] == [DecisionOutcome.APPROVED] * 2
    assert len(sandbox.state.write_log) == 2


def test_expired_proposals_are_refused_either_way(sandbox, queued) -> None:  # type: ignore[no-untyped-def]
    usd = sandbox.account_ids[0]
    first, second = queued[usd][:2]
    late = first.expires_at + timedelta(minutes=1)
    with sandbox.state.lock:
        sandbox.state.request_log.clear()

    approving = approve_many([first.id, UNKNOWN], by=ANA, now=late)
    rejecting = reject_many([second.id], by=BO, now=late)

    assert [d.outcome for d in approving] == [DecisionOutcome.EXPIRED, DecisionOutcome.NOT_FOUND]
    assert approving.of(first.id).message == (
        f"proposal {first.id} expired at {first.expires_at:%Y-%m-%d %H:%M} UTC; "
        "the rule proposes again at its next run if the conditions still hold"
    )
    assert rejecting.of(second.id).outcome == DecisionOutcome.EXPIRED
    assert sandbox.state.request_log == []  # an expired proposal is not re-read
    # once the expiry is recorded, it is still "expired", in the words of a decided one
    expire_approvals(late)
    recorded = reject_many([first.id], by=BO, now=late).of(first.id)
    assert recorded.outcome == DecisionOutcome.EXPIRED
    assert recorded.message == f"proposal {first.id} is already expired by rex"


def test_only_an_approver_of_the_account_decides_and_the_log_names_them(sandbox, queued) -> None:  # type: ignore[no-untyped-def]
    usd, jpy = sandbox.account_ids
    with read_session() as session:
        ids = dict(session.execute(select(AdAccount.external_id, AdAccount.id)).all())
    approver = Actor(user_id=None, email="ap@example.com", name="Ap",
                     grants={ids[usd]: frozenset({Role.APPROVER})})  # fmt: skip
    viewer = Actor(user_id=None, email="vi@example.com", name="Vi",
                   grants={ids[usd]: frozenset({Role.VIEWER})})  # fmt: skip
    mine, theirs = queued[usd][0], queued[jpy][0]

    looked = reject_many([mine.id], by=viewer, now=LATER).of(mine.id)
    assert looked.outcome == DecisionOutcome.NOT_ALLOWED and not looked.decided
    assert looked.message.startswith("vi@example.com may not decide approvals")
    result = reject_many([mine.id, theirs.id], by=approver, reason="later", now=LATER)
    assert result.of(mine.id).outcome == DecisionOutcome.REJECTED
    # another team's proposal is not even there, as far as this approver can tell
    assert result.of(theirs.id).outcome == DecisionOutcome.NOT_FOUND
    assert statuses()[theirs.id] == "pending"
    assert [p.id for p in list_approvals(None, actor=viewer)] == [p.id for p in queued[usd]]
    (entry,) = audit_log(ANA, action="approval.")
    assert (entry.actor, entry.action, entry.target, entry.account) == (
        "ap@example.com", "approval.reject", f"approval {mine.id}", usd,
    )  # fmt: skip
    assert entry.new == {"status": "rejected", "reason": "later", "action_id": None}


def test_the_cli_rejects_by_id_and_says_what_it_could_not(live) -> None:  # type: ignore[no-untyped-def]
    from tests.test_cli import rex

    rule = save_rule(scale_winners(scope={"level": "campaign", "account_ids": ["act_2001"]},
                                   safety={"require_approval": True}), by=SYSTEM)  # fmt: skip
    run_rule_now(rule.id, by=SYSTEM)
    first, _c = list_approvals(actor=ANA)  # A and C

    person("bo@example.com", admin=True)
    person("cy@example.com", admin=True)
    rejected = rex("approvals", "reject", str(first.id), str(UNKNOWN), "--as", "bo@example.com")
    assert rejected.returncode == 1  # one of the two could not be decided …
    assert rejected.stdout == f"proposal {first.id}: rejected\n"  # … the other was
    assert rejected.stderr == f"proposal {UNKNOWN}: no pending action with id {UNKNOWN}\n"
    again = rex("approvals", "reject", str(first.id), "--as", "cy@example.com")
    assert again.returncode == 1
    assert again.stderr == (
        f"proposal {first.id}: proposal {first.id} is already rejected by bo@example.com\n"
    )
    nobody = rex("approvals", "approve", str(first.id))
    assert nobody.returncode == 1 and "say who acts: --as EMAIL" in nobody.stderr
    assert live.state.write_log == []
