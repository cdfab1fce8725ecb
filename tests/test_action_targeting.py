"""Targeting and hour schedules as actions: each edit makes the new full spec a marketer
means (or says why it cannot), the write replaces the spec at Meta, a rollback puts the
old one back only while Meta still shows Rex's, and Meta's refusals read as words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM
from core.accounts import client_for, connect_account
from core.actions.changes import ScheduleChange, TargetingChange, stored
from core.actions.execute import execute_intents
from core.actions.kinds import (
    CATALOGUE,
    KINDS,
    ActionType,
    EditTargeting,
    PlanSkip,
    RollbackRefused,
    SetSchedule,
    kind_of,
)
from core.actions.rollback import rollback
from core.actions.targeting import (
    AddCountry,
    AgeBandInMiddle,
    EditChangesNothing,
    EditLeavesNoOne,
    ExcludeAgeBands,
    ExcludeCountry,
    ExcludeGender,
    ExcludePlacement,
    ExcludeRegion,
    NoHoursLeft,
    NotTargetable,
    edit_spec,
    edited_spec,
    hours_words,
    schedule_for_hours,
)
from core.db import read_session, write_session
from core.db.models import ActionHistory, ActionStatus, AdAccount, AdEntity
from core.enums import Level
from core.meta.errors import TargetingRefusedError, error_from_response
from core.meta.objects import ENTITY_FIELDS, PLATFORMS, EntityInfo
from core.rules.document import Action
from core.rules.draft import ACTION_WORDS
from core.sandbox.graph import GraphFailure, _refusing
from core.sandbox.targeting import check_spec
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW
from tests.signed import ANA

USD = "act_1010000001"
SPEC: dict[str, Any] = {
    "age_min": 18,
    "age_max": 65,
    "geo_locations": {"countries": ["US", "CA", "GB", "AU"]},
    "targeting_automation": {"advantage_audience": 0},
}


# --------------------------------------------------------------- the edits (pure)


def test_edge_age_bands_narrow_the_range_and_a_middle_band_cannot_go() -> None:
    new, words = edit_spec(SPEC, ExcludeAgeBands(bands=("65+", "55-64")))
    assert (new["age_min"], new["age_max"]) == (18, 54) and words == "exclude ages 55-64 and 65+"
    assert SPEC["age_max"] == 65  # the spec read from Meta is left as it was
    new, _ = edit_spec(SPEC, ExcludeAgeBands(bands=("18-24", "65+")))
    assert (new["age_min"], new["age_max"]) == (25, 64)  # one band off each edge
    assert {k: v for k, v in new.items() if k not in ("age_min", "age_max")} == {
        k: v for k, v in SPEC.items() if k not in ("age_min", "age_max")
    }
    with pytest.raises(AgeBandInMiddle, match="35-44 lie inside the targeted ages 18–65"):
        edit_spec(SPEC, ExcludeAgeBands(bands=("35-44",)))
    with pytest.raises(EditLeavesNoOne, match="no age"):
        edit_spec(SPEC, ExcludeAgeBands(bands=("18-24", "25-34", "35-44", "45-54", "55-64", "65+")))
    narrow = {**SPEC, "age_min": 25, "age_max": 44}
    with pytest.raises(EditChangesNothing, match="ages 18-24 are not targeted now"):
        edit_spec(narrow, ExcludeAgeBands(bands=("18-24",)))
    new, _ = edit_spec(narrow, ExcludeAgeBands(bands=("35-44",)))  # now an edge band
    assert (new["age_min"], new["age_max"]) == (25, 34)


def test_excluding_a_gender_keeps_the_other_and_never_both() -> None:
    new, words = edit_spec(SPEC, ExcludeGender(gender="female"))
    assert new["genders"] == [1] and words == "exclude female"
    with pytest.raises(EditLeavesNoOne, match="no gender"):
        edit_spec(new, ExcludeGender(gender="male"))
    with pytest.raises(EditChangesNothing, match="female is not targeted"):
        edit_spec(new, ExcludeGender(gender="female"))


def test_placements_from_advantage_plus_become_the_full_list_minus_the_excluded() -> None:
    new, words = edit_spec(SPEC, ExcludePlacement(publisher_platform="audience_network"))
    assert new["publisher_platforms"] == [p for p in PLATFORMS if p != "audience_network"]
    assert words == "exclude audience_network"
    new, _ = edit_spec(
        SPEC,
        ExcludePlacement(publisher_platform="instagram", platform_position="instagram_stories"),
    )  # the breakdown's spelling → Meta's targeting names
    assert new["publisher_platforms"] == list(PLATFORMS)
    assert new["instagram_positions"] == ["stream", "reels"]
    new, _ = edit_spec(SPEC, ExcludePlacement(impression_device="desktop"))
    assert new["device_platforms"] == ["mobile"] and "publisher_platforms" not in new
    with pytest.raises(NotTargetable, match="iphone cannot be excluded alone"):
        edit_spec(SPEC, ExcludePlacement(impression_device="iphone"))
    with pytest.raises(EditLeavesNoOne, match="no device"):
        edit_spec(new, ExcludePlacement(impression_device="mobile"))
    only_messenger = {**SPEC, "publisher_platforms": ["messenger"]}
    with pytest.raises(EditLeavesNoOne, match="no platform"):
        edit_spec(
            only_messenger,
            ExcludePlacement(publisher_platform="messenger", platform_position="messenger_inbox"),
        )  # its last position: the platform would go, and nothing is left
    with pytest.raises(ValidationError):
        ExcludePlacement(publisher_platform="facebook", impression_device="desktop")


def test_locations_are_removed_excluded_or_added_but_never_all_gone() -> None:
    new, _ = edit_spec(SPEC, ExcludeCountry(country="GB"))
    assert new["geo_locations"] == {"countries": ["US", "CA", "AU"]}
    california = ExcludeRegion(key="3847", name="California", country="US")
    new, words = edit_spec(SPEC, california)
    assert new["excluded_geo_locations"] == {"regions": [{"key": "3847"}]}
    assert new["geo_locations"] == SPEC["geo_locations"] and words == "exclude California"
    with pytest.raises(EditChangesNothing, match="already excluded"):
        edit_spec(new, california)
    us_only = {**SPEC, "geo_locations": {"countries": ["US"]}}
    with pytest.raises(EditLeavesNoOne, match="no location"):
        edit_spec(us_only, ExcludeCountry(country="US"))
    with pytest.raises(EditChangesNothing, match="JP is not targeted"):
        edit_spec(SPEC, ExcludeCountry(country="JP"))
    new, words = edit_spec(us_only, AddCountry(country="JP"))
    assert new["geo_locations"]["countries"] == ["US", "JP"] and words == "add JP"
    with pytest.raises(EditChangesNothing):
        edit_spec(new, AddCountry(country="JP"))


def test_several_edits_make_one_spec_and_one_summary() -> None:
    new, summary = edited_spec(
        SPEC, [ExcludeAgeBands(bands=("55-64", "65+")), ExcludeGender(gender="male")]
    )
    assert (new["age_max"], new["genders"]) == (54, [2])
    assert summary == "exclude ages 55-64 and 65+; exclude male"


def test_hours_become_whole_hour_blocks_on_every_day() -> None:
    kept = set(range(6, 23))
    assert schedule_for_hours(kept) == [
        {"start_minute": 360, "end_minute": 1380, "days": [0, 1, 2, 3, 4, 5, 6],
         "timezone_type": "ADVERTISER"}
    ]  # fmt: skip
    assert hours_words(kept) == "06:00–23:00 every day"
    split = schedule_for_hours({0, 1, 22, 23})
    assert [(b["start_minute"], b["end_minute"]) for b in split] == [(0, 120), (1320, 1440)]
    assert hours_words({0, 1, 22, 23}) == "00:00–02:00 and 22:00–24:00 every day"
    with pytest.raises(NoHoursLeft):
        schedule_for_hours(set())


def test_suggestion_kinds_are_in_the_catalogue_but_never_offered_to_rules() -> None:
    for made_by_suggestions in (ActionType.EDIT_TARGETING, ActionType.SET_SCHEDULE):
        assert made_by_suggestions in CATALOGUE and made_by_suggestions not in KINDS
        assert made_by_suggestions not in ACTION_WORDS  # the builder's choices
        with pytest.raises(ValidationError):
            TypeAdapter(Action).validate_python({"type": made_by_suggestions.value})
        assert CATALOGUE[made_by_suggestions].changes_spend
    assert isinstance(kind_of("rollback_edit_targeting"), EditTargeting)
    assert isinstance(kind_of("rollback_set_schedule"), SetSchedule)
    assert len("rollback_edit_targeting") <= 30  # ActionHistory.action_type is String(30)


# ----------------------------------------------------------- through the sandbox


@pytest.fixture
def connected(db: Engine, sandbox) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    connect_account(USD, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts([USD], options=SyncOptions(days=1, breakdowns=False, now=NOW))
    yield sandbox


def read(sandbox, object_id: str, *fields: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    answer = requests.get(
        f"{sandbox.url}/v26.0/{object_id}",
        params={"fields": ",".join(fields), "access_token": sandbox.token},
        timeout=10,
    )
    assert answer.ok, answer.text
    return answer.json()


def adset_info(external_id: str) -> EntityInfo:
    """The ad set as Rex reads it from Meta with the fields the kinds need."""
    with read_session() as session:
        account = session.scalars(select(AdAccount).where(AdAccount.external_id == USD)).one()
    fields = (*ENTITY_FIELDS[Level.ADSET], *EditTargeting.reads)
    answer = client_for(account).get_objects([external_id], fields)[0]
    assert isinstance(answer, dict), answer
    return EntityInfo.from_graph(Level.ADSET, answer)


def adsets(*, advantage: bool | None = None, lifetime: bool = False) -> list[AdEntity]:
    with read_session() as session:
        rows = session.scalars(
            select(AdEntity).where(AdEntity.level == Level.ADSET).order_by(AdEntity.id)
        ).all()
    found = []
    for row in rows:
        info = adset_info(row.external_id)
        on = bool((info.targeting or {}).get("targeting_automation", {}).get("advantage_audience"))
        if (advantage is None or on == advantage) and bool(info.lifetime_budget_minor) == lifetime:
            found.append(row)
    return found


def intend(entity: AdEntity, action_type: ActionType, change: Any) -> int:
    """An intent row, as the suggestion engine (or core/actions/rollback.py) stores one."""
    with write_session() as session:
        row = ActionHistory(
            account_id=entity.account_id,
            entity_id=entity.id,
            entity_name=entity.name,
            action_type=action_type,
            status=ActionStatus.PENDING,
            idempotency_key=f"test:{action_type}:{entity.id}",
            details={"change": stored(change)},
            created_at=NOW,
        )
        session.add(row)
        session.flush()
        return row.id


def action(action_id: int) -> ActionHistory:
    with read_session() as session:
        return session.get_one(ActionHistory, action_id)


def test_a_targeting_edit_replaces_the_spec_at_meta_and_rolls_back(connected) -> None:  # type: ignore[no-untyped-def]
    entity = adsets(advantage=False)[0]
    before = read(connected, entity.external_id, "targeting")["targeting"]
    planned = EditTargeting().propose(
        adset_info(entity.external_id), [ExcludeAgeBands(bands=("55-64", "65+"))]
    )
    change = planned.change
    assert isinstance(change, TargetingChange) and change.old == before
    assert change.new == {**before, "age_max": 54} and change.write.idempotent
    done = intend(entity, ActionType.EDIT_TARGETING, change)

    assert execute_intents([done]) == {done: ActionStatus.SUCCEEDED}
    assert read(connected, entity.external_id, "targeting")["targeting"] == change.new
    assert change.shown_by(adset_info(entity.external_id), NOW)

    undo = rollback(done, by=ANA)
    assert (undo.status, undo.action_type) == (ActionStatus.SUCCEEDED, "rollback_edit_targeting")
    assert read(connected, entity.external_id, "targeting")["targeting"] == before
    assert action(done).rolled_back_by_id == undo.id


def test_a_rollback_is_refused_when_someone_changed_the_targeting_since(connected) -> None:  # type: ignore[no-untyped-def]
    entity = adsets(advantage=False)[0]
    planned = EditTargeting().propose(
        adset_info(entity.external_id), [ExcludeGender(gender="female")]
    )
    done = intend(entity, ActionType.EDIT_TARGETING, planned.change)
    assert execute_intents([done]) == {done: ActionStatus.SUCCEEDED}
    by_hand = {**planned.change.new, "age_min": 30}  # type: ignore[union-attr]
    connected.edit_as_person(entity.external_id, targeting=json.dumps(by_hand))

    with pytest.raises(RollbackRefused, match="age_min differ from what Rex set"):
        rollback(done, by=ANA)
    assert read(connected, entity.external_id, "targeting")["targeting"] == by_hand  # kept


def test_an_hour_schedule_on_a_lifetime_budget_ad_set_and_its_rollback(connected) -> None:  # type: ignore[no-untyped-def]
    entity = adsets(lifetime=True)[0]
    planned = SetSchedule().propose(adset_info(entity.external_id), range(6, 23))
    change = planned.change
    assert isinstance(change, ScheduleChange) and change.old is None
    assert change.summary == "06:00–23:00 every day" == planned.new_text
    done = intend(entity, ActionType.SET_SCHEDULE, change)

    assert execute_intents([done]) == {done: ActionStatus.SUCCEEDED}
    now = read(connected, entity.external_id, "adset_schedule", "pacing_type")
    assert now == {"id": entity.external_id, "adset_schedule": change.new,
                   "pacing_type": ["day_parting"]}  # fmt: skip

    undo = rollback(done, by=ANA)
    assert undo.status == ActionStatus.SUCCEEDED
    after = read(connected, entity.external_id, "adset_schedule")["adset_schedule"]
    assert after == schedule_for_hours(range(24))  # every hour: delivers as with none

    daily = adsets(lifetime=False)[0]
    with pytest.raises(PlanSkip, match="only for ad sets with a lifetime budget"):
        SetSchedule().propose(adset_info(daily.external_id), range(6, 23))


def test_meta_s_refusals_come_back_failed_in_a_marketer_s_words(connected) -> None:  # type: ignore[no-untyped-def]
    advantage = adsets(advantage=True)[0]
    older = EditTargeting().propose(
        adset_info(advantage.external_id), [ExcludeAgeBands(bands=("55-64", "65+"))]
    )
    refused = intend(advantage, ActionType.EDIT_TARGETING, older.change)
    assert execute_intents([refused]) == {refused: ActionStatus.FAILED}
    message = action(refused).error_message or ""
    assert message.startswith("This ad set uses Advantage+ audience: ages are only a suggestion")
    assert "turn Advantage+ audience off" in message

    plain = adsets(advantage=False)[0]
    spec = read(connected, plain.external_id, "targeting")["targeting"]
    nowhere = TargetingChange(level=Level.ADSET, entity=plain.external_id, old=spec,
                              new={**spec, "geo_locations": {}}, summary="no location")  # fmt: skip
    refused = intend(plain, ActionType.EDIT_TARGETING, nowhere)
    assert execute_intents([refused]) == {refused: ActionStatus.FAILED}
    assert (action(refused).error_message or "").startswith(
        "Meta needs at least one location to deliver to"
    )
    assert read(connected, plain.external_id, "targeting")["targeting"] == spec  # unchanged


def test_a_special_ad_category_refusal_reads_as_words() -> None:
    # the sandbox's own refusal, as its Graph server makes it from the campaign's
    # categories (over HTTP in tests/test_suggestions.py), read back as Rex reads it
    narrower = {**SPEC, "age_min": 25}
    with pytest.raises(GraphFailure) as failure:
        _refusing(lambda spec: check_spec(spec, special_ad_categories=["HOUSING"]), narrower)
    error = error_from_response(400, {"error": failure.value.body})
    assert isinstance(error, TargetingRefusedError) and error.blamed_field == "targeting.age_min"
    assert error.explain().startswith(
        "This campaign is in a special ad category (housing, employment or credit): Meta does "
        "not allow age or gender targeting there"
    )
    assert check_spec(SPEC, special_ad_categories=["HOUSING"]) == SPEC  # 18–65, all: fine
