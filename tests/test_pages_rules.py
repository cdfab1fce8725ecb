"""The Rules page under AppTest: a rule built from a template, previewed with its
outcomes, saved, dry-run and taken live; the list as a table acted on by rule id; the
builder's validation in the words of the screen."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.access.actor import SYSTEM
from core.engine.run import run_rule_now
from core.rules.builder import TEMPLATES, duplicate_rule, problems_by_section, template
from core.rules.document import parse_rule
from core.rules.store import get_rule, list_rules, save_rule
from tests.signed import signed_page
from tests.test_engine import SCALE_WINNERS, budgets

ROOT = Path(__file__).resolve().parent.parent


def run() -> AppTest:
    app = signed_page("pages/rules.py", timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def builder() -> AppTest:
    app = run()
    app.segmented_control(key="rules_view").set_value("Builder").run()
    return app


def ok(app: AppTest) -> AppTest:
    assert not app.exception, [e.value for e in app.exception]
    return app


def errors(app: AppTest) -> list[str]:
    return [e.value for e in app.error]


def outcomes(app: AppTest):  # type: ignore[no-untyped-def]
    """The preview's table of outcomes (the one with an Outcome column)."""
    (table,) = [d.value for d in app.dataframe if "Outcome" in d.value.columns]
    return table


def keys(app: AppTest, prefix: str) -> list[str]:
    return [w.key for w in app.button if w.key and w.key.startswith(prefix)]


def test_every_template_is_a_valid_rule() -> None:
    for name in TEMPLATES:
        assert parse_rule(template(name)).name == name


def test_problems_are_grouped_by_builder_section_in_its_words() -> None:
    draft = template("Scale winners")
    draft["conditions"]["all"][0]["window"] = "last_1d"
    draft["name"] = ""
    problems = problems_by_section(draft)
    assert set(problems) == {"name", "conditions"}
    assert problems["conditions"][0].startswith("Condition 1 · Window:")
    assert problems["name"] == ["Name: is empty — type a name for the rule."]


def test_build_from_a_template_preview_outcomes_save_and_run(live) -> None:  # type: ignore[no-untyped-def]
    app = run()
    assert "No rules yet" in app.info[0].value
    app = builder()
    app.selectbox(key="builder_template").set_value("Scale winners").run()
    app.button(key="builder_use_template").click().run()
    app.multiselect(key="b1_accounts").set_value(["act_2001"]).run()
    app.radio(key="b1_status").set_value("active").run()
    app.radio(key="b1_mode").set_value("live").run()
    ok(app)
    table = outcomes(app)
    by_entity = dict(zip(table["Entity"], table["Outcome"], strict=True))
    assert sorted(by_entity) == ["A", "C"]  # B does not match: no step
    before = budgets(live)
    a_new = before["A"] * 125 // 100  # +25 %, well under the max of 500.00
    assert by_entity["A"] == f"budget {before['A'] / 100:.2f} → {a_new / 100:.2f} USD"
    (words,) = [m.value for m in app.markdown if m.value.startswith("**In plain language:**")]
    assert "ROAS over the last 7 days > 3" in words and "500.00 USD" in words

    app.button(key="builder_save").click().run()
    ok(app)
    (saved,) = list_rules(actor=SYSTEM)
    assert saved.name == "Scale winners" and saved.document["scope"]["account_ids"] == ["act_2001"]
    assert "Saved “Scale winners”" in app.success[0].value

    app.segmented_control(key="rules_view").set_value("Rules").run()
    app.button(key=f"run_{saved.id}").click().run()
    ok(app)
    assert "2 acted" in app.success[0].value
    assert budgets(live) == {"A": 25_000, "B": 15_000, "C": 40_000}


def test_the_builder_stays_open_when_banners_come_and_go_and_after_saving(db: Engine) -> None:
    """Defect 4: Edit → Builder → change the mode (a banner appears) → Save: the builder
    stays the view shown, and the list is not drawn under it."""
    rule = save_rule(
        {**SCALE_WINNERS, "scope": {"level": "campaign"}, "status": "active"}, by=SYSTEM
    )
    app = run()
    assert keys(app, f"open_{rule.id}")
    app.button(key=f"edit_{rule.id}").click().run()
    assert app.segmented_control(key="rules_view").value == "Builder"
    assert app.text_input(key="b1_name").value == "Scale winners"
    assert not keys(app, f"open_{rule.id}")  # the list is not there

    app.radio(key="b1_mode").set_value("dry_run").run()
    app.radio(key="b1_mode").set_value("live").run()  # the "changes Meta" banner appears
    assert any("changes Meta" in w.value for w in app.warning)
    assert app.segmented_control(key="rules_view").value == "Builder"
    app.radio(key="b1_mode").set_value("approval").run()  # and disappears
    assert not any("changes Meta" in w.value for w in app.warning)
    assert app.segmented_control(key="rules_view").value == "Builder"

    app.button(key="builder_save").click().run()
    ok(app)
    assert "version 2" in app.success[0].value
    assert app.segmented_control(key="rules_view").value == "Builder"
    assert app.radio(key="b1_mode").value == "approval"
    assert not keys(app, f"open_{rule.id}")
    assert get_rule(rule.id, actor=SYSTEM).document["safety"]["require_approval"] is True


