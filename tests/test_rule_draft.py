"""core.rules.draft: the typed draft the rule builder edits — every document opens and
writes back as the same rule, what a person types (right or wrong) reaches the
document's validation, and nothing the builder does not show is lost."""

from __future__ import annotations

from typing import Any

import pytest

from core.actions.kinds import ActionType
from core.enums import Level, RuleStatus
from core.rules.builder import TEMPLATES, problems_by_section, template
from core.rules.document import parse_rule
from core.rules.draft import (
    SCHEDULES,
    ActionDraft,
    Baseline,
    ConditionDraft,
    FilterDraft,
    GroupDraft,
    Mode,
    RuleDraft,
    ScheduleDraft,
    ScopeDraft,
    mode_of,
)
from tests.documents import minimal_rule, rules_md_example, scale_winners


def same_rule(written: dict[str, Any], document: dict[str, Any]) -> bool:
    """The same rule: equal fields (numbers by value), a root condition as a group of one,
    the scope's filters in any order (they all must hold)."""
    conditions = document["conditions"]
    if "all" not in conditions and "any" not in conditions:
        document = {**document, "conditions": {"all": [conditions]}}
    a, b = parse_rule(written), parse_rule(document)
    for rule in (a, b):
        rule.scope.filters.sort(key=lambda f: f.model_dump_json())
    return a == b


@pytest.mark.parametrize(
    "document",
    [
        rules_md_example(),
        minimal_rule(),
        scale_winners(),
        *(template(name) for name in TEMPLATES),
        rules_md_example(
            currency="EUR",
            actions=[
                {"type": "change_budget", "to": 80, "budget": "lifetime"},
                {"type": "duplicate", "name_suffix": " (B)"},
                {"type": "notify", "message": "Look at {name}"},
                {"type": "pause"},
            ],
            schedule={"every_minutes": 45, "days": ["sat", "sun"], "hours": [6, 22]},
            safety={
                "max_daily_actions": 3,
                "cooldown_minutes": 0,
                "min_spend": 12.5,
                "min_impressions": 1000,
                "require_approval": True,
            },
        ),  # fmt: skip
        minimal_rule(
            conditions={"metric": "daily_budget", "op": "between", "value": [10, 50]},
            scope={
                "level": "adset",
                "filters": [
                    {"field": "id", "op": "in", "value": ["11", "12"]},
                    {"field": "campaign_id", "op": "not_in", "value": ["7"]},
                ],
            },
        ),  # fmt: skip
    ],
    ids=lambda d: d["name"],
)
def test_a_document_opens_and_writes_back_as_the_same_rule(document: dict[str, Any]) -> None:
    draft, note = RuleDraft.of(document)
    assert note is None
    written = draft.to_document()
    assert same_rule(written, document)
    assert problems_by_section(written) == {}


def test_a_budget_action_keeps_which_budget_and_a_baseline_keeps_its_metric() -> None:
    # neither has a widget of its own: opening and saving must not drop them
    document = minimal_rule(
        scope={"level": "adset"},
        conditions={"metric": "cpa", "window": "last_3d", "op": ">",
                    "value": {"metric": "cpc", "window": "last_30d", "times": 2}},
        actions=[{"type": "change_budget", "by_percent": -20, "min": 5, "budget": "lifetime"}],
    )  # fmt: skip
    draft, _ = RuleDraft.of(document)
    (condition,) = draft.conditions.items
    assert isinstance(condition, ConditionDraft)
    assert condition.baseline == Baseline(window="last_30d", times=2.0, metric="cpc")
    written = draft.to_document()
    assert written["actions"] == [
        {"type": "change_budget", "by_percent": -20.0, "min": 5.0, "budget": "lifetime"}
    ]
    assert written["conditions"]["all"][0]["value"] == {
        "metric": "cpc", "window": "last_30d", "times": 2.0
    }  # fmt: skip


def test_what_a_person_types_reaches_the_documents_validation_named_on_screen() -> None:
    draft, _ = RuleDraft.of(scale_winners())
    draft.actions[0].amount = None  # the Amount box cleared
    draft.actions[0].min, draft.actions[0].max = 600.0, 500.0
    draft.conditions.items[0].value = None  # type: ignore[union-attr]
    draft.name = "  "
    problems = problems_by_section(draft)
    assert problems["name"] == ["Name: give the rule a name"]
    assert problems["conditions"] == ["Condition 1 · Value: is missing."]
    assert problems["actions"] == ["Action 1: fill in Amount"], (
        problems
    )  # one at a time: the kind's own check comes first
    draft.actions[0].amount = 10.0
    assert problems_by_section(draft)["actions"] == ["Action 1 · Min: must not be above Max"]


