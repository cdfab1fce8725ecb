"""The builder's draft: a rule document as the rule builder edits it, typed.

The Rules page's widgets read and write a `RuleDraft`, never the document's dicts:

* `RuleDraft.of(document)` opens a valid document (a saved rule, a template, an import)
  in the builder's terms: the conditions always under a group, exactly one mode, the
  scope split into the "only active" switch, the entities picked from the list and the
  other filters, the schedule as a preset;
* a draft holds what a person is typing, right or wrong (an empty amount, a minimum
  above the maximum): `to_document()` writes it as RULES.md writes a rule, and the
  document's own validation says what is wrong (`core.rules.builder.problems_by_section`
  in the builder's words) — the draft never second-guesses it;
* the choices a widget offers come from the document's types (`Filter`'s fields and
  operators, the comparison and range operators, `ChangeBudget`'s three ways, the days)
  and from the action catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, get_args

from core.actions.kinds import KINDS, ActionType
from core.enums import DOCUMENT_STATUSES, Level, RuleStatus
from core.errors import InputError
from core.rules.document import (
    DAYS,
    FILTER_FIELDS,
    RANGE_OPS,
    ChangeBudget,
    Filter,
    Schedule,
    parse_rule,
)
from core.rules.metrics import METRICS

# ---------------------------------------------------------------------------- modes


class Mode(StrEnum):
    """The one way a rule acts, as the builder offers it (a document has two flags)."""

    DRY_RUN = "dry_run"
    APPROVAL = "approval"
    LIVE = "live"


MODES: dict[Mode, tuple[str, str]] = {
    Mode.DRY_RUN: (
        "Test first (dry run)",
        "Runs on its schedule and records what it would do; nothing changes on Meta. "
        "Review the result, then go live.",
    ),
    Mode.APPROVAL: (
        "Ask before acting (approval)",
        "Each change waits in Approvals until a person approves it; nothing changes on "
        "Meta before that.",
    ),
    Mode.LIVE: (
        "Live",
        "Changes budgets and statuses on Meta as soon as its conditions hold, within the "
        "safety limits below.",
    ),
}


def mode_of(document: dict[str, Any]) -> Mode:
    """A document's one mode (a dry run wins over approval)."""
    safety = document.get("safety") or {}
    if safety.get("dry_run"):
        return Mode.DRY_RUN
    return Mode.APPROVAL if safety.get("require_approval") else Mode.LIVE


def set_mode(document: dict[str, Any], mode: Mode | str) -> None:
    """Write a mode into a document's two safety flags."""
    if mode not in MODES:
        raise InputError("mode", f"{mode!r}: use one of {', '.join(MODES)}")
    safety = document.setdefault("safety", {})
    safety["dry_run"] = mode == Mode.DRY_RUN
    safety["require_approval"] = mode == Mode.APPROVAL


# ------------------------------------------------------------------- the choices

STATUSES: tuple[RuleStatus, ...] = DOCUMENT_STATUSES
FILTER_OPS: tuple[str, ...] = get_args(Filter.model_fields["op"].annotation)
MANY_OPS = ("in", "not_in")  # the filter operators that take a list
Combine = Literal["all", "any"]
COMBINES: dict[Combine, str] = {"all": "ALL of these hold", "any": "ANY of these holds"}
BudgetHow = Literal["by_percent", "by_amount", "to"]
BUDGET_HOWS: dict[BudgetHow, str] = {"by_percent": "by %", "by_amount": "by amount", "to": "set to"}
assert set(BUDGET_HOWS) <= set(ChangeBudget.model_fields)  # the document's own three ways
ACTION_WORDS: dict[ActionType, str] = {kind.type: kind.choice for kind in KINDS.values()}
ACTIVE_ONLY = {"field": "effective_status", "op": "in", "value": ["ACTIVE"]}

SCHEDULES: dict[str, tuple[str, int | None]] = {
    "every_15": ("Every 15 minutes", 15),
    "every_30": ("Every 30 minutes", 30),
    "hourly": ("Hourly", 60),
    "every_6h": ("Every 6 hours", 360),
    "daily": ("Daily at a time (account's time zone)", None),
    "custom": ("Every … minutes", None),
}
EVERY_MINUTES_DEFAULT: int = Schedule.model_fields["every_minutes"].default


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --------------------------------------------------------------------------- scope


@dataclass
class FilterDraft:
    """A name, status, id or parent filter ("Filter N" on screen)."""

    field: str = "name"
    op: str = "contains"
    value: str | list[str] = ""

    @property
    def text(self) -> str:
        """The value as typed: a list comma-separated."""
        return ", ".join(self.value) if isinstance(self.value, list) else self.value

    def set_text(self, typed: str) -> None:
        """What was typed, as the operator takes it (a list for in / not in)."""
        if self.op in MANY_OPS:
            self.value = [part.strip() for part in typed.split(",") if part.strip()]
        else:
            self.value = typed

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.value}


