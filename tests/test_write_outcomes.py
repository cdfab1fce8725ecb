"""A write Meta applied is never sent again: lost and garbled answers, partial batches,
and recovery that settles from evidence instead of guessing — both databases.

Meta here is the sandbox, often behind the hostile proxy (tests/hostile.py), which lets
each write through and then lies about it. The sandbox's write log is the truth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.actions.approvals import ApprovalError, approve, list_approvals
from core.actions.changes import BudgetChange, change_of, stored
from core.actions.rollback import RollbackRefused, rollback
from core.actions.settle import settle_by_person, settle_unknown
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    AdAccount,
    AdEntity,
    AutomationRule,
    Notification,
    RuleExecution,
)
from core.db.types import utcnow
from core.engine.claim import claim_rule
from core.engine.run import run_rule_now
from core.engine.steps import Step
from core.meta import GraphClient
from core.rules.store import save_rule
from core.sandbox import FaultConfig, SandboxServer
from core.scheduler.recovery import recover
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW, WORKED_EXAMPLE
from tests.hostile import Behaviour, Hostile, drop, edge, lose, rewrite, rewrite_items, writes
from tests.signed import ANA, person

LEASE = timedelta(minutes=10)
LATER = timedelta(minutes=11)  # past the lease, the call time, the clock allowance, the delay

# The rule: +10 %, cooldown one day, at most one action a day.
RAISE_ONCE_A_DAY = {
    "name": "Raise 10 % once a day",
    "scope": {"level": "campaign", "account_ids": ["act_2001"]},
    "conditions": {"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
    "actions": [{"type": "change_budget", "by_percent": 10, "max": 1000}],
    "safety": {"max_daily_actions": 1, "cooldown_minutes": 1440},
}


@pytest.fixture
def lying(db: Engine) -> Iterator[tuple[SandboxServer, Hostile]]:
    """The worked example (campaigns A, B, C; frozen at NOW) behind the hostile proxy,
    connected and synced through it."""
    with SandboxServer(scenario=WORKED_EXAMPLE, now=NOW) as server, Hostile(server.url) as proxy:
        connect_account("act_2001", server.token, graph_url=proxy.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=15, breakdowns=False, now=NOW))
        yield server, proxy


def budget_writes(server: SandboxServer) -> list[tuple[str, int]]:
    with server.state.lock:
        return [(w.object_id, int(w.params["daily_budget"])) for w in server.state.write_log]


def rows() -> list[ActionHistory]:
    with read_session() as session:
        return list(session.scalars(select(ActionHistory).order_by(ActionHistory.id)))


def campaign_id(server: SandboxServer, name: str) -> str:
    return next(e.id for e in server.state.entities.values() if e.name == name)


# Meta's change history does not show the change yet
HISTORY_LAGS = rewrite(lambda page: {"data": []})

LIES = {
    "502 with an HTML page": lose(502),
    "a batch answer that is not a list": rewrite(lambda items: {"data": items}),
    "a batch answer of the wrong length": rewrite(lambda items: items + items),
    "an item saying success: 'true'": rewrite_items(lambda body: {"success": "true"}),
    "an item without success": rewrite_items(lambda body: {}),
    "an item answered null": rewrite(lambda items: [None for _ in items]),
    "the connection dropped after the write": drop,
}


@pytest.mark.parametrize("lie", list(LIES), ids=list(LIES))
def test_an_applied_write_whose_answer_is_lost_is_never_sent_again(lying, lie: str) -> None:  # type: ignore[no-untyped-def]
    server, proxy = lying
    proxy.add(Behaviour(writes, LIES[lie]))
    proxy.add(Behaviour(edge("activities"), HISTORY_LAGS))
    rule = save_rule(RAISE_ONCE_A_DAY, now=NOW, by=SYSTEM)

    for slot in range(5):  # five slots of the same day
        run_rule_now(rule.id, NOW + timedelta(minutes=10 * slot), by=SYSTEM)

    assert len(budget_writes(server)) == 1  # Meta applied it once; Rex never re-sent it
    (acted,) = [r for r in rows() if r.status != "skipped"]
    assert acted.status == "unknown" and acted.error_message.startswith("outcome unknown")
    with read_session() as session:
        runs = session.scalars(select(RuleExecution).order_by(RuleExecution.id)).all()
    later_steps = [Step.model_validate(s) for run in runs[1:] for s in run.trace["actions"]]
    assert later_steps and all(s.outcome == "skipped" for s in later_steps)

    # Meta's change history shows the write: settled as applied, still nothing re-sent
    proxy.clear()
    settle_unknown(now=utcnow())
    (settled,) = [r for r in rows() if r.status != "skipped"]
    assert settled.status == "succeeded" and settled.can_rollback
    assert settled.details["settle"]["evidence"] == "change history"
    assert len(budget_writes(server)) == 1


def test_a_lost_answer_is_settled_at_once_when_the_history_shows_the_write(lying) -> None:  # type: ignore[no-untyped-def]
    server, proxy = lying
    proxy.add(Behaviour(writes, lose(502)))
    rule = save_rule(RAISE_ONCE_A_DAY, now=NOW, by=SYSTEM)
    result = run_rule_now(rule.id, NOW, by=SYSTEM)

    (acted,) = rows()
    assert acted.status == "succeeded" and acted.details["settle"]["evidence"] == "change history"
    assert acted.details["settle"]["message"].startswith("applied: Meta's change history shows")
    assert (result.status, result.actions_taken) == ("succeeded", 1)  # what really happened
    assert len(budget_writes(server)) == 1


def test_before_settling_an_unknown_write_holds_the_entity_for_every_writer(lying) -> None:  # type: ignore[no-untyped-def]
    server, proxy = lying
    proxy.add(Behaviour(edge("activities"), HISTORY_LAGS))
    raise_a = {**RAISE_ONCE_A_DAY, "scope": {**RAISE_ONCE_A_DAY["scope"],
               "filters": [{"field": "name", "op": "=", "value": "A"}]}}  # fmt: skip
    asks = save_rule({**raise_a, "name": "Ask first", "safety": {"require_approval": True}},
                     now=NOW, by=SYSTEM)  # fmt: skip
    run_rule_now(asks.id, NOW, by=SYSTEM)  # a proposal for A waits for a person
    (proposal,) = list_approvals(actor=ANA)

    proxy.add(Behaviour(writes, lose(502), times=1))
    first = save_rule(raise_a, now=NOW, by=SYSTEM)
    run_rule_now(first.id, NOW + timedelta(minutes=1), by=SYSTEM)
    (unknown,) = rows()
    assert unknown.status == "unknown"

    # another rule on the same campaign: held, whatever it wants to do
    pause = save_rule(
        {**raise_a, "name": "Pause A", "actions": [{"type": "pause"}]}, now=NOW, by=SYSTEM
    )
    held = run_rule_now(pause.id, NOW + timedelta(minutes=2), by=SYSTEM)
    assert [s.outcome for s in held.steps] == ["skipped"]
    assert f"action #{unknown.id}" in held.steps[0].reason

    # the waiting proposal is not executed now (it stays pending); a rollback is refused
    with pytest.raises(ApprovalError, match="not been settled"):
        approve(proposal.id, by=ANA, now=NOW + timedelta(minutes=3))
    assert list_approvals(actor=ANA)[0].status == "pending"
    with pytest.raises(RollbackRefused):
        rollback(unknown.id, by=ANA)
    assert len(budget_writes(server)) == 1  # only the first, lost-answer write


def test_a_person_settles_what_the_evidence_cannot(lying) -> None:  # type: ignore[no-untyped-def]
    server, proxy = lying
    proxy.add(Behaviour(writes, lose(502), times=1))
    # the change history cannot be read (permission), and a person also changed the
    # campaign afterwards: the state cannot tell whose change it shows
    denied = {"error": {"message": "(#200) Requires ads_read on the activities", "code": 200}}
    proxy.add(Behaviour(edge("activities"), lambda _r, _f: _reply(403, denied)))
    rule = save_rule(RAISE_ONCE_A_DAY, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    (unknown,) = rows()
    server.edit_as_person(change_of(unknown).entity, daily_budget=21_000)

    settle_unknown(now=utcnow() + LATER)
    (flagged,) = rows()
    assert flagged.status == "unknown" and flagged.details["settle"]["needs_person"]
    assert f"actions settle {flagged.id} --applied" in flagged.error_message
    with read_session() as session:
        notices = session.scalars(select(Notification.kind)).all()
    assert notices == ["outcome_unknown"]
    settle_unknown(now=utcnow() + 2 * LATER)  # a person's case is not re-judged
    assert rows()[0].details["settle"]["needs_person"]

    settled = settle_by_person(flagged.id, applied=True, by=ANA, note="seen in Ads Manager")
    assert settled.status == "succeeded" and settled.details["settle"]["by"] == "ana@example.com"
    assert len(budget_writes(server)) == 1


def _reply(status: int, body: dict):  # type: ignore[no-untyped-def]
    from tests.hostile import Reply

    return Reply.of_json(status, body)


# ---------------------------------------------------------------- partial batches


def test_a_batch_cut_short_keeps_the_results_already_received(db: Engine, tmp_path: Path) -> None:
    n = 60  # two batch calls: 50 + 10
    day = {"days_ago": [1, 7], "spend": "10", "revenue": "5", "purchases": 1}
    ads = [{"id": str(7000 + i), "name": f"ad {i:02}", "days": [day]} for i in range(n)]
    scenario = tmp_path / "sixty.json"
    scenario.write_text(json.dumps({"accounts": [{
        "id": "act_3002", "name": "Sixty ads", "currency": "USD", "timezone": "America/New_York",
        "campaigns": [{"id": "3201", "name": "All", "daily_budget": 100000,
                       "adsets": [{"id": "4201", "name": "All", "ads": ads}]}],
    }]}))  # fmt: skip
    with SandboxServer(scenario=scenario, now=NOW) as server:
        connect_account("act_3002", server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=8, breakdowns=False, now=NOW))
        rule = save_rule(
            {
                "name": "Pause losers",
                "scope": {"level": "ad", "account_ids": ["act_3002"]},
                "conditions": {"metric": "roas", "window": "last_7d", "op": "<", "value": 1},
                "actions": [{"type": "pause"}],
                "safety": {"max_daily_actions": 500},
            },
            now=NOW,
            by=SYSTEM,
        )
        # the first batch call goes through, its 50th item hits the account's rate limit
        # (regained in 5 minutes): the second call must not go out
        server.set_faults(FaultConfig(fail_next=["none"] * 50 + ["buc"], regain_minutes=5))
        run_rule_now(rule.id, NOW, by=SYSTEM)
        with server.state.lock:
            paused = {w.object_id for w in server.state.write_log}

    recorded = rows()
    by_status: dict[str, set[str]] = {}
    for row in recorded:
        by_status.setdefault(row.status, set()).add(change_of(row).entity)
    assert len(paused) == 49
    assert by_status["succeeded"] == paused  # kept, not thrown away with the rest
    assert len(by_status["failed"]) == 1  # Meta refused it (rate limit)
    assert len(by_status["deferred"]) == 10  # never sent
    assert all(r.error_message.startswith("not sent") for r in recorded if r.status == "deferred")


# ---------------------------------------------------------------------- recovery


def _orphan(name: str, new_minor: int, status: str, *, sent: bool, rule_id: int) -> int:
    """An intent a runner left behind when it died."""
    with write_session() as session:
        entity = session.scalars(select(AdEntity).where(AdEntity.name == name)).one()
        row = ActionHistory(
            rule_id=rule_id,
            account_id=entity.account_id,
            entity_id=entity.id,
            entity_name=name,
            action_type="change_budget",
            status=status,
            idempotency_key=f"orphan:{name}",
            created_at=NOW,
            sent_at=NOW if sent else None,
            details={
                "change": stored(
                    BudgetChange(
                        level=entity.level,
                        entity=entity.external_id,
                        budget="daily",
                        currency="USD",
                        old_minor=entity.daily_budget_minor or 0,
                        new_minor=new_minor,
                    )
                )
            },  # fmt: skip
        )
        session.add(row)
        session.flush()
        return row.id


def test_recovery_settles_from_evidence_not_from_the_current_state(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(RAISE_ONCE_A_DAY, now=NOW, by=SYSTEM)
    claim_rule(rule.id, NOW)  # a runner claimed it, started, and died
    with write_session() as session:
        session.add(RuleExecution(rule_id=rule.id, started_at=NOW, status="running"))
    # A: sent and applied at Meta; then a person changed A's budget again
    a = _orphan("A", 22_000, "sending", sent=True, rule_id=rule.id)
    GraphClient(worked.token, base_url=worked.url).post(campaign_id(worked, "A"),
                                                       {"daily_budget": 22_000})  # fmt: skip
    worked.edit_as_person(campaign_id(worked, "A"), daily_budget=30_000)
    # C: never sent — but a person happened to set the very value Rex meant to
    c = _orphan("C", 35_200, "pending", sent=False, rule_id=rule.id)
    worked.edit_as_person(campaign_id(worked, "C"), daily_budget=35_200)
    # B: sent, never reached Meta
    b = _orphan("B", 16_500, "sending", sent=True, rule_id=rule.id)
    api_writes = len(worked.state.write_log)

    soon = recover(NOW + timedelta(minutes=1), LEASE)  # the runner may still be at it
    assert (soon["intents_not_sent"], soon["intents_unknown"]) == (0, 0)

    counts = recover(NOW + LATER, LEASE)
    assert counts["executions_closed"] == 1
    assert counts["intents_not_sent"] == 1 and counts["intents_unknown"] == 2
    assert counts["intents_settled"] == 2
    outcome = {r.id: r for r in rows()}
    assert outcome[a].status == "succeeded"  # the history shows Rex's write, whatever came after
    assert outcome[c].status == "deferred" and outcome[c].error_message.startswith("not sent")
    assert outcome[b].status == "failed" and outcome[b].error_message.startswith("not applied")
    assert len(worked.state.write_log) == api_writes  # settled by reading, nothing sent again
    with read_session() as session:
        assert session.get_one(AutomationRule, rule.id).next_execution_at is not None


def test_an_unknown_write_waits_for_the_history_before_it_is_called_not_applied(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(RAISE_ONCE_A_DAY, now=NOW, by=SYSTEM)
    b = _orphan("B", 16_500, "unknown", sent=True, rule_id=rule.id)

    settle_unknown(now=NOW + timedelta(minutes=1))  # too early: the history may lag
    assert rows()[0].status == "unknown"
    settle_unknown(now=NOW + LATER)
    settled = rows()[0]
    assert (settled.id, settled.status) == (b, "failed")
    assert settled.details["settle"]["evidence"] == "change history"


def test_one_account_that_cannot_be_read_does_not_stop_the_others(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(RAISE_ONCE_A_DAY, now=NOW, by=SYSTEM)
    with write_session() as session:  # an account whose token the key cannot decrypt
        broken = AdAccount(
            platform="meta", external_id="act_9", name="Broken", currency="USD",
            timezone_name="UTC", account_status=1, token_encrypted="not-a-fernet-token",
        )  # fmt: skip
        session.add(broken)
        session.flush()
        entity = AdEntity(account_id=broken.id, level="campaign", external_id="99", name="Z",
                          status="ACTIVE", effective_status="ACTIVE")  # fmt: skip
        session.add(entity)
        session.flush()
        session.add(
            ActionHistory(
                rule_id=rule.id, account_id=broken.id, entity_id=entity.id, entity_name="Z",
                action_type="change_budget", status="unknown", created_at=NOW, sent_at=NOW,
                # a row as Rex stored it before changes were versioned: the request alone
                details={"request": {"method": "POST", "path": "99",
                                     "params": {"daily_budget": 1000}, "idempotent": True}},
            )
        )  # fmt: skip
    good = _orphan("B", 16_500, "unknown", sent=True, rule_id=rule.id)

    counts = recover(utcnow() + LATER, LEASE)

    assert counts["intents_settled"] == 1
    statuses = {r.id: r.status for r in rows()}
    assert statuses[good] == "failed"
    assert sorted(statuses.values()) == ["failed", "unknown"]


def test_approvals_and_rollback_of_settled_writes_work_again(lying) -> None:  # type: ignore[no-untyped-def]
    server, proxy = lying
    proxy.add(Behaviour(writes, lose(502), times=1))
    rule = save_rule(RAISE_ONCE_A_DAY, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    settle_unknown(now=utcnow())
    (done,) = rows()
    assert done.status == "succeeded"
    undo = rollback(done.id, by=ANA, now=NOW + timedelta(minutes=5))
    assert undo.status == "succeeded"
    first, second = rows()
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert (first.rolled_back_by_id, second.rollback_of_id) == (second.id, first.id)
    assert len(budget_writes(server)) == 2  # the change and its undo, once each


def test_a_token_the_key_cannot_decrypt_sends_nothing_and_holds_nothing_back(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**RAISE_ONCE_A_DAY, "safety": {"max_daily_actions": 5,
                                                     "cooldown_minutes": 60}},
                     now=NOW, by=SYSTEM)  # fmt: skip
    with write_session() as session:
        account = session.scalars(select(AdAccount)).one()
        good_token, account.token_encrypted = account.token_encrypted, "garbage"

    result = run_rule_now(rule.id, NOW, by=SYSTEM)

    assert {r.status for r in rows()} == {"deferred"}  # nothing pending, nothing unknown
    assert all("cannot be decrypted" in r.error_message for r in rows())
    assert "not sent" in result.error and worked.state.write_log == []

    with write_session() as session:  # the key is back: the rule acts at its next run
        session.scalars(select(AdAccount)).one().token_encrypted = good_token
    again = run_rule_now(rule.id, NOW + timedelta(minutes=5), by=SYSTEM)
    assert again.actions_taken == 2 and len(worked.state.write_log) == 2  # no cooldown held


def test_the_cli_lists_unknown_outcomes_and_a_person_settles_one(worked) -> None:  # type: ignore[no-untyped-def]
    from tests.test_cli import rex

    rule = save_rule(RAISE_ONCE_A_DAY, now=NOW, by=SYSTEM)
    waiting = _orphan("B", 16_500, "unknown", sent=True, rule_id=rule.id)
    with write_session() as session:
        row = session.get_one(ActionHistory, waiting)
        row.details = {**row.details, "settle": {"needs_person": True, "evidence": "ambiguous"}}

    listed = rex("actions", "unknown")
    assert listed.returncode == 0, listed.stderr
    assert str(waiting) in listed.stdout and "needs a person" in listed.stdout

    refused = rex("actions", "settle", str(waiting))  # applied or not: one must be said
    assert refused.returncode == 2 and "--applied" in refused.stderr
    person("ana@example.com", admin=True)
    settled = rex("actions", "settle", str(waiting), "--not-applied", "--as", "ana@example.com")
    assert settled.returncode == 0, settled.stderr
    assert f"action {waiting}: failed" in settled.stdout
    assert rows()[0].error_message == "not applied (settled by ana@example.com)"
    again = rex("actions", "settle", str(waiting), "--applied", "--as", "ana@example.com")
    assert again.returncode != 0 and "not unknown" in again.stderr
    assert "Traceback" not in again.stderr