def test_validation_names_the_field_on_screen_and_blocks_saving(db: Engine) -> None:
    """Defect 10: a negative Max, an "Every" of 0 and an empty name are taken as typed;
    each message names the field as shown and the fix; Save is disabled meanwhile."""
    app = builder()
    app.number_input(key="b0_a0_max").set_value(-5).run()
    assert app.number_input(key="b0_a0_max").value == -5  # applied, not refused silently
    app.selectbox(key="b0_schedule").set_value("custom").run()
    app.number_input(key="b0_every").set_value(0).run()
    app.text_input(key="b0_name").set_value("").run()
    ok(app)
    shown = errors(app)
    assert "Name: is empty — type a name for the rule." in shown
    assert any(m.startswith("Action 1 · Max: must be more than 0 — ") for m in shown), shown
    assert any(m.startswith("Schedule · Every (minutes): must be at least 1 — ") for m in shown)
    for message in shown:  # no document paths, no pydantic wording
        assert "actions[" not in message and "Input should" not in message
        assert "String should" not in message
    assert app.button(key="builder_save").disabled

    app.number_input(key="b0_a0_max").set_value(None).run()  # empty: no maximum
    app.number_input(key="b0_every").set_value(45).run()
    app.text_input(key="b0_name").set_value("Scale winners").run()
    assert errors(app) == [] and not app.button(key="builder_save").disabled


def test_an_imported_documents_problems_are_a_list_one_per_line(db: Engine) -> None:
    pasted = """{"name": "", "scope": {"level": "campaign"},
    "conditions": {"all": [{"metric": "roas", "window": "last_7d", "op": ">", "value": 3}]},
    "actions": [{"type": "change_budget", "by_percent": 10, "max": -5}],
    "schedule": {"every_minutes": 0}}"""
    app = builder()
    app.text_area(key="builder_import_text").set_value(pasted).run()
    app.button(key="builder_import").click().run()
    ok(app)
    (message,) = errors(app)
    lines = message.splitlines()
    assert lines[0] == "This document cannot be loaded:"
    items = lines[1:]
    assert len(items) == 3 and all(line.startswith("- ") for line in items), lines
    assert any(line.startswith("- Action 1 · Max (`actions[0].max`): ") for line in items)
    assert any("Schedule · Every (minutes) (`schedule.every_minutes`)" in line for line in items)


def test_templates_open_in_test_first_mode_and_say_so(db: Engine) -> None:
    """Defect 12: no template has both dry run and approval on; the builder shows the
    mode it opens in, with a sentence for each mode."""
    for name in TEMPLATES:
        safety = template(name)["safety"]
        assert (safety["dry_run"], safety["require_approval"]) == (True, False), name
    app = builder()
    assert "Test first" in app.info[0].value  # the first template, without a click
    app.selectbox(key="builder_template").set_value("Stop losers").run()
    app.button(key="builder_use_template").click().run()
    mode = app.radio(key="b1_mode")
    assert mode.value == "dry_run" and len(mode.options) == 3
    assert "Stop losers" in app.info[0].value and "Test first" in app.info[0].value
    captions = dict(zip(mode.options, mode.proto.captions, strict=True))
    assert "nothing changes on Meta" in captions["Test first (dry run)"]
    assert "waits in Approvals" in captions["Ask before acting (approval)"]
    assert "Changes budgets and statuses on Meta" in captions["Live"]


def test_a_document_with_both_dry_run_and_approval_opens_in_one_mode(db: Engine) -> None:
    both = {**SCALE_WINNERS, "scope": {"level": "campaign"},
            "safety": {"dry_run": True, "require_approval": True}}  # fmt: skip
    rule = save_rule(both, by=SYSTEM)
    app = run()
    app.button(key=f"open_{rule.id}").click().run()
    assert app.radio(key="b1_mode").value == "dry_run"
    assert any("both dry run and approval" in w.value for w in app.warning)
    app.button(key="builder_save").click().run()
    safety = get_rule(rule.id, actor=SYSTEM).document["safety"]
    assert (safety["dry_run"], safety["require_approval"]) == (True, False)


