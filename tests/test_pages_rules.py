"""The Rules page under AppTest: a rule built from a template, previewed, saved, run and
managed by id — and the builder's validation shown beside the field."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.rules.builder import TEMPLATES, duplicate_rule, problems_by_section, template
from core.rules.document import parse_rule
from core.rules.store import list_rules, save_rule
from tests.test_engine import SCALE_WINNERS, budgets

ROOT = Path(__file__).resolve().parent.parent


def run() -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages/rules.py"), default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_every_template_is_a_valid_rule() -> None:
    for name in TEMPLATES:
        assert parse_rule(template(name)).name == name


def test_problems_are_grouped_by_builder_section() -> None:
    draft = template("Scale winners")
    draft["conditions"]["all"][0]["window"] = "last_1d"
    draft["name"] = ""
    problems = problems_by_section(draft)
    assert set(problems) == {"name", "conditions"}
    assert problems["conditions"][0].startswith("conditions.all[0].window:")


def test_build_from_a_template_preview_save_and_run(live) -> None:  # type: ignore[no-untyped-def]
    app = run()
    assert "No rules yet" in app.info[0].value
    app.selectbox(key="builder_template").set_value("Scale winners").run()
    app.button(key="builder_use_template").click().run()
    app.multiselect(key="b1_accounts").set_value(["act_2001"]).run()
    app.radio(key="b1_status").set_value("active").run()
    app.toggle(key="b1_dry").set_value(False).run()
    preview = app.dataframe[-1].value
    assert sorted(preview[preview["Matches"]]["Entity"]) == ["A", "C"]

    app.button(key="builder_save").click().run()
    assert not app.exception
    (saved,) = list_rules()
    assert saved.name == "Scale winners" and saved.document["scope"]["account_ids"] == ["act_2001"]
    assert "Saved “Scale winners”" in app.success[0].value

    app.button(key=f"run_{saved.id}").click().run()
    assert "2 acted" in app.success[0].value
    assert budgets(live) == {"A": 25_000, "B": 15_000, "C": 40_000}


def test_validation_beside_the_field_blocks_saving(db: Engine) -> None:
    app = run()
    app.text_input(key="b0_name").set_value("   ").run()
    assert any("name: give the rule a name" in e.value for e in app.error)
    assert app.button(key="builder_save").disabled


def test_enable_disable_duplicate_delete_by_id(db: Engine) -> None:
    first = save_rule({**SCALE_WINNERS, "scope": {"level": "campaign"}})
    second = save_rule({**SCALE_WINNERS, "name": "Other", "scope": {"level": "campaign"}})
    app = run()
    app.button(key=f"toggle_{second.id}").click().run()
    assert {r.name: r.status for r in list_rules()} == {
        "Scale winners": "active",
        "Other": "paused",
    }
    app.button(key=f"duplicate_{first.id}").click().run()
    assert "Scale winners (copy)" in {r.name for r in list_rules()}
    app.button(key=f"delete_{first.id}").click().run()
    assert "Scale winners" not in {r.name for r in list_rules()}
    copy = duplicate_rule(second.id)
    assert copy.status == "draft"


def test_many_rules_are_found_by_name_and_status_a_page_at_a_time(db: Engine) -> None:
    for i in range(25):
        status = "paused" if i % 5 == 0 else "active"
        save_rule({**SCALE_WINNERS, "name": f"Rule {i:02}", "status": status,
                   "scope": {"level": "campaign"}})  # fmt: skip
    by_name = {r.name: r.id for r in list_rules()}

    app = run()
    assert "25 rule(s) · page 1 of 2" in app.caption[0].value
    shown = [b.key for b in app.button if b.key.startswith("toggle_")]
    assert len(shown) == 20

    app.number_input(key="rules_page").set_value(2).run()
    shown = [b.key for b in app.button if b.key.startswith("toggle_")]
    assert shown == [f"toggle_{by_name[f'Rule {i:02}']}" for i in range(20, 25)]

    app.number_input(key="rules_page").set_value(1).run()
    app.text_input(key="rules_find").set_value("rule 1").run()
    app.multiselect(key="rules_statuses").set_value(["paused"]).run()
    assert app.caption[0].value == "2 rule(s)"  # Rule 10 and Rule 15
    app.button(key=f"toggle_{by_name['Rule 15']}").click().run()  # by id, not position
    assert {r.name: r.status for r in list_rules()}["Rule 15"] == "active"


def test_the_builder_sets_days_hours_and_thin_data_guards(live) -> None:  # type: ignore[no-untyped-def]
    app = run()
    app.button(key="builder_use_template").click().run()
    app.multiselect(key="b1_days").set_value(["mon", "fri"]).run()
    app.toggle(key="b1_limit_hours").set_value(True).run()
    app.slider(key="b1_hours").set_value((9, 18)).run()
    app.number_input(key="b1_min_spend").set_value(25.5).run()
    app.button(key="builder_save").click().run()
    assert not app.exception
    (saved,) = list_rules()
    schedule = saved.document["schedule"]
    assert (schedule["days"], schedule["hours"]) == (["mon", "fri"], [9, 18])
    assert saved.document["safety"]["min_spend"] == 25.5
    assert "min_impressions" not in saved.document["safety"] or (
        saved.document["safety"]["min_impressions"] is None
    )