def test_switching_kinds_keeps_the_other_kinds_fields_out_of_the_document() -> None:
    action = ActionDraft(type=ActionType.CHANGE_BUDGET, how="to", amount=40.0, max=90.0)
    action.type = ActionType.NOTIFY
    action.message = "check it"
    assert action.to_json() == {"type": "notify", "message": "check it"}
    action.type = ActionType.CHANGE_BUDGET  # switched back: the amounts are still there
    assert action.to_json() == {"type": "change_budget", "to": 40.0, "max": 90.0}
    action.type = ActionType.NOTIFY
    action.message = ""
    assert action.to_json() == {"type": "notify"}  # no message: the default text


def test_a_current_value_metric_has_no_window_and_no_baseline() -> None:
    condition = ConditionDraft(metric="roas", window="last_7d", baseline=Baseline())
    condition.set_metric("daily_budget")
    assert (condition.window, condition.baseline) == (None, None)
    condition.set_baseline(True)
    assert condition.baseline is None  # a budget has no window to compare with
    condition.set_metric("spend")
    assert condition.window == "last_7d"
    condition.set_baseline(True)
    assert condition.to_json()["value"] == {"metric": "spend", "window": "last_30d", "times": 1.0}


def test_groups_add_and_remove_conditions_and_a_root_condition_opens_as_a_group() -> None:
    draft, _ = RuleDraft.of(minimal_rule(conditions={"metric": "ctr", "window": "today",
                                                     "op": "<", "value": 0.5}))  # fmt: skip
    group = draft.conditions
    assert (group.combine, len(group.items)) == ("all", 1)
    group.add_group()
    inner = group.items[1]
    assert isinstance(inner, GroupDraft) and inner.combine == "any"
    inner.add_condition()
    assert len(draft.to_document()["conditions"]["all"][1]["any"]) == 2
    group.remove(0)
    group.remove(5)  # out of range: nothing happens
    assert list(draft.to_document()["conditions"]["all"][0]) == ["any"]


def test_scope_splits_into_switch_pick_and_others_and_writes_them_in_order() -> None:
    name = {"field": "name", "op": "contains", "value": "Prospecting"}
    pick = {"field": "id", "op": "in", "value": ["3001", "3003"]}
    active = {"field": "effective_status", "op": "in", "value": ["ACTIVE"]}
    scope = ScopeDraft.of({"level": "adset", "filters": [active, name, pick]})
    assert (scope.level, scope.active_only, scope.picked) == (Level.ADSET, True, ["3001", "3003"])
    assert scope.filters == [FilterDraft("name", "contains", "Prospecting")]
    assert scope.to_json()["filters"] == [name, pick, active]
    scope.add_filter()
    scope.filters[1].op = "not_in"
    scope.filters[1].set_text(" a, b ,,c ")
    scope.remove_filter(0)
    scope.active_only, scope.picked = False, []
    assert scope.to_json()["filters"] == [
        {"field": "name", "op": "not_in", "value": ["a", "b", "c"]}
    ]
    assert scope.filters[0].text == "a, b, c"


def test_schedule_presets_round_trip() -> None:
    for preset, (_, minutes) in SCHEDULES.items():
        schedule = ScheduleDraft(preset=preset, every_minutes=45, hour=7)
        assert ScheduleDraft.of(schedule.to_json()).preset == preset
        if minutes:
            assert schedule.to_json() == {"every_minutes": minutes}
    daily = ScheduleDraft(preset="daily", hour=21, hours=(8, 20))
    assert daily.to_json() == {"every_minutes": 60, "hours": [21, 22]}  # its hour is its window
    opened = ScheduleDraft.of(daily.to_json())
    assert (opened.preset, opened.hour, opened.hours) == ("daily", 21, None)
    opened.preset = "every_30"
    assert opened.to_json() == {"every_minutes": 30}  # leaving "daily" drops its window
    windowed = ScheduleDraft.of({"every_minutes": 60, "hours": [8, 20], "days": ["mon"]})
    assert (windowed.preset, windowed.hours) == ("hourly", (8, 20))
    windowed.preset = "every_15"
    assert windowed.to_json() == {"every_minutes": 15, "days": ["mon"], "hours": [8, 20]}


def test_modes_are_exclusive_and_a_document_with_both_opens_in_test_first() -> None:
    draft, note = RuleDraft.of(scale_winners(safety={"dry_run": True, "require_approval": True}))
    assert draft.mode == Mode.DRY_RUN
    assert note and "never queue" in note
    safety = draft.to_document()["safety"]
    assert (safety["dry_run"], safety["require_approval"]) == (True, False)
    for mode in Mode:
        draft.mode = mode
        assert mode_of(draft.to_document()) == mode
    assert RuleDraft.of(template("Stop losers"))[0].status == RuleStatus.DRAFT
