"""What a rule means, said and done (issue 11): a dry run never holds back the live rule;
counts say what happened; a rule's money has one currency; money in messages as people
read it; rules and verdicts in plain language; a preview that is what a run records —
on SQLite and PostgreSQL, through the sandbox over HTTP."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.actions.rollback import RollbackRefused, rollback
from core.db import read_session
from core.db.models import ActionHistory, AutomationRule, Base, RuleExecution
from core.engine.preview import PreviewStep, preview_outcomes
from core.engine.run import run_rule_now
from core.rules.describe import (
    describe_condition,
    describe_rule,
    describe_value_key,
    format_value,
)
from core.rules.document import RuleDocumentError, check_rule_currency, parse_rule
from core.rules.store import save_rule
from core.sandbox import SandboxServer
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW, WORKED_EXAMPLE
from tests.documents import rules_md_example
from tests.signed import ANA
from tests.test_engine import SCALE_WINNERS, actions, budgets

# ------------------------------------------------------------ dry run, then live


def test_a_dry_run_does_not_hold_back_the_live_rule(worked) -> None:  # type: ignore[no-untyped-def]
    document = {
        **SCALE_WINNERS,
        "safety": {"dry_run": True, "cooldown_minutes": 1440, "max_daily_actions": 2},
    }
    rule = save_rule(document, now=NOW, by=SYSTEM)
    tried = run_rule_now(rule.id, NOW, by=SYSTEM)
    assert (tried.actions_would, tried.actions_taken) == (2, 0)
    # a second dry run simulates the rule's own cooldown on its "would" rows
    again = run_rule_now(rule.id, NOW + timedelta(minutes=30), by=SYSTEM)
    assert {s.reason[:12] for s in again.steps} == {"in cooldown "}
    assert worked.state.write_log == []

    live = {**document, "safety": {**document["safety"], "dry_run": False}}
    save_rule(live, rule_id=rule.id, now=NOW + timedelta(minutes=40), by=SYSTEM)
    went_live = run_rule_now(rule.id, NOW + timedelta(hours=1), by=SYSTEM)

    assert (went_live.actions_taken, went_live.actions_skipped) == (2, 0), went_live.steps
    assert budgets(worked) == {"A": 25_000, "B": 15_000, "C": 40_000}
    # and the live actions count for the live rule: the next run is in cooldown
    later = run_rule_now(rule.id, NOW + timedelta(hours=2), by=SYSTEM)
    assert {s.reason[:12] for s in later.steps} == {"in cooldown "}
    assert len(worked.state.write_log) == 2


def test_every_action_of_a_rule_runs_despite_its_cooldown(worked) -> None:  # type: ignore[no-untyped-def]
    """The cooldown is between runs: the rule's first action on an entity must not cool
    the entity down for the rule's next action in the same run."""
    rule = save_rule(
        {**SCALE_WINNERS,
         "actions": [{"type": "pause"}, {"type": "notify", "message": "paused"}],
         "safety": {"cooldown_minutes": 1440}},
        now=NOW, by=SYSTEM)  # fmt: skip
    result = run_rule_now(rule.id, NOW, by=SYSTEM)
    assert [(s.name, s.action, s.outcome) for s in result.steps] == [
        ("A", "pause", "succeeded"),
        ("A", "notify", "notified"),
        ("C", "pause", "succeeded"),
        ("C", "notify", "notified"),
    ]
    assert result.actions_taken == 4


# ------------------------------------------------------------------------ counts


def test_counts_say_what_happened(worked) -> None:  # type: ignore[no-untyped-def]
    approval = save_rule(
        {**SCALE_WINNERS, "name": "ask", "safety": {"require_approval": True}}, by=SYSTEM
    )
    dry = save_rule({**SCALE_WINNERS, "name": "try", "safety": {"dry_run": True}}, by=SYSTEM)
    capped = save_rule(
        {**SCALE_WINNERS, "name": "cap", "safety": {"max_daily_actions": 1}}, by=SYSTEM
    )

    asked, tried, acted = (run_rule_now(r.id, NOW, by=SYSTEM) for r in (approval, dry, capped))

    def counts(result) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
        with read_session() as session:
            row = session.get_one(RuleExecution, result.execution_id)
        stored = (row.actions_taken, row.actions_queued, row.actions_would, row.actions_skipped)
        mine = (result.actions_taken, result.actions_queued, result.actions_would,
                result.actions_skipped)  # fmt: skip
        assert stored == mine
        return stored

    assert counts(asked) == (0, 2, 0, 0)
    assert counts(tried) == (0, 0, 2, 0)
    assert counts(acted) == (1, 0, 0, 1)
    assert asked.summary == "2 queued for approval"
    assert tried.summary == "2 would act (dry run)"
    assert acted.summary == "1 acted, 1 skipped"


