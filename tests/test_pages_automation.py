"""The Executions and Approvals pages under AppTest, acting by id on a live sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.actions.approvals import list_approvals
from core.engine.run import run_rule_now
from core.rules.store import save_rule
from tests.test_engine import SCALE_WINNERS, budgets

ROOT = Path(__file__).resolve().parent.parent


def run(page: str) -> AppTest:
    app = AppTest.from_file(str(ROOT / page), default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.mark.parametrize("page", ["pages/executions.py", "pages/approvals.py"])
def test_empty_states_explain_what_to_do(db: Engine, page: str) -> None:
    app = run(page)
    assert app.info and ("rule" in app.info[0].value.lower())


def test_approve_by_id_from_the_queue(live) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}})
    run_rule_now(rule.id)
    a, c = list_approvals()

    app = run("pages/approvals.py")
    assert len(app.dataframe[0].value) == 2
    app.multiselect(key="approvals_chosen").set_value([c.id]).run()
    app.button(key="approvals_approve").click().run()
    assert "Your name" in app.error[0].value  # who decides is required
    app.text_input(key="approvals_by").set_value("ana").run()
    app.button(key="approvals_approve").click().run()
    assert not app.exception
    assert f"#{c.id} approved" in app.success[0].value
    assert budgets(live) == {"A": 20_000, "B": 15_000, "C": 40_000}  # C, by id; not A
    assert [p.id for p in list_approvals()] == [a.id]


def test_executions_show_the_trace_and_roll_back(live) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS)
    result = run_rule_now(rule.id)

    app = run("pages/executions.py")
    runs = app.dataframe[0].value
    assert list(runs["ID"]) == [result.execution_id] and list(runs["Acted"]) == [2]
    trace = app.dataframe[1].value
    assert set(trace["Entity"]) == {"A", "B", "C"}
    assert "conditions.all[0]" in trace[trace["Entity"] == "B"]["Why not"].iloc[0]

    action_id = result.steps[0]["action_id"]
    app.button(key=f"rollback_{action_id}").click().run()
    assert not app.exception
    assert "Rolled back A" in app.success[0].value
    assert budgets(live)["A"] == 20_000


def test_reject_many_by_id_with_a_reason(live) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}})
    run_rule_now(rule.id)
    ids = [p.id for p in list_approvals()]

    app = run("pages/approvals.py")
    assert list(app.dataframe[0].value["Rule"]) == ["Scale winners", "Scale winners"]
    app.multiselect(key="approvals_chosen").set_value(ids).run()
    app.text_input(key="approvals_by").set_value("bo").run()
    app.text_input(key="approvals_reason").set_value("not this week").run()
    app.button(key="approvals_reject").click().run()
    assert [s.value for s in app.success] == [f"#{i} rejected" for i in ids]
    assert list_approvals() == [] and live.state.write_log == []
    history = app.dataframe[0].value
    assert set(history["Reason"]) == {"not this week"}


def test_a_person_settles_an_unknown_outcome_on_the_executions_page(live) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from core.actions.settle import settle_unknown
    from core.db import write_session
    from core.db.models import ActionHistory
    from core.db.types import utcnow

    rule = save_rule(SCALE_WINNERS)
    result = run_rule_now(rule.id)
    action_id = result.steps[0]["action_id"]
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
    app.button(key=f"settle_{action_id}_1").click().run()  # "It was applied"
    assert not app.exception
    assert f"Action #{action_id}: applied" in app.success[0].value
    assert app.button(key=f"rollback_{action_id}").label == "Roll back"