def is_active_only(item: dict[str, Any]) -> bool:
    """The document filter the builder shows as its "only active" switch."""
    return item.get("field") == "effective_status" and (
        (item.get("op") == "in" and item.get("value") == ["ACTIVE"])
        or (item.get("op") == "=" and item.get("value") == "ACTIVE")
    )


def is_pick(item: dict[str, Any]) -> bool:
    """The document filter the builder shows as the entities picked from the list."""
    return (
        item.get("field") == "id" and item.get("op") == "in" and isinstance(item.get("value"), list)
    )


@dataclass
class ScopeDraft:
    """Which entities a rule judges: accounts, level, the "only active" switch, the
    picked entities and the other filters."""

    level: Level = Level.CAMPAIGN
    account_ids: list[str] = field(default_factory=list)
    active_only: bool = True
    picked: list[str] = field(default_factory=list)
    filters: list[FilterDraft] = field(default_factory=list)

    @classmethod
    def of(cls, scope: dict[str, Any]) -> ScopeDraft:
        active, picked, others = False, None, []
        for item in scope.get("filters") or []:
            if not active and is_active_only(item):
                active = True
            elif picked is None and is_pick(item):
                picked = list(item["value"])
            else:
                others.append(FilterDraft(item["field"], item["op"], item["value"]))
        return cls(
            level=Level(scope.get("level", Level.CAMPAIGN)),
            account_ids=list(scope.get("account_ids") or []),
            active_only=active,
            picked=picked or [],
            filters=others,
        )

    def add_filter(self) -> None:
        """One more filter: an empty "name contains", which lets all through."""
        self.filters.append(FilterDraft())

    def remove_filter(self, index: int) -> None:
        """Remove "Filter `index + 1`" as the builder numbers them."""
        if 0 <= index < len(self.filters):
            self.filters.pop(index)

    def to_json(self) -> dict[str, Any]:
        """The document's filters: the others first (so "Filter N" on screen is the
        document's filter N), then the pick as `id in […]`, then `effective_status in
        [ACTIVE]` — all filters RULES.md defines."""
        filters = [f.to_json() for f in self.filters]
        if self.picked:
            filters.append({"field": "id", "op": "in", "value": list(self.picked)})
        if self.active_only:
            filters.append(dict(ACTIVE_ONLY, value=["ACTIVE"]))
        return {"account_ids": list(self.account_ids), "level": self.level.value,
                "filters": filters}  # fmt: skip


# ---------------------------------------------------------------------- conditions


@dataclass
class Baseline:
    """A condition's own baseline: the same entity's metric over another window, times a
    factor."""

    window: str = "last_30d"
    times: float | None = 1.0
    metric: str | None = None  # None: the condition's own metric


@dataclass
class ConditionDraft:
    """One condition: a metric over a window, an operator, and a number, a range
    (between) or its own baseline."""

    metric: str = "roas"
    window: str | None = "last_7d"
    op: str = ">"
    value: float | None = 1.0
    low: float | None = 0.0
    high: float | None = 1.0
    baseline: Baseline | None = None

    @classmethod
    def of(cls, node: dict[str, Any]) -> ConditionDraft:
        value = node.get("value")
        draft = cls(metric=node["metric"], window=node.get("window"), op=node["op"])
        if isinstance(value, list) and len(value) == 2:
            draft.low, draft.high = _number(value[0]), _number(value[1])
            draft.value = None
        elif isinstance(value, dict):
            metric = value.get("metric")
            draft.baseline = Baseline(
                window=value.get("window", "last_30d"),
                times=_number(value.get("times", 1)),
                metric=None if metric == draft.metric else metric,
            )
            draft.value = None
        else:
            draft.value = _number(value)
        return draft

    @property
    def windowed(self) -> bool:
        """Whether its metric is summed over a window (not a current value)."""
        return self.metric in METRICS and METRICS[self.metric].needs_window

    @property
    def is_range(self) -> bool:
        return self.op in RANGE_OPS

    def set_metric(self, name: str) -> None:
        """Another metric: a windowed one keeps (or gets) a window, a current value has
        none and no baseline."""
        self.metric = name
        if not self.windowed:
            self.window, self.baseline = None, None
        elif self.window is None:
            self.window = "last_7d"

    def set_baseline(self, on: bool) -> None:
        if on and self.baseline is None and self.windowed:
            self.baseline = Baseline()
        elif not on:
            self.baseline = None

    def to_json(self) -> dict[str, Any]:
        node: dict[str, Any] = {"metric": self.metric}
        if self.window is not None:
            node["window"] = self.window
        node["op"] = self.op
        if self.is_range:
            node["value"] = [self.low, self.high]
        elif self.baseline is not None:
            node["value"] = _drop_none(
                {
                    "metric": self.baseline.metric or self.metric,
                    "window": self.baseline.window,
                    "times": self.baseline.times,
                }
            )
        elif self.value is not None:
            node["value"] = self.value
        return node


