"""The rule document (RULES.md): what validates, and errors that name the field and the fix."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.rules.document import RuleDocumentError, parse_rule, rule_json_schema
from core.rules.metrics import METRICS
from core.rules.windows import Window, WindowError
from tests.documents import minimal_rule, rules_md_example

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "rule.schema.json"


def changed(path: str, value: object) -> dict:
    """RULES.md's example with the value at a dotted path (list indexes as numbers) replaced."""
    doc = rules_md_example()
    *parents, last = path.split(".")
    node: object = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]  # type: ignore[index]
    if value is ...:
        del node[last]  # type: ignore[attr-defined]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]
    return doc


def test_the_readme_example_validates_and_round_trips() -> None:
    example = rules_md_example()
    rule = parse_rule(json.dumps(example))
    assert rule.scope.level == "campaign"
    assert [c.metric for c in rule.conditions_list()] == ["roas", "profit", "conversions", "cpa"]
    assert rule.conditions_list()[3].value.times == Decimal("0.8")
    assert rule.to_json() == example
    assert parse_rule(rule.to_json()) == rule


def test_defaults_fill_what_a_minimal_rule_leaves_out() -> None:
    rule = parse_rule(minimal_rule())
    assert rule.status == "active"
    assert rule.scope.account_ids == []
    assert rule.schedule.every_minutes == 60
    assert (rule.safety.dry_run, rule.safety.require_approval) == (False, False)


@pytest.mark.parametrize(
    ("path", "value", "field", "fix"),
    [
        (
            "conditions.all.1",
            {"metric": "profit", "window": "last_7d", "op": "between", "value": [5, 1]},
            "conditions.all[1].value",
            "between needs [lo, hi] with lo ≤ hi",
        ),
        (
            "conditions.all.2.any.0.window",
            "last_1d",
            "conditions.all[2].any[0].window",
            "N must be from 2 to 90",
        ),
        ("conditions.all.0.metric", "romance", "conditions.all[0].metric", "use one of spend"),
        ("conditions.all.0.value", "high", "conditions.all[0].value", "give a number"),
        ("conditions.all.0.window", ..., "conditions.all[0].window", "needs a window"),
        ("conditions.all", [], "conditions.all", "at least 1"),
        ("actions.0", {"type": "explode"}, "actions[0]", "use pause, resume"),
        (
            "actions.0",
            {"type": "change_budget", "by_percent": 5, "to": 100},
            "actions[0]",
            "exactly one of by_percent, by_amount or to",
        ),
        ("actions", [], "actions", "at least 1"),
        (  # a budget multiplied by 11 at every run unless the rule gives a ceiling
            "actions.0",
            {"type": "change_budget", "by_percent": 1000},
            "actions[0].by_percent",
            "above +100 needs a max",
        ),
        (
            "actions.0",
            {"type": "change_budget", "by_percent": 10**14, "max": 500},
            "actions[0].by_percent",
            "at most +1000",
        ),
        (
            "actions.0",
            {"type": "change_budget", "by_percent": -100},
            "actions[0].by_percent",
            "above -100",
        ),
        ("name", "Scale\u0000winners", "name", "NUL character"),
        ("scope.filters.0.value", "Pro\u0000", "scope.filters[0].value", "NUL character"),
        ("scope.level", "ads", "scope.level", "'campaign', 'adset' or 'ad'"),
        ("scope.account_ids", ["12-3"], "scope.account_ids", "act_"),
        ("scope.filters.1.value", "ACTIVE", "scope.filters[1].value", "non-empty list"),
        ("schedule.every_minutes", 0, "schedule.every_minutes", "greater than or equal to 1"),
        ("schedule.hours", [20, 8], "schedule.hours", "0 ≤ start < end ≤ 24"),
        ("safety.max_daily_actions", -1, "safety.max_daily_actions", "greater than or equal"),
        ("name", ..., "name", "required"),
        ("surprise", 1, "surprise", "unknown field"),
    ],
)
def test_errors_name_the_field_and_the_fix(path: str, value: object, field: str, fix: str) -> None:
    with pytest.raises(RuleDocumentError) as caught:
        parse_rule(changed(path, value))
    assert caught.value.field == field
    assert fix in caught.value.problem