def test_the_cli_run_says_queued_would_and_acted(live) -> None:  # type: ignore[no-untyped-def]
    from tests.signed import ADMIN, person
    from tests.test_cli import rex

    person(ADMIN)

    def run(document: dict) -> str:
        imported = rex("rules", "import", "-", "--as", ADMIN, stdin=json.dumps(document))
        ran = rex("run", "--rule", imported.stdout.strip(), "--as", ADMIN)
        assert ran.returncode == 0, ran.stderr
        return ran.stdout

    asked = run({**SCALE_WINNERS, "name": "ask", "safety": {"require_approval": True}})
    tried = run({**SCALE_WINNERS, "name": "try", "safety": {"dry_run": True}})
    acted = run({**SCALE_WINNERS, "name": "cap", "safety": {"max_daily_actions": 1}})

    assert "3 checked, 2 matched; 2 queued for approval in" in asked
    assert "acted" not in asked.splitlines()[0]
    assert "; 2 would act (dry run) in" in tried
    assert "would (dry run): change_budget A 200.00 USD → 250.00 USD · act_2001" in tried
    assert "; 1 acted, 1 skipped in" in acted
    assert "skipped: change_budget C (daily cap reached (1 actions today)) · act_2001" in acted


# ---------------------------------------------------------------------- currency


def _tokyo_scenario() -> dict:
    """The worked example (USD, Los Angeles) and a JPY account in Tokyo whose campaign J
    does well (ROAS 5, profit ¥28,000 over 7 days) on a ¥3,000 budget."""
    scenario = json.loads(WORKED_EXAMPLE.read_text())
    day = {"days_ago": [1, 7], "spend": "1000", "revenue": "5000", "purchases": 2,
           "impressions": 1000, "clicks": 20, "reach": 800}  # fmt: skip
    scenario["accounts"].append(
        {"id": "act_2002", "name": "Tokyo (JPY)", "currency": "JPY", "timezone": "Asia/Tokyo",
         "campaigns": [{"id": "3101", "name": "J", "daily_budget": 3000,
                        "adsets": [{"id": "4101", "name": "J · all",
                                    "ads": [{"id": "5101", "name": "J · ad", "days": [day]}]}]}]}
    )  # fmt: skip
    return scenario


@pytest.fixture
def two_currencies(db: Engine) -> Iterator[SandboxServer]:
    with SandboxServer(scenario=_tokyo_scenario(), now=NOW) as server:
        for account in ("act_2001", "act_2002"):
            connect_account(account, server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=15, breakdowns=False, now=NOW))
        yield server


ALL_ACCOUNTS = {**SCALE_WINNERS, "scope": {"level": "campaign"}}  # profit > 100, max 500


def test_a_rule_over_two_currencies_without_its_own_acts_on_none(two_currencies) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from core.db import write_session
    from core.db.models import AutomationRule
    from core.rules.document import RuleDocumentError

    with pytest.raises(RuleDocumentError, match="need one currency"):
        save_rule(ALL_ACCOUNTS, now=NOW, by=SYSTEM)  # refused when saved today …
    rule = save_rule({**ALL_ACCOUNTS, "currency": "USD"}, now=NOW, by=SYSTEM)
    with write_session() as session:  # … but an install may hold one saved before
        session.execute(update(AutomationRule).values(document=ALL_ACCOUNTS))
    result = run_rule_now(rule.id, NOW, by=SYSTEM)
    assert result.status == "skipped"
    assert (
        "this rule's money values (profit > 100, max 500) need one currency, but act_2001 "
        "bills in USD and act_2002 in JPY"
    ) in result.error
    assert two_currencies.state.write_log == [] and actions() == []


def test_a_stated_currency_leaves_the_other_accounts_out(two_currencies) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**ALL_ACCOUNTS, "currency": "usd"}, now=NOW, by=SYSTEM)
    assert rule.document["currency"] == "USD"
    result = run_rule_now(rule.id, NOW, by=SYSTEM)
    assert result.status == "succeeded"
    assert [(a.entity_name, a.new_value) for a in actions()] == [
        ("A", "250.00 USD"),
        ("C", "400.00 USD"),
    ]
    with read_session() as session:
        trace = session.get_one(RuleExecution, result.execution_id).trace
    assert trace["skipped_accounts"] == {
        "act_2002": "act_2002 bills in JPY, but this rule's money values (profit > 100, "
        "max 500) are in USD: left out"
    }
    assert "act_2002" not in {c["account"] for c in trace["candidates"]}


