"""The Executions and Approvals pages under AppTest, acting by id on a live sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Multiselect

from core.access.actor import SYSTEM
from core.actions.approvals import list_approvals
from core.db import write_session
from core.db.models import RuleExecution
from core.engine.run import run_rule_now
from core.rules.store import save_rule
from tests.signed import ANA, signed_page
from tests.test_activity import BOTH, TWIN, live_twins  # noqa: F401 (the fixture)
from tests.test_engine import SCALE_WINNERS, budgets

ROOT = Path(__file__).resolve().parent.parent
APPROVAL = {**SCALE_WINNERS, "safety": {"require_approval": True}}


def run(page: str) -> AppTest:
    app = signed_page(page, timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    """Everything the page wrote (markdown, captions, notices), as one text."""
    return "\n".join(
        e.value for kind in ("markdown", "caption", "warning", "error", "success")
        for e in getattr(app, kind)
    )  # fmt: skip


class _Browser(Multiselect):
    """A multiselect as the browser reports it: the labels it shows (`shown`), which
    may name an option the page no longer offers."""

    shown: list[str]

    @property
    def _widget_state(self) -> WidgetState:
        state = WidgetState(id=self.id)
        state.string_array_value.data[:] = self.shown
        return state


def test_the_approvals_empty_state_explains_what_to_do(db: Engine) -> None:
    app = run("pages/approvals.py")
    assert app.info and "rule" in app.info[0].value.lower()


def test_the_executions_empty_state_links_to_the_rules_page(db: Engine) -> None:
    app = signed_page("app.py", timeout=60)
    app.switch_page("pages/executions.py").run()  # as `make run` serves it: page links work
    assert not app.exception, [e.value for e in app.exception]
    assert "rule" in app.info[0].value.lower() and "python -m core" not in app.info[0].value
    (link,) = app.get("page_link")
    assert link.proto.page == "rules" and "Builder" in link.proto.label


def test_approve_by_id_from_the_queue(live) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, by=SYSTEM)
    run_rule_now(rule.id, by=SYSTEM)
    a, c = list_approvals(actor=ANA)

    app = run("pages/approvals.py")
    # Streamlit's own "Select all" first entry in the picker is off (a button instead)
    assert app.multiselect(key="approvals_chosen").proto.select_all == 0
    app.multiselect(key="approvals_chosen").set_value([c.id]).run()
    app.button(key="approvals_approve").click().run()
    assert not app.exception
    assert f"#{c.id} approved" in app.success[0].value
    assert budgets(live) == {"A": 20_000, "B": 15_000, "C": 40_000}  # C, by id; not A
    assert [p.id for p in list_approvals(actor=ANA)] == [a.id]


def test_executions_show_the_trace_and_roll_back(live) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, by=SYSTEM)
    result = run_rule_now(rule.id, by=SYSTEM)

    app = run("pages/executions.py")
    runs = app.dataframe[0].value
    assert list(runs["ID"]) == [result.execution_id] and list(runs["Acted"]) == [2]
    trace = app.dataframe[1].value
    assert set(trace["Entity"]) == {"A", "B", "C"}
    why_not = trace[trace["Entity"] == "B"]["Why not"].iloc[0]
    assert why_not.startswith("ROAS over the last 7 days is") and "not above 3" in why_not
    assert "ROAS, last 7 days" in trace.columns  # headings in words, not roas@last_7d

    action_id = result.steps[0].action_id
    app.button(key=f"rollback_{action_id}").click().run()
    assert not app.exception
    assert "Rolled back A" in app.success[0].value
    assert budgets(live)["A"] == 20_000


def test_reject_many_by_id_with_a_reason(live) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, by=SYSTEM)
    run_rule_now(rule.id, by=SYSTEM)
    ids = [p.id for p in list_approvals(actor=ANA)]

    app = run("pages/approvals.py")
    app.button(key="approvals_select_all").click().run()  # a control, not an option
    assert app.multiselect(key="approvals_chosen").value == ids
    app.text_input(key="approvals_reason").set_value("not this week").run()
    app.button(key="approvals_reject").click().run()
    assert [s.value.split(":")[0] for s in app.success] == [f"#{i} rejected" for i in ids]
    assert list_approvals(actor=ANA) == [] and live.state.write_log == []
    history = app.dataframe[0].value
    assert set(history["Reason"]) == {"not this week"}
    assert set(history["By"]) == {"admin@rex.local"}  # the signed-in user, by name
    assert set(history["Rule"]) == {"Scale winners"}


def test_a_person_settles_an_unknown_outcome_on_the_executions_page(live) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from core.actions.settle import settle_unknown
    from core.db import write_session
    from core.db.models import ActionHistory
    from core.db.types import utcnow

    rule = save_rule(SCALE_WINNERS, by=SYSTEM)
    result = run_rule_now(rule.id, by=SYSTEM)
    action_id = result.steps[0].action_id
    with write_session() as session:  # as if its answer had been lost and Meta kept quiet
        details = session.get_one(ActionHistory, action_id).details
        session.execute(
            update(ActionHistory)
            .where(ActionHistory.id == action_id)
            .values(
                status="unknown",
                can_rollback=False,
                details={**details, "settle": {"needs_person": True, "evidence": "ambiguous"}},
            )
        )
    settle_unknown(now=utcnow())  # a person's case is not re-judged by Rex

    app = run("pages/executions.py")
    with pytest.raises(KeyError):  # not succeeded: nothing to roll back yet
        app.button(key=f"rollback_{action_id}")
    unknown = [w.value for w in app.warning if "outcome unknown" in w.value]
    assert len(unknown) == 2 and all(" A " in w or "**A**" in w for w in unknown)  # feed, run
    assert app.button(key=f"feed_settle_{action_id}_0").label == "It was not applied"
    app.button(key=f"settle_{action_id}_1").click().run()  # "It was applied"
    assert not app.exception
    assert f"Action #{action_id}: applied" in app.success[0].value
    assert app.button(key=f"rollback_{action_id}").label == "Roll back"


def test_choosing_another_proposal_after_a_decision_does_not_crash(live) -> None:  # type: ignore[no-untyped-def]
    """Defect 1: decide one, then pick another in "Proposals". The browser still shows
    (and sends back) the label of the proposal just decided, unless the page told it the
    selection changed; the page must take that without a TypeError."""
    rule = save_rule(APPROVAL, by=SYSTEM)
    run_rule_now(rule.id, by=SYSTEM)
    a, c = list_approvals(actor=ANA)

    app = run("pages/approvals.py")
    picker = app.multiselect(key="approvals_chosen")
    label_of_c = picker.options[1]
    picker.set_value([c.id]).run()
    app.button(key="approvals_approve").click().run()
    assert not app.exception, [e.value for e in app.exception]

    picker = app.multiselect(key="approvals_chosen")
    picker.__class__ = _Browser  # what the browser sends: C's old label, then A's
    picker.shown = [label_of_c, picker.options[0]]
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.multiselect(key="approvals_chosen").value == [a.id]  # C is gone from it
    app.button(key="approvals_approve").click().run()
    assert not app.exception
    assert app.success[0].value.startswith(f"#{a.id} approved")
    assert set(app.dataframe[0].value["Status"]) == {"approved"}  # the History tab
    assert budgets(live) == {"A": 25_000, "B": 15_000, "C": 40_000}


def test_approve_and_reject_on_each_row(live) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(APPROVAL, by=SYSTEM)
    run_rule_now(rule.id, by=SYSTEM)
    a, c = list_approvals(actor=ANA)

    app = run("pages/approvals.py")
    shown = texts(app)
    assert "Worked example (USD) (act_2001)" in shown  # the account, name and id
    assert "200.00 USD → 250.00 USD" in shown and "320.00 USD → 400.00 USD" in shown
    # the triggering numbers in words: C's ROAS 5.0 and profit 180 over the last 7 days
    assert "ROAS" in shown and "last 7 days" in shown and "180.00 USD" in shown
    assert "roas@last_7d" not in shown and "profit@" not in shown

    app.button(key=f"approve_{c.id}").click().run()
    assert not app.exception
    assert app.success[0].value.startswith(f"#{c.id} approved")
    assert budgets(live) == {"A": 20_000, "B": 15_000, "C": 40_000}
    with pytest.raises(KeyError):  # decided: its row is gone
        app.button(key=f"approve_{c.id}")

    app.button(key=f"reject_{a.id}").click().run()
    assert app.success[0].value.startswith(f"#{a.id} rejected")
    assert list_approvals(actor=ANA) == [] and budgets(live)["A"] == 20_000
    history = app.dataframe[0].value
    assert dict(zip(history["ID"], history["Status"], strict=True)) == {
        a.id: "rejected", c.id: "approved"
    }  # fmt: skip
    assert set(history["By"]) == {"admin@rex.local"}  # who signed in


@pytest.mark.usefixtures("live_twins")
def test_entities_of_two_accounts_are_told_apart() -> None:
    """Defect 5: campaigns A, B, C exist in two accounts; every view names the account."""
    from datetime import timedelta

    from core.db.types import utcnow

    asked = save_rule(
        {**BOTH, "name": "Ask first", "safety": {"require_approval": True}}, by=SYSTEM
    )
    run_rule_now(asked.id, by=SYSTEM)
    acting = save_rule({**BOTH, "safety": {"cooldown_minutes": 600}}, by=SYSTEM)
    run_rule_now(acting.id, by=SYSTEM)
    again = run_rule_now(acting.id, utcnow() + timedelta(minutes=30), by=SYSTEM)  # all in cooldown

    app = run("pages/approvals.py")
    labels = app.multiselect(key="approvals_chosen").options
    assert sum("(Twin (USD) (act_2002))" in label for label in labels) == 2
    assert sum("(Worked example (USD) (act_2001))" in label for label in labels) == 2
    twin_c = next(
        p
        for p in list_approvals(actor=ANA)
        if p.entity_name == "C" and p.account_external_id == TWIN
    )
    app.button(key=f"reject_{twin_c.id}").click().run()
    assert "Twin (USD) (act_2002)" in app.success[0].value
    history = app.dataframe[0].value
    assert list(history["Account"]) == ["Twin (USD) (act_2002)"]

    app = run("pages/executions.py")
    app.selectbox(key="executions_open").set_value(again.execution_id).run()
    skipped = next(d.value for d in app.dataframe if "Skipped because" in d.value.columns)
    assert sorted(zip(skipped["Entity"], skipped["Account"], strict=True)) == [
        ("A", "Twin (USD) (act_2002)"), ("A", "Worked example (USD) (act_2001)"),
        ("C", "Twin (USD) (act_2002)"), ("C", "Worked example (USD) (act_2001)"),
    ]  # fmt: skip
    feed = [m.value for m in app.markdown if "UTC ·" in m.value]
    assert sum(f"Twin (USD) ({TWIN})" in line for line in feed) >= 2  # in the feed too

    app.selectbox(key="executions_account").set_value(TWIN).run()  # the feed's filter
    feed = [m.value for m in app.markdown if "UTC ·" in m.value]
    assert feed and all(f"({TWIN})" in line for line in feed)


def test_runs_say_what_happened(live) -> None:  # type: ignore[no-untyped-def]
    """Defect 8: acted, queued for approval, would act (dry run), skipped."""
    rule = save_rule(APPROVAL, by=SYSTEM)
    result = run_rule_now(rule.id, by=SYSTEM)
    with write_session() as session:  # the counts core/engine/run.py records (issue 11)
        session.execute(
            update(RuleExecution)
            .where(RuleExecution.id == result.execution_id)
            .values(actions_taken=0, actions_queued=2, actions_would=0, actions_skipped=0)
        )
    app = run("pages/executions.py")
    runs = app.dataframe[0].value
    assert (list(runs["Acted"]), list(runs["Queued for approval"])) == ([0], [2])
    assert list(runs["Would act (dry run)"]) == [0]
    assert list(runs["Outcome"]) == ["2 queued for approval"]
    assert "acted" not in app.selectbox(key="executions_open").options[0]


def test_undo_from_the_activity_feed(live) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, by=SYSTEM)
    result = run_rule_now(rule.id, by=SYSTEM)
    on_a = next(s.action_id for s in result.steps if s.name == "A")

    app = run("pages/executions.py")
    feed = [m.value for m in app.markdown if "UTC ·" in m.value]
    assert len(feed) == 2 * 2  # each action in the feed, and in the run that took it
    assert "Worked example (USD) (act_2001)" in feed[0] and "Scale winners" in feed[0]
    assert "adsmanager.facebook.com" not in "".join(feed)  # a sandbox account: no link
    assert app.button(key=f"undo_{on_a}").label == "Undo"
    app.button(key=f"undo_{on_a}").click().run()
    assert not app.exception
    assert app.success[0].value.startswith("Rolled back A (Worked example (USD) (act_2001))")
    assert budgets(live)["A"] == 20_000
    shown = texts(app)
    assert "undo change budget 250.00 USD → 200.00 USD" in shown
    assert "applied, then undone" in shown
    with pytest.raises(KeyError):  # undone once: no second undo
        app.button(key=f"undo_{on_a}")


@pytest.mark.usefixtures("live_twins")
def test_the_feed_links_entities_to_ads_manager() -> None:
    from tests.test_activity import as_if_on_meta

    rule = save_rule(BOTH, by=SYSTEM)
    run_rule_now(rule.id, by=SYSTEM)
    as_if_on_meta(TWIN)

    app = run("pages/executions.py")
    feed = [m.value for m in app.markdown if "UTC ·" in m.value]
    twin_a = next(line for line in feed if TWIN in line and "**[A]" in line)
    assert (
        "(https://adsmanager.facebook.com/adsmanager/manage/campaigns"
        "?act=2002&selected_campaign_ids=53001)"
    ) in twin_a
    worked_a = next(line for line in feed if "act_2001" in line and "A" in line)
    assert "adsmanager" not in worked_a


def test_the_feed_pages_through_many_actions(live) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from core.db.models import ActionHistory

    rule = save_rule(SCALE_WINNERS, by=SYSTEM)
    result = run_rule_now(rule.id, by=SYSTEM)
    with write_session() as session:  # 58 older actions of the same rule, one a minute
        model = session.get_one(ActionHistory, result.steps[0].action_id)
        for minutes in range(1, 59):
            session.add(
                ActionHistory(
                    rule_id=model.rule_id, account_id=model.account_id,
                    entity_id=model.entity_id, entity_name=f"old {minutes}",
                    action_type="pause", old_value="ACTIVE", new_value="PAUSED",
                    status="failed", error_message="refused",
                    created_at=model.created_at - timedelta(days=2, minutes=minutes),
                )
            )  # fmt: skip

    app = run("pages/executions.py")
    feed = app.tabs[0]
    assert len([m for m in feed.markdown if "UTC ·" in m.value]) == 50  # 60 in all
    assert "60 action(s), newest first · page 1 of 2" in feed.caption[0].value
    app.number_input(key="activity_page").set_value(2).run()
    lines = [m.value for m in app.tabs[0].markdown if "UTC ·" in m.value]
    assert len(lines) == 10 and "old 58" in lines[-1]  # the oldest last
    app.toggle(key="activity_24h").set_value(True).run()  # the last 24 hours: the run's two
    lines = [m.value for m in app.tabs[0].markdown if "UTC ·" in m.value]
    assert len(lines) == 2 and not any("old " in line for line in lines)