def test_a_percent_increase_stays_within_what_the_rule_bounds() -> None:
    """Up to +100 % without a max; with a max up to +1000 %; decreases down to -99.99 %."""
    for action in (
        {"type": "change_budget", "by_percent": 100},
        {"type": "change_budget", "by_percent": 1000, "max": 500},
        {"type": "change_budget", "by_percent": Decimal("-99.99")},
    ):
        assert parse_rule(changed("actions.0", action)).actions[0].by_percent is not None
    for action in (
        {"type": "change_budget", "by_percent": Decimal("100.01")},
        {"type": "change_budget", "by_percent": Decimal("1000.01"), "max": 500},
    ):
        with pytest.raises(RuleDocumentError) as caught:
            parse_rule(changed("actions.0", action))
        assert caught.value.field == "actions[0].by_percent"


def test_budget_actions_need_a_budget_level() -> None:
    with pytest.raises(RuleDocumentError) as caught:
        parse_rule(changed("scope.level", "ad"))
    assert caught.value.field == "scope.level"
    assert "ads have no budget" in caught.value.problem


def test_current_values_take_no_window() -> None:
    condition = {"metric": "daily_budget", "window": "last_7d", "op": "<", "value": 500}
    with pytest.raises(RuleDocumentError, match="current value: remove the window"):
        parse_rule(changed("conditions.all.0", condition))
    del condition["window"]
    assert parse_rule(changed("conditions.all.0", condition)).conditions_list()[0].window is None


def test_not_json_is_an_error_not_a_crash() -> None:
    with pytest.raises(RuleDocumentError, match="not valid JSON"):
        parse_rule("{name: ")
    with pytest.raises(RuleDocumentError, match="JSON object"):
        parse_rule("[1, 2]")


@pytest.mark.parametrize(
    ("window", "first", "last"),
    [
        ("today", date(2026, 3, 10), date(2026, 3, 10)),
        ("yesterday", date(2026, 3, 9), date(2026, 3, 9)),
        ("last_7d", date(2026, 3, 3), date(2026, 3, 9)),
        ("last_3d_with_today", date(2026, 3, 8), date(2026, 3, 10)),
        ("this_month", date(2026, 3, 1), date(2026, 3, 10)),
    ],
)
def test_windows_are_account_local_day_ranges(window: str, first: date, last: date) -> None:
    assert Window.parse(window).days_range(date(2026, 3, 10)) == (first, last)


def test_lifetime_has_no_bound_and_bad_windows_say_which_exist() -> None:
    assert Window.parse("lifetime").days_range(date(2026, 3, 10)) is None
    with pytest.raises(WindowError, match="last_Nd"):
        Window.parse("fortnight")
    with pytest.raises(WindowError, match="from 2 to 90"):
        Window.parse("last_91d")


def test_ratios_with_a_zero_denominator_are_undefined() -> None:
    sums = {c: 0 for c in ("spend_micros", "revenue_micros", "conversions", "clicks")}
    sums |= {"impressions": 0, "reach": 0}
    assert METRICS["roas"].value(sums) is None
    assert METRICS["cpa"].value(sums | {"spend_micros": 5_000_000}) is None
    assert METRICS["profit"].value(sums | {"revenue_micros": 2_500_000}) == Decimal("2.5")
    assert METRICS["ctr"].value(sums | {"clicks": 3, "impressions": 200}) == Decimal("1.5")


def test_the_published_schema_is_current() -> None:
    published = json.loads(SCHEMA_FILE.read_text())
    regenerate = "python -m core rules schema > docs/rule.schema.json"
    assert published == rule_json_schema(), f"the schema changed: run `{regenerate}`"