def test_dry_run_review_then_go_live_in_one_click(live) -> None:  # type: ignore[no-untyped-def]
    tested = {"dry_run": True, "cooldown_minutes": 1440}
    rule = save_rule({**SCALE_WINNERS, "status": "draft", "safety": tested}, by=SYSTEM)
    app = run()
    assert not keys(app, f"golive_{rule.id}")  # nothing to review before it ran
    app.button(key=f"run_{rule.id}").click().run()
    ok(app)
    assert "2 would act (dry run)" in app.success[0].value
    assert budgets(live) == {"A": 20_000, "B": 15_000, "C": 32_000}  # a dry run
    app.button(key=f"golive_{rule.id}").click().run()
    ok(app)
    live_rule = get_rule(rule.id, actor=SYSTEM)
    assert live_rule.status == "active" and live_rule.version == 2
    assert live_rule.document["safety"]["dry_run"] is False
    assert not keys(app, f"golive_{rule.id}")
    app.button(key=f"run_{rule.id}").click().run()  # the dry run holds nothing back
    assert "2 acted" in app.success[0].value
    assert budgets(live) == {"A": 25_000, "B": 15_000, "C": 40_000}

    second = save_rule({**SCALE_WINNERS, "name": "Other", "safety": {"dry_run": True}}, by=SYSTEM)
    run_rule_now(second.id, by=SYSTEM)
    app.run()
    app.button(key=f"open_{second.id}").click().run()
    app.button(key="builder_go_live").click().run()
    ok(app)
    assert get_rule(second.id, actor=SYSTEM).document["safety"]["dry_run"] is False
    assert app.radio(key="b2_mode").value == "live"  # the builder shows the saved rule


def test_delete_asks_for_confirmation(db: Engine) -> None:
    """Defect 16: Delete does nothing until "I understand" is ticked."""
    rule = save_rule({**SCALE_WINNERS, "scope": {"level": "campaign"}}, by=SYSTEM)
    app = run()
    assert app.button(key=f"delete_{rule.id}").disabled  # no click can reach it yet
    app.checkbox(key=f"confirm_delete_{rule.id}").check().run()
    app.button(key=f"delete_{rule.id}").click().run()
    ok(app)
    assert list_rules(actor=SYSTEM) == [] and "Deleted Scale winners" in app.success[0].value


def test_the_list_switches_bulk_sorts_and_opens_rules_by_id(db: Engine) -> None:
    first = save_rule({**SCALE_WINNERS, "name": "Zeta", "scope": {"level": "campaign"}}, by=SYSTEM)
    second = save_rule(
        {**SCALE_WINNERS, "name": "Alpha", "scope": {"level": "campaign"}}, by=SYSTEM
    )
    app = run()
    app.toggle(key=f"on_{second.id}").set_value(False).run()
    assert {r.name: r.status for r in list_rules(actor=SYSTEM)} == {
        "Zeta": "active",
        "Alpha": "paused",
    }
    assert app.toggle(key=f"on_{second.id}").value is False

    app.checkbox(key=f"pick_{first.id}").check().run()
    app.checkbox(key=f"pick_{second.id}").check().run()
    app.button(key="rules_disable").click().run()
    assert {r.status for r in list_rules(actor=SYSTEM)} == {"paused"}
    assert not app.toggle(key=f"on_{first.id}").value
    app.checkbox(key=f"pick_{first.id}").check().run()
    app.checkbox(key=f"pick_{second.id}").check().run()
    app.button(key="rules_enable").click().run()
    assert {r.status for r in list_rules(actor=SYSTEM)} == {"active"}
    assert "Enabled 2 rule(s)" in app.success[0].value

    assert keys(app, "open_") == [f"open_{first.id}", f"open_{second.id}"]  # oldest first
    app.selectbox(key="rules_sort").set_value("name").run()
    assert keys(app, "open_") == [f"open_{second.id}", f"open_{first.id}"]
    described = [c.value for c in app.caption if c.value.startswith("If ")]
    assert len(described) == 2 and all("If ROAS over the last 7 days" in c for c in described)
    assert "changed by admin@rex.local" in [c.value for c in app.caption]  # the toggle's save

    app.button(key=f"duplicate_{first.id}").click().run()
    assert "Zeta (copy)" in {r.name for r in list_rules(actor=SYSTEM)}
    assert app.segmented_control(key="rules_view").value == "Builder"
    assert app.text_input(key="b1_name").value == "Zeta (copy)"
    copy = duplicate_rule(second.id, by=SYSTEM)
    assert copy.status == "draft"


