"""The action catalogue: each kind plans, writes, shows in Meta's record, drifts and undoes
as a user relies on — and rows stored before changes were versioned still read."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from pydantic import TypeAdapter

from core.actions.changes import (
    BudgetChange,
    CopyChange,
    EntityView,
    StatusChange,
    StoredChangeError,
    read_change,
    stored,
)
from core.actions.kinds import (
    CATALOGUE,
    KINDS,
    ActionType,
    PlanContext,
    PlanSkip,
    RollbackRefused,
    UnknownActionError,
    kind_of,
)
from core.labels import action_words
from core.meta.activities import Activity
from core.meta.objects import EntityInfo
from core.rules.document import Action

ACTION: TypeAdapter = TypeAdapter(Action)
AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
VIEW = EntityView(
    entity_id=7,
    external_id="120001",
    name="Prospecting",
    level="adset",
    status="ACTIVE",
    daily_budget_minor=20_000,
    lifetime_budget_minor=None,
    campaign_budget=False,
    currency="USD",
)
CONTEXT = PlanContext(rule_name="Scale winners", meta_minimum_minor=100)


def action(**fields):  # type: ignore[no-untyped-def]
    return ACTION.validate_python(fields)


def state(**fields) -> EntityInfo:  # type: ignore[no-untyped-def]
    base = dict(level="adset", external_id="120001", name="Prospecting", status="ACTIVE",
                effective_status="ACTIVE", daily_budget_minor=20_000, updated_time=AT)  # fmt: skip
    return EntityInfo(**{**base, **fields})


def test_every_document_action_type_has_one_kind_and_its_words() -> None:
    assert set(CATALOGUE) == set(ActionType)
    documented = {
        model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
        for model in get_args(get_args(Action)[0])
    }
    assert set(KINDS) == documented  # a rule may take exactly the kinds for rules
    for kind in CATALOGUE.values():
        assert kind.words and kind.choice and kind.would.startswith("would ")
    assert action_words("change_budget") == "change budget"
    assert action_words("rollback_pause") == "undo pause"
    with pytest.raises(UnknownActionError, match="unknown action type 'explode'"):
        kind_of("explode")


def test_a_budget_raise_is_planned_written_and_applied_in_minor_units() -> None:
    planned = kind_of("change_budget").plan(
        action(type="change_budget", by_percent=25, max=500), VIEW, CONTEXT
    )
    change = planned.change
    assert isinstance(change, BudgetChange)
    assert (change.old_minor, change.new_minor, change.budget) == (20_000, 25_000, "daily")
    assert (planned.old_text, planned.new_text) == ("200.00 USD", "250.00 USD")
    assert change.write.path == "120001" and change.write.params == {"daily_budget": 25_000}
    assert change.write.idempotent  # may go in a batch
    assert change.after(VIEW).daily_budget_minor == 25_000


def test_a_budget_on_the_campaign_or_rounding_to_nothing_is_skipped_with_the_reason() -> None:
    budget = kind_of("change_budget")
    with pytest.raises(PlanSkip, match="lives on its campaign"):
        budget.plan(action(type="change_budget", by_percent=25, max=500),
                    replace(VIEW, campaign_budget=True), CONTEXT)  # fmt: skip
    with pytest.raises(PlanSkip, match="already at 200.00 USD"):
        budget.plan(action(type="change_budget", to=200), VIEW, CONTEXT)


def test_pause_and_resume_skip_what_is_already_so() -> None:
    with pytest.raises(PlanSkip, match="already paused"):
        kind_of("pause").plan(action(type="pause"), replace(VIEW, status="PAUSED"), CONTEXT)
    with pytest.raises(PlanSkip, match="already active"):
        kind_of("resume").plan(action(type="resume"), VIEW, CONTEXT)
    planned = kind_of("pause").plan(action(type="pause"), VIEW, CONTEXT)
    assert planned.change.write.params == {"status": "PAUSED"}
    assert planned.change.after(VIEW).status == "PAUSED"


def test_a_copy_is_sent_alone_and_found_by_its_name() -> None:
    planned = kind_of("duplicate").plan(action(type="duplicate", name_suffix=" (Rex)"), VIEW,
                                        CONTEXT)  # fmt: skip
    change = planned.change
    assert isinstance(change, CopyChange) and change.name == "Prospecting (Rex)"
    assert change.write.path == "120001/copies" and not change.write.idempotent
    assert change.write.params["deep_copy"] is False  # an ad set copied without its ads
    made = Activity(AT, "create_ad_set", "999", object_name="Prospecting (Rex)")
    other = Activity(AT, "create_ad_set", "998", object_name="Retargeting (Rex)")
    assert change.matches(made) and not change.matches(other)


def test_meta_s_change_history_shows_a_write_only_with_its_object_and_value() -> None:
    change = BudgetChange(level="adset", entity="120001", budget="daily", currency="USD",
                          old_minor=20_000, new_minor=25_000)  # fmt: skip
    said = {"new_value": "25000"}
    assert change.matches(Activity(AT, "update_ad_set_budget", "120001", extra=said))
    assert not change.matches(Activity(AT, "update_ad_set_budget", "120002", extra=said))
    assert not change.matches(
        Activity(AT, "update_ad_set_budget", "120001", extra={"new_value": "30000"})
    )
    assert not change.matches(Activity(AT, "update_ad_set_run_status", "120001", extra=said))
    # a state read back shows it only if the object changed after the call
    assert change.shown_by(state(daily_budget_minor=25_000), AT - timedelta(minutes=1))
    assert not change.shown_by(state(daily_budget_minor=25_000), AT + timedelta(minutes=1))


def test_drift_says_what_changed_at_meta_since_the_proposal() -> None:
    change = BudgetChange(level="adset", entity="120001", budget="daily", currency="USD",
                          old_minor=20_000, new_minor=25_000)  # fmt: skip
    assert change.drift(state()) is None
    assert change.drift(state(daily_budget_minor=21_000)) == (
        "its daily budget is now 210.00 USD, not the 200.00 USD it had when the rule proposed this"
    )
    pause = StatusChange(level="adset", entity="120001", old="ACTIVE", new="PAUSED")
    assert pause.drift(state(status="PAUSED")) == (
        "its status changed since the proposal (ACTIVE → PAUSED)"
    )


def test_undo_restores_only_what_rex_left_and_says_what_changed_otherwise() -> None:
    raise_ = BudgetChange(level="adset", entity="120001", budget="daily", currency="USD",
                          old_minor=20_000, new_minor=25_000)  # fmt: skip
    undo = kind_of("change_budget").undo(raise_, state(daily_budget_minor=25_000))
    assert isinstance(undo.change, BudgetChange)
    assert (undo.change.new_minor, undo.old_text, undo.new_text) == (
        20_000, "250.00 USD", "200.00 USD",
    )  # fmt: skip
    with pytest.raises(RollbackRefused, match="now 300.00 USD, not the 250.00 USD Rex set"):
        kind_of("change_budget").undo(raise_, state(daily_budget_minor=30_000))

    pause = StatusChange(level="adset", entity="120001", old="ACTIVE", new="PAUSED")
    assert kind_of("pause").undo(pause, state(status="PAUSED")).change.write.params == {
        "status": "ACTIVE"
    }
    with pytest.raises(RollbackRefused, match="its status is now ACTIVE, not the PAUSED"):
        kind_of("pause").undo(pause, state(status="ACTIVE"))

    copy = CopyChange(level="adset", entity="120001", name="P (Rex)", name_suffix=" (Rex)")
    with pytest.raises(RollbackRefused, match="never confirmed"):
        kind_of("duplicate").undo_target(copy, None)
    archive = kind_of("duplicate").undo(copy, state(external_id="999", status="PAUSED"))
    assert archive.change.write.path == "999"  # the copy is archived, not the original
    assert archive.change.write.params == {"status": "ARCHIVED"}
    with pytest.raises(RollbackRefused, match="cannot be rolled back"):
        kind_of("notify").undo(copy, state())


def test_a_stored_change_reads_back_the_same() -> None:
    change = BudgetChange(level="adset", entity="120001", budget="lifetime", currency="JPY",
                          old_minor=3_000, new_minor=3_500)  # fmt: skip
    assert stored(change)["v"] == 1
    assert read_change({"change": stored(change)}, level="", entity="") == change


def test_rows_stored_before_changes_were_versioned_still_read() -> None:
    budget = read_change(
        {"request": {"method": "POST", "path": "120001", "params": {"daily_budget": 25_000},
                     "idempotent": True},
         "budget": "daily", "currency": "USD", "old_minor": 20_000, "new_minor": 25_000},
        level="adset", entity="120001",
    )  # fmt: skip
    assert budget == BudgetChange(level="adset", entity="120001", budget="daily",
                                  currency="USD", old_minor=20_000, new_minor=25_000)  # fmt: skip
    status = read_change({"request": {"method": "POST", "path": "120001",
                                      "params": {"status": "PAUSED"}, "idempotent": True},
                          "old": "ACTIVE"}, level="adset", entity="120001")  # fmt: skip
    assert status == StatusChange(level="adset", entity="120001", old="ACTIVE", new="PAUSED")
    copy = read_change(
        {"request": {"method": "POST", "path": "120001/copies", "idempotent": False,
                     "params": {"rename_options": {"rename_suffix": " (Rex)"}}},
         "level": "adset"},
        level="", entity="120001", entity_name="Prospecting",
    )  # fmt: skip
    assert isinstance(copy, CopyChange) and copy.name == "Prospecting (Rex)"
    assert copy.write.params["deep_copy"] is False
    assert read_change({"settle": {}}, level="adset", entity="1") is None  # no write in it


def test_a_damaged_or_newer_stored_change_is_refused_clearly() -> None:
    with pytest.raises(StoredChangeError, match="written by a newer Rex or damaged"):
        read_change({"change": {"v": 2, "kind": "budget"}}, level="adset", entity="1")