@dataclass
class GroupDraft:
    """Conditions (and, at the top, groups of them) combined with ALL or ANY."""

    combine: Combine = "all"
    items: list[ConditionDraft | GroupDraft] = field(default_factory=list)

    @classmethod
    def of(cls, node: dict[str, Any]) -> GroupDraft:
        if "all" not in node and "any" not in node:  # a root that is one condition
            return cls("all", [ConditionDraft.of(node)])
        combine: Combine = "all" if "all" in node else "any"
        return cls(
            combine,
            [
                cls.of(child) if "all" in child or "any" in child else ConditionDraft.of(child)
                for child in node[combine]
            ],
        )

    def add_condition(self) -> None:
        self.items.append(ConditionDraft())

    def add_group(self) -> None:
        """A group inside this one, combined the other way (ANY inside ALL)."""
        self.items.append(GroupDraft("any" if self.combine == "all" else "all", [ConditionDraft()]))

    def remove(self, index: int) -> None:
        if 0 <= index < len(self.items):
            self.items.pop(index)

    def to_json(self) -> dict[str, Any]:
        return {self.combine: [item.to_json() for item in self.items]}


# ------------------------------------------------------------------------- actions


@dataclass
class ActionDraft:
    """One action; the fields of the kinds it is not are kept while the person switches
    between kinds, and left out of the document."""

    type: ActionType = ActionType.PAUSE
    how: BudgetHow = "by_percent"
    amount: float | None = 10.0
    min: float | None = None
    max: float | None = None
    budget: Literal["daily", "lifetime"] | None = None  # which budget, where both exist
    name_suffix: str = " - Copy"
    message: str = ""

    @classmethod
    def of(cls, action: dict[str, Any]) -> ActionDraft:
        draft = cls(type=ActionType(action["type"]))
        how = next((h for h in BUDGET_HOWS if h in action), None)
        if how is not None:
            draft.how, draft.amount = how, _number(action[how])
        draft.min, draft.max = _number(action.get("min")), _number(action.get("max"))
        draft.budget = action.get("budget")
        draft.name_suffix = action.get("name_suffix", draft.name_suffix)
        draft.message = action.get("message") or ""
        return draft

    def to_json(self) -> dict[str, Any]:
        if self.type == ActionType.CHANGE_BUDGET:
            return _drop_none(
                {"type": self.type.value, self.how: self.amount, "min": self.min,
                 "max": self.max, "budget": self.budget}
            )  # fmt: skip
        if self.type == ActionType.DUPLICATE:
            return {"type": self.type.value, "name_suffix": self.name_suffix}
        if self.type == ActionType.NOTIFY:
            return _drop_none({"type": self.type.value, "message": self.message or None})
        return {"type": self.type.value}


# ---------------------------------------------------------------- schedule, safety


@dataclass
class ScheduleDraft:
    """When a rule runs, as presets. "Daily at H" is an hourly check whose hours window
    is [H, H+1) in each account's time zone: exactly one run a day falls in it, whatever
    minute the rule was saved at (a 1,440-minute grid would keep the saving time of day
    and could miss the window every day); the other hourly checks act on nothing and say
    so ("outside the rule's hours"). Any other preset may have an hours window of its
    own; "daily" has none besides its hour."""

    preset: str = "hourly"
    every_minutes: int | None = EVERY_MINUTES_DEFAULT  # "custom"
    hour: int = 9  # "daily"
    days: list[str] = field(default_factory=list)
    hours: tuple[int, int] | None = None

    @classmethod
    def of(cls, schedule: dict[str, Any]) -> ScheduleDraft:
        minutes = schedule.get("every_minutes", EVERY_MINUTES_DEFAULT)
        hours = schedule.get("hours")
        days = list(schedule.get("days") or [])
        if minutes == 60 and hours and len(hours) == 2 and hours[1] == hours[0] + 1:
            return cls("daily", minutes, int(hours[0]), days, None)
        preset = next((p for p, (_, every) in SCHEDULES.items() if every == minutes), "custom")
        window = (int(hours[0]), int(hours[1])) if hours and len(hours) == 2 else None
        return cls(preset, minutes, 9, days, window)

    def to_json(self) -> dict[str, Any]:
        if self.preset == "daily":
            every: int | None = 60
            hours: list[int] | None = [self.hour, self.hour + 1]
        else:
            every = SCHEDULES[self.preset][1] if self.preset in SCHEDULES else None
            every = every if every is not None else self.every_minutes
            hours = list(self.hours) if self.hours is not None else None
        return _drop_none({"every_minutes": every, "days": self.days or None, "hours": hours})


