"""The action kinds: one class per kind of action, and the catalogue of them.

A kind knows how an action of it is planned from a rule's action and the entity as the
engine sees it — a typed change (core/actions/changes.py) or a `PlanSkip` saying why
nothing is done — and how a change it made is undone once Meta shows the entity still
as Rex left it (a `RollbackRefused` saying what changed otherwise). The change itself
knows its Graph write, how it shows in Meta's change history and read-back state, and
its drift. The words people see for a kind (the builder's choice, the record, a
preview) are here too.

The engine, approvals, recovery, rollback, the builder and the pages all go through
`CATALOGUE` / `KINDS` / `kind_of`; nothing else interprets an action type. Adding a kind
is one class here (with its change, if it writes something new) and its tests.

Some kinds are made by suggestions (core/suggestions), not by rules: editing an ad set's
targeting, setting its hour schedule. Their `for_rules` is False: they are in
`CATALOGUE` (so their actions are recorded, undone and settled like any other) but not
in `KINDS`, the kinds a rule may take — which the rule builder offers and the rule
document allows. They are proposed with `propose(...)`, from the ad set as read from
Meta with the fields their `reads` names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from core.actions.budget import BudgetNotApplicable, new_budget
from core.actions.changes import (
    BudgetChange,
    Change,
    CopyChange,
    EntityView,
    MetaStatus,
    NotifyChange,
    ScheduleChange,
    StatusChange,
    TargetingChange,
)
from core.actions.targeting import (
    ALL_HOURS,
    TargetingEdit,
    edited_spec,
    hours_of,
    hours_words,
    same_spec,
    schedule_for_hours,
    schedule_words,
    spec_differences,
    spec_words,
)
from core.enums import Level
from core.errors import RexError
from core.meta.objects import ADSET_DELIVERY_FIELDS, EntityInfo
from core.money import format_minor

ROLLBACK_PREFIX = "rollback_"  # a rollback's action type: rollback_<the kind undone>


class ActionType(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CHANGE_BUDGET = "change_budget"
    DUPLICATE = "duplicate"
    NOTIFY = "notify"
    EDIT_TARGETING = "edit_targeting"  # made by suggestions only
    SET_SCHEDULE = "set_schedule"  # made by suggestions only


class PlanSkip(RexError):
    """The action does nothing to this entity now; the message says why."""


class RollbackRefused(RexError):
    """The action cannot be rolled back; the message says why."""


class UnknownActionError(RexError):
    """An action type no kind in the catalogue has."""


@dataclass(frozen=True)
class Planned:
    """A planned change with the words the record shows: "200.00 USD" → "250.00 USD"."""

    change: Change
    old_text: str | None
    new_text: str | None
    note: str | None = None  # which bound stopped a change, when one did


@dataclass(frozen=True)
class Undo:
    """The change that undoes an earlier one, with its words."""

    change: Change
    old_text: str | None
    new_text: str | None


@dataclass(frozen=True)
class PlanContext:
    """What planning needs beyond the action and the entity."""

    rule_name: str
    meta_minimum_minor: int | None = None  # Meta's minimum daily budget for the account


class ActionKind:
    type: ClassVar[ActionType]
    words: ClassVar[str]  # in the record: "change budget"
    choice: ClassVar[str]  # in the builder: "Change the budget"
    would: ClassVar[str]  # in a preview: "would change"
    writes: ClassVar[bool] = True  # False: nothing is sent to Meta (a notification)
    # changes what an entity spends (Health watches these)
    changes_spend: ClassVar[bool] = False
    for_rules: ClassVar[bool] = True  # False: made by suggestions only (not in `KINDS`)
    reads: ClassVar[tuple[str, ...]] = ()  # fields beyond ENTITY_FIELDS its undo reads

    def plan(self, action: Any, view: EntityView, context: PlanContext) -> Planned:
        raise NotImplementedError

    def undo_target(self, change: Change, copied_id: str | None) -> str:
        """The object to read from Meta before undoing (the entity; for a copy, the copy)."""
        return change.entity

    def undo(self, change: Change, current: EntityInfo) -> Undo:
        """The change that restores the entity, given its state read from Meta now."""
        raise RollbackRefused(f"{self.words} actions cannot be rolled back")

    def __repr__(self) -> str:
        return f"<action kind {self.type}>"


class _SetStatus(ActionKind):
    sets: ClassVar[MetaStatus]  # the status this kind sets
    back: ClassVar[MetaStatus]  # the status its undo restores
    changes_spend = True

    def plan(self, action: Any, view: EntityView, context: PlanContext) -> Planned:
        if view.status == self.sets:
            raise PlanSkip(f"already {self.sets.lower()}")
        change = StatusChange(level=view.level, entity=view.external_id, old=view.status,
                              new=self.sets)  # fmt: skip
        return Planned(change, view.status, self.sets)

    def undo(self, change: Change, current: EntityInfo) -> Undo:
        if current.status != self.sets:
            raise RollbackRefused(
                f"its status is now {current.status}, not the {self.sets} Rex set: "
                "someone changed it since; not rolled back"
            )
        back = StatusChange(level=change.level, entity=current.external_id, old=self.sets,
                            new=self.back)  # fmt: skip
        return Undo(back, self.sets, self.back)


class Pause(_SetStatus):
    type = ActionType.PAUSE
    words = "pause"
    choice = "Pause"
    would = "would pause"
    sets, back = "PAUSED", "ACTIVE"


class Resume(_SetStatus):
    type = ActionType.RESUME
    words = "resume"
    choice = "Resume"
    would = "would resume"
    sets, back = "ACTIVE", "PAUSED"


class ChangeBudget(ActionKind):
    type = ActionType.CHANGE_BUDGET
    words = "change budget"
    choice = "Change the budget"
    would = "would change"
    changes_spend = True

    def plan(self, action: Any, view: EntityView, context: PlanContext) -> Planned:
        if view.campaign_budget:
            raise PlanSkip(
                "its budget lives on its campaign (campaign budget optimisation): "
                "use a campaign-level rule"
            )
        try:
            budget = new_budget(
                action,
                currency=view.currency,
                daily_minor=view.daily_budget_minor,
                lifetime_minor=view.lifetime_budget_minor,
                meta_minimum_minor=context.meta_minimum_minor,
            )
        except BudgetNotApplicable as error:
            raise PlanSkip(f"no budget to change: {error}") from None
        if not budget.changes:  # the note names the cause: a bound, Meta, rounding
            raise PlanSkip(budget.note or "the change rounds to nothing")
        change = BudgetChange(
            level=view.level,
            entity=view.external_id,
            budget=budget.kind,
            currency=view.currency,
            old_minor=budget.old_minor,
            new_minor=budget.new_minor,
        )
        return Planned(change, format_minor(budget.old_minor, view.currency),
                       format_minor(budget.new_minor, view.currency), budget.note)  # fmt: skip

    def undo(self, change: Change, current: EntityInfo) -> Undo:
        assert isinstance(change, BudgetChange)
        now_minor = change.current(current)
        if now_minor != change.new_minor:
            now = (
                f"the {change.budget} budget is now {change.money(now_minor)}"
                if now_minor is not None
                else f"it has no {change.budget} budget now"
            )
            raise RollbackRefused(
                f"{now}, not the {change.money(change.new_minor)} Rex set: someone changed it "
                "since; not rolled back"
            )
        back = change.model_copy(
            update={"entity": current.external_id, "old_minor": change.new_minor,
                    "new_minor": change.old_minor}
        )  # fmt: skip
        return Undo(back, change.money(change.new_minor), change.money(change.old_minor))


class Duplicate(ActionKind):
    type = ActionType.DUPLICATE
    words = "duplicate"
    choice = "Duplicate (a paused copy)"
    would = "would copy"

    def plan(self, action: Any, view: EntityView, context: PlanContext) -> Planned:
        change = CopyChange(level=view.level, entity=view.external_id,
                            name=f"{view.name}{action.name_suffix}",
                            name_suffix=action.name_suffix)  # fmt: skip
        return Planned(change, None, None)

    def undo_target(self, change: Change, copied_id: str | None) -> str:
        if not copied_id:
            raise RollbackRefused("the copy's id was never confirmed by Meta: nothing to pause")
        return copied_id

    def undo(self, change: Change, current: EntityInfo) -> Undo:
        # Rex made the copy PAUSED; undoing it archives the copy (Meta has no "uncopy"),
        # unless someone has since put it to work.
        if current.status != "PAUSED":
            raise RollbackRefused(
                f"the copy {current.external_id} is now {current.status}, not the PAUSED Rex "
                "left it: someone changed it since; not rolled back"
            )
        archive = StatusChange(level=change.level, entity=current.external_id, old="PAUSED",
                               new="ARCHIVED")  # fmt: skip
        return Undo(archive, "PAUSED", "ARCHIVED")


class Notify(ActionKind):
    type = ActionType.NOTIFY
    words = "notify"
    choice = "Notify"
    would = "would notify"
    writes = False

    def plan(self, action: Any, view: EntityView, context: PlanContext) -> Planned:
        message = action.message or context.rule_name
        change = NotifyChange(level=view.level, entity=view.external_id, message=message)
        return Planned(change, None, message)

    def undo(self, change: Change, current: EntityInfo) -> Undo:
        raise RollbackRefused("a notification cannot be rolled back")


class _Suggested(ActionKind):
    """A kind made by suggestions: it writes an ad set's delivery settings, read from
    Meta with `reads` before it is proposed and before it is undone."""

    for_rules = False
    changes_spend = True
    reads = ADSET_DELIVERY_FIELDS

    def plan(self, action: Any, view: EntityView, context: PlanContext) -> Planned:
        raise PlanSkip(f"{self.words} is proposed by suggestions, not by rules")

    def _adset(self, adset: EntityInfo) -> None:
        if adset.level != Level.ADSET:
            raise PlanSkip(f"only ad sets can {self.words}; {adset.external_id} is a {adset.level}")


class EditTargeting(_Suggested):
    """Replace an ad set's targeting with the spec an edit makes of the current one."""

    type = ActionType.EDIT_TARGETING
    words = "edit targeting"
    choice = "Edit the targeting"
    would = "would edit targeting"

    def propose(self, adset: EntityInfo, edits: Sequence[TargetingEdit]) -> Planned:
        """The change the edits make to `adset`'s targeting as read from Meta. An edit that
        cannot be made raises its `TargetingEditError`."""
        self._adset(adset)
        if adset.targeting is None:
            raise PlanSkip("its targeting was not read from Meta (read it with the kind's fields)")
        new, summary = edited_spec(adset.targeting, edits)
        change = TargetingChange(level=Level.ADSET, entity=adset.external_id,
                                 old=adset.targeting, new=new, summary=summary)  # fmt: skip
        return Planned(change, spec_words(adset.targeting), spec_words(new), summary)

    def undo(self, change: Change, current: EntityInfo) -> Undo:
        assert isinstance(change, TargetingChange)
        if current.targeting is None:
            raise RollbackRefused("Meta did not answer the ad set's targeting: not rolled back")
        if not same_spec(current.targeting, change.new):
            fields = ", ".join(spec_differences(current.targeting, change.new))
            raise RollbackRefused(
                f"its targeting changed since Rex's edit ({change.summary}): {fields} differ "
                "from what Rex set — someone changed it since; not rolled back"
            )
        back = TargetingChange(level=change.level, entity=current.external_id, old=change.new,
                               new=change.old, summary=f"undo: {change.summary}")  # fmt: skip
        return Undo(back, spec_words(change.new), spec_words(change.old))