def test_many_rules_are_found_by_name_and_status_a_page_at_a_time(db: Engine) -> None:
    for i in range(25):
        status = "paused" if i % 5 == 0 else "active"
        save_rule({**SCALE_WINNERS, "name": f"Rule {i:02}", "status": status,
                   "scope": {"level": "campaign"}}, by=SYSTEM)  # fmt: skip
    by_name = {r.name: r.id for r in list_rules(actor=SYSTEM)}

    app = run()
    assert "25 rule(s) · page 1 of 2" in app.caption[0].value
    assert len(keys(app, "open_")) == 20

    app.number_input(key="rules_page").set_value(2).run()
    assert keys(app, "open_") == [f"open_{by_name[f'Rule {i:02}']}" for i in range(20, 25)]

    app.number_input(key="rules_page").set_value(1).run()
    app.text_input(key="rules_find").set_value("rule 1").run()
    app.multiselect(key="rules_statuses").set_value(["paused"]).run()
    assert app.caption[0].value == "2 rule(s)"  # Rule 10 and Rule 15
    app.toggle(key=f"on_{by_name['Rule 15']}").set_value(True).run()  # by id, not position
    assert {r.name: r.status for r in list_rules(actor=SYSTEM)}["Rule 15"] == "active"


def test_scope_by_picking_active_only_by_default(live) -> None:  # type: ignore[no-untyped-def]
    app = builder()
    app.multiselect(key="b0_accounts").set_value(["act_2001"]).run()
    assert app.toggle(key="b0_active_only").value is True  # as Meta's rules do
    pick = app.multiselect(key="b0_pick")
    assert [o.split(" · ")[:2] for o in pick.options] == [
        ["A", "ACTIVE"], ["B", "ACTIVE"], ["C", "ACTIVE"]
    ]  # fmt: skip
    by_name = {o.split(" · ")[0]: o.split(" · ")[-1] for o in pick.options}
    app.multiselect(key="b0_pick").set_value([by_name["A"], by_name["B"]]).run()
    app.radio(key="b0_mode").set_value("live").run()
    ok(app)
    assert list(outcomes(app)["Entity"]) == ["A"]  # B is picked but does not match; C not picked

    app.button(key="builder_save").click().run()
    (saved,) = list_rules(actor=SYSTEM)
    assert saved.document["scope"]["filters"] == [
        {"field": "id", "op": "in", "value": [by_name["A"], by_name["B"]]},
        {"field": "effective_status", "op": "in", "value": ["ACTIVE"]},
    ]
    app.toggle(key="b0_active_only").set_value(False).run()
    app.button(key="builder_save").click().run()
    assert get_rule(saved.id, actor=SYSTEM).document["scope"]["filters"] == [
        {"field": "id", "op": "in", "value": [by_name["A"], by_name["B"]]}
    ]


def test_schedules_in_human_terms_and_money_with_its_currency(live) -> None:  # type: ignore[no-untyped-def]
    app = builder()
    app.multiselect(key="b0_accounts").set_value(["act_2001"]).run()
    assert "USD" in app.number_input(key="b0_a0_max").label
    assert app.selectbox(key="b0_schedule").value == "every_6h"  # the template's 360 minutes
    app.selectbox(key="b0_schedule").set_value("daily").run()
    app.selectbox(key="b0_daily_at").set_value(9).run()
    assert any("America/Los_Angeles" in c.value for c in app.caption)
    app.button(key="builder_save").click().run()
    ok(app)
    (saved,) = list_rules(actor=SYSTEM)
    schedule = saved.document["schedule"]
    assert (schedule["every_minutes"], schedule["hours"]) == (60, [9, 10])
    app.selectbox(key="b0_schedule").set_value("every_15").run()
    app.button(key="builder_save").click().run()
    schedule = get_rule(saved.id, actor=SYSTEM).document["schedule"]
    assert schedule["every_minutes"] == 15 and "hours" not in schedule


def test_the_builder_sets_days_hours_and_thin_data_guards(live) -> None:  # type: ignore[no-untyped-def]
    app = builder()
    app.button(key="builder_use_template").click().run()
    app.multiselect(key="b1_days").set_value(["mon", "fri"]).run()
    app.toggle(key="b1_limit_hours").set_value(True).run()
    app.slider(key="b1_hours").set_value((9, 18)).run()
    app.number_input(key="b1_min_spend").set_value(25.5).run()
    app.button(key="builder_save").click().run()
    ok(app)
    (saved,) = list_rules(actor=SYSTEM)
    schedule = saved.document["schedule"]
    assert (schedule["days"], schedule["hours"]) == (["mon", "fri"], [9, 18])
    assert saved.document["safety"]["min_spend"] == 25.5
    assert "min_impressions" not in saved.document["safety"]
