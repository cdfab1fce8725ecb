"""A planned change to one entity, as Rex stores it: typed, versioned, read back typed.

A change says what Rex means to do — set a status, set a budget, make a copy, replace
an ad set's targeting, set its hour schedule, tell someone — in the terms every later
step needs, so no step has to interpret a request's
parameters again:

* `write` — the one Graph call that makes it (none for a notification; a targeting
  spec or an hour schedule is sent whole, as Meta replaces it);
* `apply_to(row)` — the same change put into Rex's copy of the entity once Meta
  confirmed it (the next rule then never computes from the value before it);
* `after(view)` — the entity as the engine sees it once the change is planned (a second
  rule in the same tick plans against that);
* `event_type` / `matches(event)` — the entry Meta's change history shows for it, and
  `shown_by(state, since)` — whether a state read back from Meta shows it applied (how
  an unknown outcome is settled, core/actions/settle.py);
* `drift(state)` — what changed at Meta since the change was proposed (an approval of
  a proposal whose entity moved since is refused, core/actions/approvals.py).

Which change an action makes, and how it is undone, is the action kind's business
(core/actions/kinds.py); a rollback's change is an ordinary change of the same shapes.

Stored as JSON under `"change"` in `action_history.details` and `pending_actions.proposal`
with a version (`v`). Rows written before version 1 kept the same facts flat — `request`
(method, path, params), and for budgets `budget`, `currency`, `old_minor`,
`new_minor` — and `read_change` reads them too, so the record never needs rewriting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from core.actions.targeting import same_spec, schedule_words
from core.enums import Level
from core.errors import RexError
from core.meta.activities import EVENT_TYPES, Activity
from core.meta.objects import EntityInfo
from core.money import MoneyError, format_minor

VERSION: Literal[1] = 1
MetaStatus = Literal["ACTIVE", "PAUSED", "ARCHIVED"]  # the statuses Rex writes


class StoredChangeError(RexError):
    """A stored change that cannot be read (written by a newer Rex, or damaged)."""


class Write(BaseModel):
    """One call to Meta."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    path: str
    params: dict[str, Any]
    idempotent: bool = True  # False: a copy, sent on its own (never in a batch)


@dataclass(frozen=True)
class EntityView:
    """An entity as the engine plans on it: what Rex last knew from Meta, then what the
    changes planned so far in this tick make of it."""

    entity_id: int
    external_id: str
    name: str
    level: Level
    status: str
    daily_budget_minor: int | None
    lifetime_budget_minor: int | None
    campaign_budget: bool  # an ad set whose budget lives on its campaign
    currency: str


