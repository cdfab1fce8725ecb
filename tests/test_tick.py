"""One tick for all due rules: rules acting on the same entity see each other's changes
(or are skipped naming the rule that changed it), and the tick's writes go out together."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.db import read_session, write_session
from core.db.models import ActionHistory, AdEntity, RuleExecution
from core.engine.run import TRACE_KEPT, run_due_rules, run_rule_now
from core.rules.store import save_rule
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW
from tests.documents import scale_winners

TICK = NOW + timedelta(seconds=1)


def batch_requests(server) -> int:  # type: ignore[no-untyped-def]
    with server.state.lock:
        return sum(1 for r in server.state.request_log
                   if r["method"] == "POST" and "batch" in r["params"])  # fmt: skip


def test_the_first_rule_wins_a_budget_and_the_second_sees_its_change(worked) -> None:  # type: ignore[no-untyped-def]
    first = save_rule(scale_winners(name="Raise 25 %"), now=NOW, by=SYSTEM)
    second = save_rule(
        scale_winners(name="Raise 10 %",
                      actions=[{"type": "change_budget", "by_percent": 10, "max": 1000}]),
        now=NOW, by=SYSTEM)  # fmt: skip
    pauser = save_rule(
        scale_winners(name="Stop them", actions=[{"type": "pause"}]), now=NOW, by=SYSTEM
    )
    with worked.state.lock:
        worked.state.request_log.clear()  # the sync's requests

    results = run_due_rules(TICK)

    assert [r.rule_id for r in results] == [first.id, second.id, pauser.id]  # rule-id order
    raised, again, paused = results
    assert [(s.name, s.old, s.new, s.outcome) for s in raised.steps] == [
        ("A", "200.00 USD", "250.00 USD", "succeeded"),
        ("C", "320.00 USD", "400.00 USD", "succeeded"),
    ]
    # one budget change per entity and tick: never +25 % and +10 % compounded in a minute
    assert [(s.name, s.outcome, s.reason) for s in again.steps] == [
        ("A", "skipped", f"its budget was changed earlier in this tick by rule #{first.id} "
         "'Raise 25 %' (200.00 USD → 250.00 USD); this rule judges it again at its next run"),
        ("C", "skipped", f"its budget was changed earlier in this tick by rule #{first.id} "
         "'Raise 25 %' (320.00 USD → 400.00 USD); this rule judges it again at its next run"),
    ]  # fmt: skip
    # another kind of change to the same entities plans on what they now are
    assert [(s.name, s.old, s.new, s.outcome) for s in paused.steps] == [
        ("A", "ACTIVE", "PAUSED", "succeeded"),
        ("C", "ACTIVE", "PAUSED", "succeeded"),
    ]
    with worked.state.lock:
        budgets = {e.name: (e.daily_budget, e.status) for e in worked.state.entities.values()
                   if e.level == "campaign"}  # fmt: skip
    assert budgets == {"A": (25_000, "PAUSED"), "B": (15_000, "ACTIVE"), "C": (40_000, "PAUSED")}
    # both rules' four writes in one batch request, and one more reads them back (rule by
    # rule it would be two and two)
    assert batch_requests(worked) == 2


def test_a_rule_with_nothing_left_to_do_names_the_rule_that_did_it(worked) -> None:  # type: ignore[no-untyped-def]
    pauser = save_rule(
        scale_winners(name="Stop A and C", actions=[{"type": "pause"}]), now=NOW, by=SYSTEM
    )
    save_rule(scale_winners(name="Also stop them", actions=[{"type": "pause"}]), now=NOW, by=SYSTEM)

    paused, late = run_due_rules(TICK)

    assert [s.outcome for s in paused.steps] == ["succeeded", "succeeded"]
    assert [s.outcome for s in late.steps] == ["skipped", "skipped"]
    assert {s.reason for s in late.steps} == {
        f"already paused (rule #{pauser.id} 'Stop A and C' changed it earlier in this tick)"
    }
    with worked.state.lock:
        assert len(worked.state.write_log) == 2  # each entity paused once


def test_a_dry_run_in_the_same_tick_changes_nothing_for_the_live_rule(worked) -> None:  # type: ignore[no-untyped-def]
    save_rule(scale_winners(name="Test pause", actions=[{"type": "pause"}],
                            safety={"dry_run": True}), now=NOW, by=SYSTEM)  # fmt: skip
    save_rule(scale_winners(name="Raise"), now=NOW, by=SYSTEM)

    tested, live = run_due_rules(TICK)

    assert [s.outcome for s in tested.steps] == ["dry_run", "dry_run"]
    assert [(s.name, s.old, s.new, s.outcome) for s in live.steps] == [
        ("A", "200.00 USD", "250.00 USD", "succeeded"),
        ("C", "320.00 USD", "400.00 USD", "succeeded"),
    ]


def test_a_large_rule_s_trace_keeps_what_it_acted_on_and_counts_the_rest(db, sandbox) -> None:  # type: ignore[no-untyped-def]
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts(options=SyncOptions(days=8, breakdowns=False, now=NOW,
                                      client_options={"poll_seconds": 0.01}))  # fmt: skip
    rule = save_rule(
        {"name": "Pause the big spenders", "scope": {"level": "ad", "account_ids": [account]},
         "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0.5},
         "actions": [{"type": "pause"}],
         "safety": {"max_daily_actions": 2, "cooldown_minutes": 0, "dry_run": True}},
        now=NOW, by=SYSTEM)  # fmt: skip

    result = run_rule_now(rule.id, NOW, by=SYSTEM)

    with read_session() as session:
        trace = session.get_one(RuleExecution, result.execution_id).trace
    assert result.entities_checked > TRACE_KEPT + 2  # a rule too large to keep whole
    kept = {c["entity_id"] for c in trace["candidates"]}
    acted = {s.entity_id for s in result.steps if s.outcome == "dry_run"}
    assert len(acted) == 2 and acted <= kept  # what it acted on is always in the trace
    assert len(kept) == len(acted) + TRACE_KEPT
    assert trace["not_kept"] == result.entities_checked - len(kept)


def test_a_key_used_behind_the_ledger_s_back_is_never_written_twice(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(scale_winners(), now=NOW, by=SYSTEM)
    with write_session() as session:  # another runner recorded A's intent for this slot
        a = session.scalars(select(AdEntity).where(AdEntity.name == "A")).one()
        session.add(ActionHistory(
            rule_id=rule.id, account_id=a.account_id, entity_id=a.id, entity_name="A",
            action_type="change_budget", status="failed", created_at=NOW - timedelta(days=2),
            idempotency_key=f"r{rule.id}:e{a.id}:a0:change_budget:{NOW:%Y%m%dT%H%M}Z",
        ))  # fmt: skip

    (result,) = run_due_rules(TICK)

    by_name = {s.name: s for s in result.steps}
    assert (by_name["A"].outcome, by_name["A"].reason) == ("skipped", "already done in this slot")
    assert by_name["C"].outcome == "succeeded"  # the rest of the plan is still recorded
    with worked.state.lock:
        assert [w.object_id for w in worked.state.write_log] == [by_name["C"].entity]