def test_skip_reasons_name_the_true_cause(two_currencies) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(
        {**SCALE_WINNERS, "currency": "JPY", "scope": {"level": "campaign",
                                                       "account_ids": ["act_2002"]}},
        now=NOW, by=SYSTEM)  # fmt: skip
    result = run_rule_now(rule.id, NOW, by=SYSTEM)
    (step,) = result.steps
    assert (step.name, step.outcome) == ("J", "skipped")
    assert step.reason == ("already above the rule's max (500 JPY): an increase never lowers it")


def test_saving_fills_in_the_currency_or_refuses_a_mixed_scope() -> None:
    rule = parse_rule(ALL_ACCOUNTS)
    assert check_rule_currency(rule, {"act_2001": "USD"}).currency == "USD"
    with pytest.raises(RuleDocumentError) as mixed:
        check_rule_currency(rule, {"act_2001": "USD", "act_2002": "JPY"})
    assert mixed.value.problems == [(
        "currency",
        "this rule's money values (profit > 100, max 500) need one currency, but act_2001 "
        "bills in USD and act_2002 in JPY: scope it to accounts of one currency, or state "
        'the currency its values are in ("currency": "USD"): accounts billing in another '
        "are then left out",
    )]  # fmt: skip
    # stated, over every account: the others are left out at run time, not refused
    stated = parse_rule({**ALL_ACCOUNTS, "currency": "USD"})
    assert check_rule_currency(stated, {"act_2001": "USD", "act_2002": "JPY"}) == stated
    # stated, but an account named in the scope bills in another currency
    both = {"level": "campaign", "account_ids": ["act_2001", "act_2002"]}
    named = parse_rule({**stated.to_json(), "scope": both})
    with pytest.raises(RuleDocumentError) as refused:
        check_rule_currency(named, {"act_2001": "USD", "act_2002": "JPY"})
    assert [field for field, _ in refused.value.problems] == ["scope.account_ids[1]"]
    assert "act_2002 bills in JPY" in refused.value.problems[0][1]
    # no money values (a percent change without bounds, ROAS, spend > 0): no currency
    neutral = parse_rule(
        {**ALL_ACCOUNTS,
         "conditions": {"all": [{"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
                                {"metric": "spend", "window": "today", "op": ">", "value": 0}]},
         "actions": [{"type": "change_budget", "by_percent": 10}]}
    )  # fmt: skip
    assert check_rule_currency(neutral, {"act_2001": "USD", "act_2002": "JPY"}).currency is None


def test_the_document_checks_its_currency() -> None:
    assert parse_rule({**SCALE_WINNERS, "currency": " jpy "}).to_json()["currency"] == "JPY"
    for bad in ("dollars", "XYZ", 5):
        with pytest.raises(RuleDocumentError) as caught:
            parse_rule({**SCALE_WINNERS, "currency": bad})
        assert [field for field, _ in caught.value.problems] == ["currency"]
    assert "currency" not in parse_rule(SCALE_WINNERS).to_json()  # old documents unchanged


# ------------------------------------------------------------- money in messages


def test_a_refused_rollback_shows_money_in_the_currency(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    on_a = actions()[0]
    with worked.state.lock:  # someone sets A to $262.50 in Ads Manager
        next(e for e in worked.state.entities.values() if e.name == "A").daily_budget = 26_250
    with pytest.raises(RollbackRefused) as refused:
        rollback(on_a.id, by=ANA, now=NOW)
    assert str(refused.value) == (
        "the daily budget is now 262.50 USD, not the 250.00 USD Rex set: someone changed it "
        "since; not rolled back"
    )


# ---------------------------------------------------------------- plain language

# RULES.md's example, in dollars over every account (a schedule and safety to say)
SEED = rules_md_example(currency="USD", scope={"level": "campaign"})


def test_a_rule_in_one_sentence() -> None:
    assert describe_rule(parse_rule(SEED)) == (
        "If ROAS over the last 7 days > 3 and profit over the last 7 days > 100.00 USD and "
        "(purchases yesterday ≥ 5 or cost per purchase over the last 3 days < 0.8 × its "
        "cost per purchase over the last 30 days) → raise the budget 25 % (at most 500.00 "
        "USD), every 6 hours · at most 10 actions a day per account · cooldown 1 day"
    )
    other = copy.deepcopy(SEED)
    del other["currency"]
    other["conditions"] = {"any": [
        {"metric": "ctr", "window": "last_14d_with_today", "op": "between", "value": [1, 2.5]},
        {"metric": "daily_budget", "op": "<=", "value": 50},
    ]}  # fmt: skip
    other["actions"] = [
        {"type": "change_budget", "by_amount": -20, "min": 10, "budget": "daily"},
        {"type": "pause"},
        {"type": "resume"},
        {"type": "duplicate", "name_suffix": " (Rex)"},
        {"type": "notify", "message": "look"},
        {"type": "change_budget", "to": 80, "budget": "lifetime"},
    ]
    other["scope"] = {"level": "adset"}
    other["schedule"] = {"every_minutes": 60, "days": ["mon", "tue", "wed", "thu", "fri"],
                         "hours": [8, 20]}  # fmt: skip
    other["safety"] = {"dry_run": True, "require_approval": True, "max_daily_actions": 1,
                       "cooldown_minutes": 0, "min_spend": 50}  # fmt: skip
    assert describe_rule(parse_rule(other), "JPY") == (
        "If CTR over the last 14 days including today between 1 % and 2.5 % or daily "
        "budget ≤ 50 JPY → lower the daily budget by 20 JPY (at least 10 JPY), then pause "
        "the ad set, then resume the ad set, then copy the ad set (paused, its name + "
        "“ (Rex)”), then notify “look”, then set the lifetime budget to 80 JPY, every hour "
        "on weekdays from 08:00 to 20:00 (the account's time) · dry run (changes nothing) · "
        "each action waits for approval · at most 1 action a day per account · no cooldown "
        "· only with at least 50 JPY spent over the last 14 days including today"
    )
    # without a currency given, money says it is the account's
    assert describe_condition(parse_rule(other).conditions.any[1]) == (  # type: ignore[union-attr]
        "daily budget ≤ 50 (account currency)"
    )


def test_value_keys_and_values_as_people_read_them() -> None:
    assert describe_value_key("roas@last_7d") == "ROAS, last 7 days"
    assert describe_value_key("ctr@last_3d_with_today") == "CTR, last 3 days incl. today"
    assert describe_value_key("daily_budget") == "Daily budget"
    assert describe_value_key("cpa@yesterday") == "Cost per purchase, yesterday"
    assert format_value("ctr", "1.4656") == "1.47 %"
    assert format_value("roas", Decimal("0.4486")) == "0.45"
    assert format_value("profit", "1234.5", "USD") == "1,234.50 USD"
    assert format_value("spend", "1234", "JPY") == "1,234 JPY"
    assert format_value("impressions", 12000) == "12,000"
    assert format_value("roas", None) == "—"
    # rounded to 2 decimals, 3.004 would read "3.00, above 3": more decimals then
    assert format_value("roas", Decimal("3.004"), unlike=3) == "3.004"


# ------------------------------------------------------------------------ preview


def _row_counts() -> dict[str, int]:
    with read_session() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }


def _rule_row(rule_id: int) -> tuple:  # type: ignore[type-arg]
    with read_session() as session:
        row = session.get_one(AutomationRule, rule_id)
        return (row.claimed_by, row.claim_expires_at, row.next_execution_at,
                row.last_execution_at, row.version)  # fmt: skip


@pytest.fixture
def synced_world(db: Engine, sandbox) -> str:  # type: ignore[no-untyped-def]
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts(options=SyncOptions(days=8, breakdowns=False, now=NOW,
                                      client_options={"poll_seconds": 0.01}))  # fmt: skip
    return account


def test_a_preview_writes_nothing_and_is_what_the_dry_run_records(sandbox, synced_world) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(
        {
            "name": "Pause what spent, and say so",
            "scope": {"level": "ad", "account_ids": [synced_world],
                      "filters": [{"field": "effective_status", "op": "in", "value": ["ACTIVE"]}]},
            "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0},
            "actions": [{"type": "pause"}, {"type": "notify", "message": "paused"}],
            "safety": {"max_daily_actions": 5, "cooldown_minutes": 60, "dry_run": True},
        },
        now=NOW, by=SYSTEM)  # fmt: skip
    rows, rule_row = _row_counts(), _rule_row(rule.id)
    requests, writes = len(sandbox.state.request_log), len(sandbox.state.write_log)

    preview = preview_outcomes(rule.id, NOW, actor=SYSTEM)

    assert _row_counts() == rows and _rule_row(rule.id) == rule_row
    assert (len(sandbox.state.request_log), len(sandbox.state.write_log)) == (requests, writes)
    outcomes = [s.outcome for s in preview.steps]
    assert len(preview.evaluation.matched) >= 4  # enough to pass the cap of 5
    assert outcomes[:5] == ["would pause", "would notify"] * 2 + ["would pause"]
    assert set(outcomes[5:]) == {"skipped"}
    assert {s.reason for s in preview.steps[5:]} == {"daily cap reached (5 actions today)"}
    assert preview.steps[0].old_text == "ACTIVE" and preview.steps[0].new_text == "PAUSED"
    assert preview.summary == f"would act on 5, skipped {len(outcomes) - 5}"

    result = run_rule_now(rule.id, NOW, by=SYSTEM)
    assert [PreviewStep.of(step) for step in result.steps] == preview.steps
    with read_session() as session:
        recorded = session.scalars(
            select(ActionHistory).where(ActionHistory.execution_id == result.execution_id)
            .order_by(ActionHistory.id)
        ).all()  # fmt: skip
    assert [(r.entity_id, r.action_type, r.old_value, r.new_value, r.status) for r in recorded] == [
        (s.entity_id, s.action, s.old_text, s.new_text, "dry_run")
        for s in preview.steps
        if not s.skipped
    ]
    # the next preview sees what the dry run recorded: its own cooldown, and its cap
    acted = {s.entity_id for s in preview.steps if not s.skipped}
    again = preview_outcomes(rule.id, NOW, actor=SYSTEM).steps
    assert {s.reason[:12] for s in again if s.entity_id in acted} == {"in cooldown "}
    assert {s.reason for s in again if s.entity_id not in acted} == {
        "daily cap reached (5 actions today)"
    }


def test_a_preview_applies_the_engines_guards(sandbox, synced_world) -> None:  # type: ignore[no-untyped-def]
    # an unsaved document: ad sets whose budget lives on their campaign
    draft = parse_rule({
        "name": "Scale retargeting ad sets",
        "scope": {"level": "adset", "account_ids": [synced_world],
                  "filters": [{"field": "name", "op": "contains", "value": "Retargeting"}]},
        "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0},
        "actions": [{"type": "change_budget", "by_percent": 10}],
    })  # fmt: skip
    preview = preview_outcomes(draft, NOW, actor=SYSTEM)
    assert preview.steps and {s.outcome for s in preview.steps} == {"skipped"}
    assert all("lives on its campaign" in (s.reason or "") for s in preview.steps)
    # outside the rule's days (NOW is a Friday in Los Angeles)
    weekend = parse_rule({**draft.to_json(), "schedule": {"days": ["sat", "sun"]}})
    assert {s.reason for s in preview_outcomes(weekend, NOW, actor=SYSTEM).steps} == {
        "not a scheduled day (fri in America/Los_Angeles)"
    }


def test_a_preview_shows_changes_and_approvals_in_money(worked) -> None:  # type: ignore[no-untyped-def]
    asked = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, now=NOW, by=SYSTEM)
    preview = preview_outcomes(asked.id, NOW, actor=SYSTEM)
    assert [(s.name, s.outcome, s.old_text, s.new_text) for s in preview.steps] == [
        ("A", "would queue for approval", "200.00 USD", "250.00 USD"),
        ("C", "would queue for approval", "320.00 USD", "400.00 USD"),
    ]
    assert preview.summary == "would queue 2 for approval"
    run_rule_now(asked.id, NOW, by=SYSTEM)  # the proposals are now waiting
    waiting = preview_outcomes(asked.id, NOW + timedelta(minutes=1), actor=SYSTEM).steps
    assert [s.outcome for s in waiting] == ["skipped", "skipped"]
    assert all(re.fullmatch(r"in cooldown until .* UTC", s.reason or "") for s in waiting)

    live = preview_outcomes(
        parse_rule({**SCALE_WINNERS, "safety": {"max_daily_actions": 1}}), NOW, actor=SYSTEM
    )
    assert [(s.name, s.outcome, s.new_text, s.reason) for s in live.steps] == [
        ("A", "would change", "250.00 USD", None),
        ("C", "skipped", None, "daily cap reached (1 actions today)"),
    ]