class _Change(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = VERSION
    level: Level  # the level of the entity written
    entity: str  # the external id of the object the write goes to

    shape: ClassVar[str]

    @property
    def write(self) -> Write | None:
        return None

    def apply_to(self, row: Any) -> None:
        """Put the change into Rex's copy of the entity (an `AdEntity` row)."""

    def after(self, view: EntityView) -> EntityView:
        return view

    @property
    def event_type(self) -> str:
        return EVENT_TYPES.get((self.level, self.shape), "")

    def matches(self, event: Activity) -> bool:
        return False

    def shown_by(self, state: EntityInfo, since: datetime) -> bool:
        return False

    def drift(self, state: EntityInfo) -> str | None:
        return None

    def _changed_since(self, state: EntityInfo, since: datetime) -> bool:
        return state.updated_time is None or state.updated_time >= since

    def _said(self, event: Activity) -> Any:
        """The value Meta's change history says the object got (None: it did not say)."""
        return event.new_value if event.object_id == self.entity else _NOT_THIS_OBJECT


_NOT_THIS_OBJECT = object()


class StatusChange(_Change):
    """Set the entity's status (pause, resume, archive a copy)."""

    shape: ClassVar[str] = "status"
    kind: Literal["status"] = "status"
    old: str | None  # the status when planned (None: not known)
    new: MetaStatus

    @property
    def write(self) -> Write:
        return Write(method="POST", path=self.entity, params={"status": self.new})

    def apply_to(self, row: Any) -> None:
        row.status = self.new
        if self.new != "ACTIVE":  # ACTIVE may still be held by a parent
            row.effective_status = self.new

    def after(self, view: EntityView) -> EntityView:
        return replace(view, status=self.new)

    def matches(self, event: Activity) -> bool:
        said = self._said(event)
        if event.event_type != self.event_type or said is _NOT_THIS_OBJECT:
            return False
        return said is None or str(said).upper() == self.new

    def shown_by(self, state: EntityInfo, since: datetime) -> bool:
        return self._changed_since(state, since) and state.status == self.new

    def drift(self, state: EntityInfo) -> str | None:
        if self.old is None or state.status == self.old:
            return None
        return f"its status changed since the proposal ({self.old} → {state.status})"


class BudgetChange(_Change):
    """Set the entity's daily or lifetime budget, in the currency's minor unit."""

    shape: ClassVar[str] = "budget"
    kind: Literal["budget"] = "budget"
    budget: Literal["daily", "lifetime"]
    currency: str
    old_minor: int
    new_minor: int

    @property
    def write(self) -> Write:
        return Write(
            method="POST", path=self.entity, params={f"{self.budget}_budget": self.new_minor}
        )

    def apply_to(self, row: Any) -> None:
        setattr(row, f"{self.budget}_budget_minor", self.new_minor)

    def after(self, view: EntityView) -> EntityView:
        if self.budget == "daily":
            return replace(view, daily_budget_minor=self.new_minor)
        return replace(view, lifetime_budget_minor=self.new_minor)

    def current(self, state: EntityInfo) -> int | None:
        """The entity's budget of this change's kind, as Meta reports it now."""
        return state.daily_budget_minor if self.budget == "daily" else state.lifetime_budget_minor

    def money(self, minor: int | None) -> str:
        """Minor units as the currency formats them ("93.75 USD"); None → "none"."""
        if minor is None:
            return "none"
        try:
            return format_minor(minor, self.currency)
        except MoneyError:  # a currency Rex does not know the minor unit of
            return f"{minor} (in {self.currency}'s smallest unit)"

    @property
    def delta_minor(self) -> int:
        return self.new_minor - self.old_minor

    def matches(self, event: Activity) -> bool:
        said = self._said(event)
        if event.event_type != self.event_type or said is _NOT_THIS_OBJECT:
            return False
        if said is None:
            return True  # Meta did not say the value; type, object, app and time agree
        try:
            return int(str(said)) == self.new_minor
        except ValueError:
            return True

    def shown_by(self, state: EntityInfo, since: datetime) -> bool:
        return self._changed_since(state, since) and self.current(state) == self.new_minor

    def drift(self, state: EntityInfo) -> str | None:
        now_minor = self.current(state)
        if now_minor == self.old_minor:
            return None
        return (
            f"its {self.budget} budget is now {self.money(now_minor)}, not the "
            f"{self.money(self.old_minor)} it had when the rule proposed this"
        )


class CopyChange(_Change):
    """Copy the entity (made paused, named with a suffix); Meta answers the copy's id."""

    shape: ClassVar[str] = "create"
    kind: Literal["copy"] = "copy"
    name: str  # the copy's name: the entity's name and the suffix
    name_suffix: str

    @property
    def write(self) -> Write:
        params: dict[str, Any] = {
            "status_option": "PAUSED",
            "rename_options": {
                "rename_strategy": "ONLY_TOP_LEVEL_RENAME",
                "rename_suffix": self.name_suffix,
            },
        }
        if self.level in ("campaign", "adset"):
            params["deep_copy"] = False
        return Write(method="POST", path=f"{self.entity}/copies", params=params, idempotent=False)

    def matches(self, event: Activity) -> bool:
        return event.event_type == self.event_type and event.object_name == self.name


class TargetingChange(_Change):
    """Replace an ad set's whole targeting spec (Meta's write replaces it, never merges):
    `old` as read from Meta before, `new` in full. Sending it twice is the same as once,
    so it may go in a batch."""

    shape: ClassVar[str] = "targeting"
    kind: Literal["targeting"] = "targeting"
    old: dict[str, Any]
    new: dict[str, Any]
    summary: str  # "exclude ages 55-64 and 65+"

    @property
    def write(self) -> Write:
        return Write(method="POST", path=self.entity, params={"targeting": self.new})

    def matches(self, event: Activity) -> bool:
        said = self._said(event)
        if event.event_type != self.event_type or said is _NOT_THIS_OBJECT:
            return False
        said = _json(said)
        return not isinstance(said, Mapping) or same_spec(said, self.new)

    def shown_by(self, state: EntityInfo, since: datetime) -> bool:
        return (
            self._changed_since(state, since)
            and state.targeting is not None
            and same_spec(state.targeting, self.new)
        )

    def drift(self, state: EntityInfo) -> str | None:
        if state.targeting is None:
            return (
                "its targeting was not read from Meta, so Rex cannot tell whether it changed "
                "since the proposal"
            )
        if same_spec(state.targeting, self.old):
            return None
        return "its targeting changed at Meta since the proposal (someone edited the ad set)"


class ScheduleChange(_Change):
    """Set an ad set's hour schedule (dayparting: `adset_schedule` with pacing
    `day_parting`); `old` None is no schedule. Meta takes it only on an ad set with a
    lifetime budget and an end time."""

    shape: ClassVar[str] = "schedule"
    kind: Literal["schedule"] = "schedule"
    old: list[dict[str, Any]] | None
    new: list[dict[str, Any]] = Field(min_length=1)
    summary: str  # "06:00–23:00 every day"

    @property
    def write(self) -> Write:
        params = {"adset_schedule": self.new, "pacing_type": ["day_parting"]}
        return Write(method="POST", path=self.entity, params=params)

    def matches(self, event: Activity) -> bool:
        said = self._said(event)
        if event.event_type != self.event_type or said is _NOT_THIS_OBJECT:
            return False
        said = _json(said)
        return not isinstance(said, list) or same_spec(said, self.new)

    def shown_by(self, state: EntityInfo, since: datetime) -> bool:
        now = state.schedule
        return self._changed_since(state, since) and now is not None and same_spec(now, self.new)

    def drift(self, state: EntityInfo) -> str | None:
        if same_spec(list(state.schedule or []), self.old or []):
            return None
        return (
            f"its hour schedule is now {schedule_words(state.schedule)}, not the "
            f"{schedule_words(self.old)} it had when this was proposed"
        )


def _json(value: Any) -> Any:
    """A value from Meta's change history, which may hold JSON as text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class NotifyChange(_Change):
    """Tell people (a notification row); nothing is written to Meta."""

    shape: ClassVar[str] = "notify"
    kind: Literal["notify"] = "notify"
    message: str


Change = Annotated[
    StatusChange | BudgetChange | CopyChange | TargetingChange | ScheduleChange | NotifyChange,
    Field(discriminator="kind"),
]
_CHANGE: TypeAdapter[Change] = TypeAdapter(Change)


# a budget changed by more than this restarts Meta's learning phase (Meta publishes no
# threshold; ../shared/GRAPH_API_NOTES.md): Rex's own budget shifts stay within it
SIGNIFICANT_BUDGET_CHANGE = 0.3


def restarts_learning(details: Mapping[str, Any] | None) -> bool:
    """Whether the change an action stored (`details["change"]`) is a significant edit
    that restarts Meta's learning phase: a targeting or schedule edit, a copy, a budget
    changed by more than `SIGNIFICANT_BUDGET_CHANGE`. (Resuming after a long pause does
    too; Rex does not know how long Meta paused it, so it is not counted.)"""
    change = (details or {}).get("change") or {}
    kind = change.get("kind")
    if kind in ("targeting", "schedule", "copy"):
        return True
    old, new = change.get("old_minor"), change.get("new_minor")
    return bool(kind == "budget" and old and new is not None
                and abs(new / old - 1) > SIGNIFICANT_BUDGET_CHANGE)  # fmt: skip


def stored(change: Change) -> dict[str, Any]:
    """The change as it is stored (`details["change"]`, `proposal["change"]`)."""
    return change.model_dump(mode="json")


def read_change(
    stored_json: Mapping[str, Any] | None, *, level: str, entity: str, entity_name: str = ""
) -> Change | None:
    """The change a stored action or proposal holds; None when it holds none (a row of
    another shape, e.g. a rollback made before changes were stored). `level`, `entity`
    and `entity_name` fill in what rows written before version 1 did not keep."""
    stored_json = stored_json or {}
    try:
        if "change" in stored_json:
            return _CHANGE.validate_python(stored_json["change"])
        return _version_0(stored_json, level, entity, entity_name)
    except (ValidationError, KeyError, TypeError, ValueError) as error:
        raise StoredChangeError(
            f"a stored change cannot be read ({error}); it was written by a newer Rex or "
            "damaged — leave the row as it is and report it"
        ) from None


def change_of(row: Any, entity: Any = None) -> Change | None:
    """The change an `action_history` row holds (see `read_change`); `entity`, its
    `AdEntity` row, fills in what rows before version 1 did not keep."""
    return read_change(
        row.details,
        level=entity.level if entity is not None else "",
        entity=entity.external_id if entity is not None else "",
        entity_name=row.entity_name or "",
    )


def _version_0(
    stored_json: Mapping[str, Any], stored_level: str, entity: str, entity_name: str
) -> Change | None:
    """Rows before version 1: the request's parameters, and the budget facts flat."""
    request = stored_json.get("request")
    if not request:
        return None
    params = request.get("params") or {}
    path = str(request.get("path") or entity)
    level = Level(stored_json.get("level") or stored_level)
    if path.endswith("/copies"):
        suffix = (params.get("rename_options") or {}).get("rename_suffix", " - Copy")
        source = path.removesuffix("/copies")
        return CopyChange(level=level, entity=source, name=f"{entity_name}{suffix}",
                          name_suffix=suffix)  # fmt: skip
    if "status" in params:
        return StatusChange(level=level, entity=path, old=stored_json.get("old"),
                            new=params["status"])  # fmt: skip
    budget: Literal["daily", "lifetime"] = "daily" if "daily_budget" in params else "lifetime"
    new_minor = int(params[f"{budget}_budget"])
    return BudgetChange(
        level=level,
        entity=path,
        budget=budget,
        currency=str(stored_json.get("currency") or ""),
        old_minor=int(stored_json.get("old_minor", new_minor)),
        new_minor=int(stored_json.get("new_minor", new_minor)),
    )