@dataclass
class SafetyDraft:
    """The rails besides the mode: a daily cap, a cooldown, thin-data guards."""

    max_daily_actions: int | None = 10
    cooldown_minutes: int | None = 1440
    min_spend: float | None = None
    min_impressions: int | None = None

    @classmethod
    def of(cls, safety: dict[str, Any]) -> SafetyDraft:
        return cls(
            max_daily_actions=safety.get("max_daily_actions", 10),
            cooldown_minutes=safety.get("cooldown_minutes", 1440),
            min_spend=_number(safety.get("min_spend")),
            min_impressions=safety.get("min_impressions"),
        )

    def to_json(self, mode: Mode) -> dict[str, Any]:
        return _drop_none(
            {
                "max_daily_actions": self.max_daily_actions,
                "cooldown_minutes": self.cooldown_minutes,
                "dry_run": mode == Mode.DRY_RUN,
                "require_approval": mode == Mode.APPROVAL,
                "min_spend": self.min_spend,
                "min_impressions": self.min_impressions,
            }
        )


# ------------------------------------------------------------------------ the draft

BOTH_MODES_NOTE = (
    "This rule had both dry run and approval on, so it would never queue anything for "
    "approval. It is shown in **Test first** mode: choose the mode it should run in "
    "before saving."
)


@dataclass
class RuleDraft:
    """A rule as the builder edits it."""

    name: str = ""
    status: RuleStatus = RuleStatus.DRAFT
    mode: Mode = Mode.DRY_RUN
    currency: str | None = None  # None: the currency the scoped accounts bill in
    scope: ScopeDraft = field(default_factory=ScopeDraft)
    conditions: GroupDraft = field(default_factory=lambda: GroupDraft("all", [ConditionDraft()]))
    actions: list[ActionDraft] = field(default_factory=list)
    schedule: ScheduleDraft = field(default_factory=ScheduleDraft)
    safety: SafetyDraft = field(default_factory=SafetyDraft)

    @classmethod
    def of(cls, document: dict[str, Any]) -> tuple[RuleDraft, str | None]:
        """A valid document as a draft, and a note when opening it changed something the
        person should know about (a document with both dry run and approval on)."""
        data = parse_rule(document).to_json()
        safety = data.get("safety") or {}
        note = BOTH_MODES_NOTE if safety.get("dry_run") and safety.get("require_approval") else None
        draft = cls(
            name=data["name"],
            status=RuleStatus(data.get("status", RuleStatus.ACTIVE)),
            mode=mode_of(data),
            currency=data.get("currency"),
            scope=ScopeDraft.of(data["scope"]),
            conditions=GroupDraft.of(data["conditions"]),
            actions=[ActionDraft.of(a) for a in data["actions"]],
            schedule=ScheduleDraft.of(data.get("schedule") or {}),
            safety=SafetyDraft.of(safety),
        )
        return draft, note

    def add_action(self) -> None:
        self.actions.append(ActionDraft())

    def remove_action(self, index: int) -> None:
        if 0 <= index < len(self.actions):
            self.actions.pop(index)

    def to_document(self) -> dict[str, Any]:
        """The draft as RULES.md writes a rule (absent where the document's default
        applies); valid or not — `parse_rule` judges it."""
        document: dict[str, Any] = {"name": self.name, "status": self.status.value}
        if self.currency:
            document["currency"] = self.currency
        document.update(
            scope=self.scope.to_json(),
            conditions=self.conditions.to_json(),
            actions=[a.to_json() for a in self.actions],
            schedule=self.schedule.to_json(),
            safety=self.safety.to_json(self.mode),
        )
        return document


__all__ = [
    "ACTION_WORDS",
    "BUDGET_HOWS",
    "COMBINES",
    "DAYS",
    "FILTER_FIELDS",
    "FILTER_OPS",
    "MODES",
    "SCHEDULES",
    "STATUSES",
    "ActionDraft",
    "Baseline",
    "ConditionDraft",
    "FilterDraft",
    "GroupDraft",
    "Mode",
    "RuleDraft",
    "SafetyDraft",
    "ScheduleDraft",
    "ScopeDraft",
    "mode_of",
    "set_mode",
]
