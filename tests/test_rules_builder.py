"""core.rules.builder: the rules list's read model (last run, money moved, errors), scope
by picking, schedule presets, modes and "go live", and validation in the builder's
words — on real databases and the sandbox."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, update

from core.access.actor import SYSTEM
from core.actions.rollback import rollback
from core.db import write_session
from core.db.models import AdEntity, RuleStatus
from core.engine.run import run_rule_now
from core.rules.builder import (
    AccountChoice,
    ImportRefused,
    currency_label,
    field_label,
    go_live,
    import_rule,
    problems_by_section,
    rule_currency,
    scope_choices,
    set_statuses,
    template,
)
from core.rules.document import RuleDocumentError, parse_rule
from core.rules.draft import ACTIVE_ONLY
from core.rules.store import get_rule, list_rules, save_rule
from core.views.rules import money_moved_text, page_of_rules, rules_with_activity
from tests.conftest import NOW
from tests.signed import ANA
from tests.test_engine import SCALE_WINNERS, actions, budgets


def test_document_paths_are_named_as_the_builder_shows_them() -> None:
    document = {
        "scope": {"filters": [ACTIVE_ONLY, {"field": "name", "op": "contains", "value": ""}]},
        "conditions": {"all": [{"metric": "roas"}, {}, {"any": [{}, {"metric": "cpa"}]}]},
    }
    cases = {
        "name": "Name",
        "conditions.all[0].value": "Condition 1 · Value",
        "conditions.all[0].value[1]": "Condition 1 · To",
        "conditions.all[0].value.times": "Condition 1 · × factor",
        "conditions.all[2]": "Group 3",
        "conditions.all[2].any[1].window": "Condition 3.2 · Window",
        "conditions.all": "Conditions",
        "actions": "Actions",
        "actions[0].to": "Action 1 · Amount",
        "actions[1].max": "Action 2 · Max",
        "schedule.every_minutes": "Schedule · Every (minutes)",
        "safety.cooldown_minutes": "Safety · Cooldown (minutes)",
        "scope.account_ids[0]": "Scope · Accounts",
        "scope.filters[0]": "Scope · Only active ones",
        "scope.filters[1].value": "Filter 1 · Value",
        "currency": "Scope · Money values in",
    }
    assert {path: field_label(path, document) for path in cases} == cases


def test_validation_in_the_builders_words_and_the_cli_keeps_the_paths() -> None:
    draft = template("Scale winners")
    draft["name"] = ""
    draft["actions"] = [
        {"type": "change_budget", "by_percent": 10, "max": -5},
        {"type": "change_budget", "by_percent": 150},
    ]
    draft["schedule"]["every_minutes"] = 0
    draft["safety"]["cooldown_minutes"] = 999_999
    problems = problems_by_section(draft)
    assert problems["name"] == ["Name: is empty — type a name for the rule."]
    assert problems["actions"] == [
        "Action 1 · Max: must be more than 0 — enter an amount above 0, or leave Max empty "
        "for no maximum.",
        "Action 2 · Amount: above +100 needs a max (the highest budget this rule may set): "
        "fill in Max, or increase by less",
    ]
    assert problems["schedule"] == [
        "Schedule · Every (minutes): must be at least 1 — choose a preset, or enter 1 to "
        "10,080 minutes (a week)."
    ]
    assert problems["safety"] == [
        "Safety · Cooldown (minutes): must be at most 525,600 — enter 0 (no cooldown) to "
        "525,600 (a year)."
    ]
    with pytest.raises(RuleDocumentError) as refused:  # the document's own paths, unchanged
        parse_rule(draft)
    assert "actions[0].max: Input should be greater than 0" in str(refused.value)


def test_an_import_lists_each_problem_by_screen_name_and_path() -> None:
    with pytest.raises(ImportRefused) as refused:
        import_rule(
            '{"name": "x", "scope": {"level": "ad"}, "conditions": {"metric": "roas", '
            '"window": "last_1d", "op": ">", "value": 3}, "actions": [{"type": "pause"}], '
            '"safety": {"max_daily_actions": 0}}'
        )
    assert refused.value.lines == [
        "Condition 1 · Window (`conditions.window`): 'last_1d' has 1 days; N must be from 2 to 90",
        "Safety · Max actions a day (`safety.max_daily_actions`): Input should be greater "
        "than or equal to 1",
    ]
    assert str(refused.value).splitlines()[1:] == [f"- {line}" for line in refused.value.lines]
    with pytest.raises(ImportRefused, match="not valid JSON"):
        import_rule("{")


def test_scope_choices_are_the_synced_entities_with_their_status(worked) -> None:  # type: ignore[no-untyped-def]
    assert [
        (c.name, c.effective_status) for c in scope_choices(["act_2001"], "campaign", actor=SYSTEM)
    ] == [
        ("A", "ACTIVE"),
        ("B", "ACTIVE"),
        ("C", "ACTIVE"),
    ]
    with write_session() as session:
        session.execute(
            update(AdEntity).where(AdEntity.name == "B").values(effective_status="PAUSED")
        )
        session.execute(
            update(AdEntity).where(AdEntity.name == "C").values(effective_status="ARCHIVED")
        )
    assert [(c.name, c.effective_status) for c in scope_choices([], "campaign", actor=SYSTEM)] == [
        ("A", "ACTIVE"),
        ("B", "PAUSED"),
    ]  # archived ones are never candidates
    assert [c.name for c in scope_choices(None, "campaign", active_only=True, actor=SYSTEM)] == [
        "A"
    ]
    assert [c.name for c in scope_choices(["act_9999"], "campaign", actor=SYSTEM)] == []
    adsets = {c.name for c in scope_choices(["act_2001"], "adset", actor=SYSTEM)}
    assert adsets == {"A · all", "B · all", "C · all"}


def test_the_list_reads_last_run_actions_money_moved_and_errors(worked) -> None:  # type: ignore[no-untyped-def]
    from core.sandbox import FaultConfig

    before = budgets(worked)
    rule = save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    idle = save_rule({**SCALE_WINNERS, "name": "Idle"}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    after = budgets(worked)
    moved = sum(after[n] - before[n] for n in after)  # cents: the account bills in USD
    assert moved > 0

    rows = {r.rule.id: r for r in rules_with_activity(now=NOW, actor=SYSTEM)}
    row = rows[rule.id]
    assert row.actions_7d == 2 and row.errors_7d == 0 and row.currency == "USD"
    assert row.money_moved == {"USD": Decimal(moved) / 100}
    assert money_moved_text(row.money_moved) == f"+{Decimal(moved) / 100:,.2f} USD"
    assert (row.last_run.status, row.last_run.acted, row.last_run.at) == ("succeeded", 2, NOW)
    assert rows[idle.id].last_run is None and rows[idle.id].money_moved == {}
    assert money_moved_text({}) == "—"

    on_a = next(a for a in actions() if a.entity_name == "A")
    rollback(on_a.id, by=ANA, now=NOW)  # a change undone moved no money
    row = {r.rule.id: r for r in rules_with_activity(now=NOW, actor=SYSTEM)}[rule.id]
    assert row.money_moved == {"USD": Decimal(after["C"] - before["C"]) / 100}
    assert row.actions_7d == 2  # the rollback is a person's action, not the rule's

    worked.set_faults(FaultConfig(expired_token=True))
    later = NOW + timedelta(hours=1)
    run_rule_now(idle.id, later, by=SYSTEM)
    row = {r.rule.id: r for r in rules_with_activity(now=later, actor=SYSTEM)}[idle.id]
    assert row.errors_7d == 1 and row.last_run.status == "failed" and row.last_run.error
    assert {r.rule.id: r for r in rules_with_activity(now=later + timedelta(days=8), actor=SYSTEM)}[
        idle.id
    ].errors_7d == 0  # a week later it is history


def test_sorting_and_bulk_status(db: Engine) -> None:
    ids = [
        save_rule({**SCALE_WINNERS, "name": n, "scope": {"level": "campaign"}}, by=SYSTEM).id
        for n in ("b", "C", "a")
    ]
    rows = rules_with_activity(actor=SYSTEM)
    by_name, _, _ = page_of_rules(rows, sort="name")
    assert [r.rule.name for r in by_name] == ["a", "b", "C"]
    created, _, _ = page_of_rules(rows)
    assert [r.rule.id for r in created] == ids
    with pytest.raises(Exception, match="sort"):
        page_of_rules(rows, sort="colour")

    result = set_statuses(ids[:2], RuleStatus.PAUSED, by=SYSTEM)
    assert str(result) == "Disabled 2 rule(s): b, C"
    assert [r.status for r in list_rules(actor=SYSTEM)] == ["paused", "paused", "active"]


def test_modes_are_exclusive_and_go_live_saves_the_tested_version(db: Engine) -> None:
    rule = save_rule({**SCALE_WINNERS, "scope": {"level": "campaign"}, "status": "draft",
                      "safety": {"dry_run": True, "cooldown_minutes": 30}}, by=SYSTEM)  # fmt: skip
    live = go_live(rule.id, by=SYSTEM)
    assert (live.status, live.version) == ("active", 2)
    assert live.document["safety"] == {
        **get_rule(rule.id, actor=SYSTEM).document["safety"],
        "dry_run": False,
    }
    assert live.document["safety"]["cooldown_minutes"] == 30  # the rest as it was tested


def test_money_fields_name_their_currency_and_a_mixed_scope_says_how_to_fix_it() -> None:
    accounts = {
        "act_1": AccountChoice("act_1", "Shop US", "USD", "America/New_York"),
        "act_2": AccountChoice("act_2", "Shop JP", "JPY", "Asia/Tokyo"),
    }
    draft = template("Scale winners")  # all accounts: USD and JPY
    assert currency_label(draft, accounts) == "each account's currency: JPY, USD"
    (problem,) = problems_by_section(draft, accounts)["scope"]
    assert problem.startswith("Scope · Money values in: ")
    assert "choose the currency under “Money values in”" in problem and '"currency"' not in problem

    draft["scope"]["account_ids"] = ["act_2"]
    assert (rule_currency(draft, accounts), currency_label(draft, accounts)) == ("JPY", "JPY")
    assert problems_by_section(draft, accounts) == {}
    draft["currency"] = "USD"  # stated, but the one account bills in yen
    (problem,) = problems_by_section(draft, accounts)["scope"]
    assert problem.startswith("Scope · Accounts: act_2 bills in JPY")
    draft["scope"]["account_ids"] = []
    assert problems_by_section(draft, accounts) == {}  # USD; act_2 is left out at run time