class SetSchedule(_Suggested):
    """Deliver only in some hours of the day (dayparting), on an ad set with a lifetime
    budget and an end time — the only ones Meta schedules."""

    type = ActionType.SET_SCHEDULE
    words = "set schedule"
    choice = "Set the hour schedule"
    would = "would schedule"

    def propose(self, adset: EntityInfo, hours: Iterable[int]) -> Planned:
        """The change that makes `adset` deliver in `hours` (0–23, the account's time) on
        every day; `adset` as read from Meta with the kind's `reads`."""
        self._adset(adset)
        if not adset.lifetime_budget_minor:
            raise PlanSkip(
                "Meta schedules hours only for ad sets with a lifetime budget; this one has a "
                "daily budget, which cannot become a lifetime one (pause and resume it by the "
                "hour instead, or schedule a lifetime-budget copy)"
            )
        if adset.end_time is None:
            raise PlanSkip("an ad set with an hour schedule needs an end date; this one has none")
        new = schedule_for_hours(hours)
        current = list(adset.schedule) if adset.schedule else None
        if same_spec(current or schedule_for_hours(ALL_HOURS), new):
            raise PlanSkip(f"it already delivers {schedule_words(current)}")
        summary = hours_words(hours_of(new) or ())
        change = ScheduleChange(level=Level.ADSET, entity=adset.external_id, old=current,
                                new=new, summary=summary)  # fmt: skip
        return Planned(change, schedule_words(current), summary)

    def undo(self, change: Change, current: EntityInfo) -> Undo:
        assert isinstance(change, ScheduleChange)
        now = list(current.schedule) if current.schedule else None
        if now is None or not same_spec(now, change.new):
            raise RollbackRefused(
                f"its hour schedule is now {schedule_words(now)}, not the {change.summary} "
                "Rex set: someone changed it since; not rolled back"
            )
        # Meta keeps a lifetime ad set's schedule once set: "no schedule" is written back
        # as every hour of every day, which delivers the same.
        back_to = change.old or schedule_for_hours(ALL_HOURS)
        back = ScheduleChange(level=change.level, entity=current.external_id, old=change.new,
                              new=back_to, summary=schedule_words(change.old))  # fmt: skip
        return Undo(back, change.summary, schedule_words(change.old))


CATALOGUE: dict[ActionType, ActionKind] = {
    kind.type: kind
    for kind in (
        ChangeBudget(), Pause(), Resume(), Duplicate(), Notify(), EditTargeting(), SetSchedule()
    )
}  # fmt: skip
# the kinds a rule may take: what the builder offers and the rule document allows
KINDS: dict[ActionType, ActionKind] = {t: k for t, k in CATALOGUE.items() if k.for_rules}


def kind_of(action_type: str) -> ActionKind:
    """The kind of an action type (a rollback's type names the kind it undid)."""
    try:
        return CATALOGUE[ActionType(action_type.removeprefix(ROLLBACK_PREFIX))]
    except ValueError:
        raise UnknownActionError(
            f"unknown action type {action_type!r}; Rex knows " + ", ".join(CATALOGUE)
        ) from None


def is_rollback(action_type: str) -> bool:
    return action_type.startswith(ROLLBACK_PREFIX)


def rollback_type(action_type: str) -> str:
    return f"{ROLLBACK_PREFIX}{action_type}"
