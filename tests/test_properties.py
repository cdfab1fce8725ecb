"""Property tests (hypothesis) for the two promises users lean on hardest.

* Budgets: whatever the current budget, the action, its bounds and the currency, an
  executed budget is a whole number of the currency's minor unit, inside the rule's bounds
  as RULES.md defines them, above Meta's minimum, moving the way the action says.
* Rule documents: any input is either a valid rule (which survives export and re-import
  unchanged) or a `RuleDocumentError` whose problems name a place in the document —
  never any other exception.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from core.actions.budget import BudgetNotApplicable, new_budget
from core.enums import DOCUMENT_STATUSES, Level
from core.money import offset
from core.rules import document as rd
from core.rules.document import (
    COMPARISONS,
    DAYS,
    FILTER_FIELDS,
    RANGE_OPS,
    ChangeBudget,
    RuleDocument,
    RuleDocumentError,
    parse_rule,
)
from core.rules.metrics import METRICS
from tests.documents import minimal_rule, rules_md_example


def runs(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


# ===================================================================== budgets

CURRENCIES = ("USD", "EUR", "JPY", "KRW")  # 100 and 1 minor units per major unit


def _money(places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100_000), places=places)


# Amounts in major units as people write them: whole, to the cent, and finer than the
# currency's unit (a rule may cover USD and JPY accounts alike).
AMOUNTS = st.one_of(_money(0), _money(2), _money(3))
_MINOR = st.integers(min_value=1, max_value=10**9)
BUDGETS = st.one_of(st.none(), _MINOR, _MINOR, _MINOR)  # minor units; None: no such budget


@st.composite
def budget_actions(draw: st.DrawFn) -> ChangeBudget:
    how = draw(st.sampled_from(["by_percent", "by_amount", "to"]))
    if how == "by_percent":
        change = draw(
            st.decimals(min_value=Decimal("-99.99"), max_value=Decimal(1000), places=2).filter(bool)
        )
    elif how == "by_amount":
        change = draw(AMOUNTS) * draw(st.sampled_from([1, -1]))
    else:
        change = draw(AMOUNTS)
    low, high = draw(st.none() | AMOUNTS), draw(st.none() | AMOUNTS)
    if high is None and _needs_max(how, change):
        high = draw(AMOUNTS)  # RULES: a large increase, or one by an amount, has a max
    if low is not None and high is not None and low > high:
        low, high = high, low
    budget = draw(st.sampled_from([None, "daily", "lifetime"]))
    return ChangeBudget(type="change_budget", budget=budget, min=low, max=high, **{how: change})


def _needs_max(how: str, change: Any) -> bool:
    """An increase above rd.PERCENT_WITHOUT_MAX % needs a max."""
    return how == "by_percent" and change > rd.PERCENT_WITHOUT_MAX


def _ideal(action: ChangeBudget, old: int, unit: int) -> tuple[Decimal, int]:
    """The budget RULES.md asks for, exactly (minor units, not yet rounded to the unit), and
    the direction the action moves it (+1 increase, -1 decrease, 0 for `to`)."""
    with localcontext() as context:
        context.prec = 200
        low = None if action.min is None else action.min * unit
        high = None if action.max is None else action.max * unit
        if action.to is not None:
            ideal = action.to * unit
            ideal = ideal if low is None else max(ideal, low)
            ideal = ideal if high is None else min(ideal, high)
            return ideal, 0
        if action.by_percent is not None:
            target = old * (1 + action.by_percent / 100)
        else:
            assert action.by_amount is not None
            target = old + action.by_amount * unit
        if target > old:  # an increase stops at max, never lowering a budget above it;
            # without a max it at most doubles the budget
            return (min(target, Decimal(2 * old)) if high is None
                    else min(target, max(Decimal(old), high))), 1  # fmt: skip
        # a decrease stops at min, never raising a budget below it
        return (target if low is None else max(target, min(Decimal(old), low))), -1


@runs(700)
@example(  # bounds finer than the currency: half-to-even rounding moves them outward
    action=ChangeBudget(type="change_budget", by_percent=Decimal(50), max=Decimal("1.015")),
    currency="USD",
    daily=100,
    lifetime=None,
    meta=None,
)
@example(  # an amount larger than the budget
    action=ChangeBudget(type="change_budget", by_amount=Decimal(-5)),
    currency="USD",
    daily=100,
    lifetime=None,
    meta=None,
)
@example(  # Meta's minimum above the rule's max
    action=ChangeBudget(type="change_budget", to=Decimal("0.5"), max=Decimal("0.75")),
    currency="USD",
    daily=5_000,
    lifetime=None,
    meta=100,
)
@given(
    action=budget_actions(),
    currency=st.sampled_from(CURRENCIES),
    daily=BUDGETS,
    lifetime=BUDGETS,
    meta=st.none() | st.integers(min_value=1, max_value=10_000),
)
def test_an_executed_budget_is_whole_minor_units_within_the_rule_and_metas_bounds(
    action: ChangeBudget, currency: str, daily: int | None, lifetime: int | None, meta: int | None
) -> None:
    kind = action.budget or ("daily" if daily is not None else "lifetime")
    old = daily if kind == "daily" else lifetime
    call = {"currency": currency, "daily_minor": daily, "lifetime_minor": lifetime}
    if old is None:  # the documented outcome when there is nothing to change
        with pytest.raises(BudgetNotApplicable, match=r"no (\w+ )?budget"):
            new_budget(action, **call, meta_minimum_minor=meta)
        return

    result = new_budget(action, **call, meta_minimum_minor=meta)
    assert (result.kind, result.old_minor) == (kind, old)
    new = result.new_minor
    assert type(new) is int, f"{new!r} is not a whole number of minor units"
    assert result.changes is (new != old)

    unit = offset(currency)
    ideal, direction = _ideal(action, old, unit)
    floor = max(meta or 1, 1)  # Meta's minimum; any budget is at least one minor unit
    low = None if action.min is None else action.min * unit
    high = None if action.max is None else action.max * unit

    if not result.changes:
        # Only when the change rounds away, Meta's minimum forbids it, or no whole amount
        # of the currency lies inside [min, max].
        allowed_low = max(Decimal(floor), low or Decimal(0))
        nothing_fits = high is not None and math.ceil(allowed_low) > math.floor(high)
        assert abs(ideal - old) < 1 or ideal < floor or nothing_fits, (
            f"no change although RULES.md asks for {ideal / unit} {currency}"
        )
        return

    what = f"{old} → {new} minor units of {currency}"
    if direction > 0:
        assert new > old, f"an increase lowered the budget: {what}"
    if direction < 0:
        assert new < old, f"a decrease raised the budget: {what}"
    if high is not None and direction >= 0:
        assert new <= high, f"above the rule's max {action.max}: {what}"
    if low is not None and direction <= 0:
        assert new >= low, f"below the rule's min {action.min}: {what}"
    if meta is not None:
        assert new >= meta, f"below Meta's minimum {meta}: {what}"
    assert new >= 1, f"not a budget Meta can take: {what}"
    if ideal >= floor:
        assert abs(new - ideal) < 1, f"RULES.md asks for {ideal} minor units: {what}"


# ============================================================== rule documents

EXAMPLE: dict[str, Any] = rules_md_example()

EVERYTHING: dict[str, Any] = {  # every optional part of RULES.md used at least once
    "schema_version": 1,
    "name": "Trim spenders",
    "status": "draft",
    "scope": {
        "account_ids": ["act_1001", "2002"],
        "level": "adset",
        "filters": [
            {"field": "campaign_id", "op": "not_in", "value": ["1", "2"]},
            {"field": "id", "op": "!=", "value": "3"},
        ],
    },
    "conditions": {
        "any": [
            {"metric": "daily_budget", "op": "between", "value": [10, 20.5]},
            {
                "all": [
                    {"metric": "spend", "window": "today", "op": "not_between", "value": [1, 2]},
                    {"metric": "ctr", "window": "last_14d_with_today", "op": "<=", "value": 0.5},
                ]
            },
        ]
    },
    "actions": [
        {"type": "change_budget", "by_amount": -12.5, "min": 5, "budget": "daily"},
        {"type": "change_budget", "to": 100, "min": 50, "max": 250},
        {"type": "notify", "message": "trimmed"},
        {"type": "duplicate", "name_suffix": " (B)"},
        {"type": "pause"},
        {"type": "resume"},
    ],
    "schedule": {"every_minutes": 30, "days": ["mon", "fri"], "hours": [8, 20]},
    "safety": {"max_daily_actions": 3, "cooldown_minutes": 0, "min_spend": 25.5},
}

MINIMAL: dict[str, Any] = minimal_rule()

FIXED_DOCUMENTS = (EXAMPLE, EVERYTHING, MINIMAL)

MODELS: tuple[type[BaseModel], ...] = (
    rd.RuleDocument,
    rd.Scope,
    rd.Filter,
    rd.Condition,
    rd.Reference,
    rd.All,
    rd.Any_,
    rd.Pause,
    rd.Resume,
    rd.ChangeBudget,
    rd.Duplicate,
    rd.Notify,
    rd.Schedule,
    rd.Safety,
)
FIELD_NAMES = frozenset(name for model in MODELS for name in model.model_fields)
WINDOWED = sorted(name for name, metric in METRICS.items() if metric.needs_window)
CURRENT = sorted(name for name, metric in METRICS.items() if not metric.needs_window)
LEVELS = tuple(level.value for level in Level)
ACTION_TYPES = ("pause", "resume", "change_budget", "duplicate", "notify")
WINDOW_WORDS = ("today", "yesterday", "this_month", "lifetime", "last_7d", "last_1d", "last_91d")

# Words that mean something somewhere in a rule: as keys and as values they steer random
# documents into the interesting corners (another node kind, another action, …).
VOCABULARY = sorted(
    FIELD_NAMES
    | set(LEVELS + COMPARISONS + RANGE_OPS + FILTER_FIELDS + DAYS + ACTION_TYPES + WINDOW_WORDS)
    | set(METRICS)
    | {status.value for status in DOCUMENT_STATUSES}
    | {"daily", "number", "range", "reference", "condition"}
    | {"act_1001", "ACTIVE", "last_3d_with_today", "decimals"}
)

# ---------------------------------------------------------------- JSON values

KEYS = st.text(max_size=8) | st.sampled_from(VOCABULARY)
NUMBER_TEXT = st.decimals(allow_nan=False, allow_infinity=False).map(str)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-3, max_value=30),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(VOCABULARY),
    NUMBER_TEXT,
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)

# ----------------------------------------------------- valid documents (RULES.md)

JSON_NUMBERS = st.integers(min_value=-(10**9), max_value=10**9) | st.floats(
    min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False
)
POSITIVE = st.integers(min_value=1, max_value=10**7) | st.floats(
    min_value=0.001, max_value=1e7, allow_nan=False
)
WINDOWS = st.sampled_from(["today", "yesterday", "this_month", "lifetime"]) | st.builds(
    lambda days, today: f"last_{days}d" + ("_with_today" if today else ""),
    st.integers(min_value=2, max_value=90),
    st.booleans(),
)
REFERENCES = st.fixed_dictionaries(
    {"metric": st.sampled_from(WINDOWED), "window": WINDOWS}, optional={"times": JSON_NUMBERS}
)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    metric = draw(st.sampled_from(WINDOWED + CURRENT))
    condition: dict[str, Any] = {"metric": metric}
    if metric in WINDOWED:
        condition["window"] = draw(WINDOWS)
    condition["op"] = op = draw(st.sampled_from(COMPARISONS + RANGE_OPS))
    if op in RANGE_OPS:
        condition["value"] = sorted(draw(st.lists(JSON_NUMBERS, min_size=2, max_size=2)))
    else:
        condition["value"] = draw(JSON_NUMBERS | REFERENCES)
    return condition


CONDITION_TREES = st.recursive(
    conditions(),
    lambda nodes: st.builds(
        lambda group, children: {group: children},
        st.sampled_from(["all", "any"]),
        st.lists(nodes, min_size=1, max_size=3),
    ),
    max_leaves=8,
)


def rule_text(**sizes: int) -> st.SearchStrategy[str]:
    """Text a rule may hold: anything but NUL, which PostgreSQL cannot store (refused)."""
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), **sizes)


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["=", "!=", "in", "not_in", "contains", "not_contains"]))
    many = op in ("in", "not_in")
    value = draw(st.lists(rule_text(max_size=8), min_size=1, max_size=3) if many else rule_text())
    return {"field": draw(st.sampled_from(FILTER_FIELDS)), "op": op, "value": value}


@st.composite
def change_budget_actions(draw: st.DrawFn) -> dict[str, Any]:
    how = draw(st.sampled_from(["by_percent", "by_amount", "to"]))
    if how == "by_percent":
        change = draw(
            st.integers(min_value=-99, max_value=1000).filter(bool)
            | st.floats(min_value=-99.9, max_value=1000).filter(bool)
        )
    elif how == "by_amount":
        change = draw(JSON_NUMBERS.filter(bool))
    else:
        change = draw(POSITIVE)
    action: dict[str, Any] = {"type": "change_budget", how: change}
    low, high = draw(st.none() | POSITIVE), draw(st.none() | POSITIVE)
    if high is None and _needs_max(how, change):
        high = draw(POSITIVE)
    if low is not None and high is not None and low > high:
        low, high = high, low
    action |= {name: bound for name, bound in [("min", low), ("max", high)] if bound is not None}
    if draw(st.booleans()):
        action["budget"] = draw(st.sampled_from(["daily", "lifetime"]))
    return action


SIMPLE_ACTIONS = st.one_of(
    st.fixed_dictionaries({"type": st.just("pause")}),
    st.fixed_dictionaries({"type": st.just("resume")}),
    st.fixed_dictionaries(
        {"type": st.just("duplicate")}, optional={"name_suffix": rule_text(max_size=20)}
    ),
    st.fixed_dictionaries(
        {"type": st.just("notify")}, optional={"message": rule_text(max_size=40)}
    ),
)
ACCOUNT_IDS = st.integers(min_value=1, max_value=10**15).flatmap(
    lambda n: st.sampled_from([f"act_{n}", str(n)])
)
HOURS = st.integers(min_value=0, max_value=24)
SCHEDULES = st.fixed_dictionaries(
    {},
    optional={
        "every_minutes": st.integers(min_value=1, max_value=10_080),
        "days": st.lists(st.sampled_from(DAYS), max_size=7),
        "hours": st.lists(
            st.integers(min_value=0, max_value=24), min_size=2, max_size=2, unique=True
        ).map(sorted),
    },
)
SAFETIES = st.fixed_dictionaries(
    {},
    optional={
        "max_daily_actions": st.integers(min_value=1, max_value=10_000),
        "cooldown_minutes": st.integers(min_value=0, max_value=525_600),
        "dry_run": st.booleans(),
        "require_approval": st.booleans(),
        "min_spend": POSITIVE | st.just(0),
        "min_impressions": st.integers(min_value=0, max_value=10**9),
    },
)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Any document RULES.md says is valid (within the schema's size limits)."""
    level = draw(st.sampled_from(LEVELS))
    actions = SIMPLE_ACTIONS if level == "ad" else SIMPLE_ACTIONS | change_budget_actions()
    scope = draw(
        st.fixed_dictionaries(
            {"level": st.just(level)},
            optional={
                "account_ids": st.lists(ACCOUNT_IDS, max_size=3),
                "filters": st.lists(filters(), max_size=3),
            },
        )
    )
    name = draw(rule_text(min_size=1, max_size=40).filter(str.strip))
    return draw(
        st.fixed_dictionaries(
            {
                "name": st.just(name),
                "scope": st.just(scope),
                "conditions": CONDITION_TREES,
                "actions": st.lists(actions, min_size=1, max_size=10),
            },
            optional={
                "schema_version": st.just(1),
                "status": st.sampled_from(["active", "paused", "draft"]),
                "schedule": SCHEDULES,
                "safety": SAFETIES,
            },
        )
    )


DOCUMENTS = st.sampled_from(FIXED_DOCUMENTS) | valid_documents()
REPLACEMENTS = st.one_of(
    JSON_VALUES, CONDITION_TREES, change_budget_actions(), SIMPLE_ACTIONS, NUMBER_TEXT
)

# ------------------------------------------------------------------ paths

Path = tuple[str | int, ...]


def render(path: Path) -> str:
    """A path as the error messages write it: `conditions.all[1].value`, `scope."0"`."""
    parts: list[str] = []
    for piece in path:
        if isinstance(piece, int):
            parts[-1 if parts else 0 :] = [f"{parts[-1] if parts else ''}[{piece}]"]
        else:  # a key that is not a name is quoted: `scope."my key"`
            parts.append(piece if piece.isidentifier() else json.dumps(piece))
    return ".".join(parts)


def within(path: str, place: str) -> bool:
    """`path` is `place` or inside it."""
    return not place or path == place or path.startswith((f"{place}.", f"{place}["))


def places(value: Any, path: Path = ()) -> list[Path]:
    """Every key and index in a JSON value, depth first (not the root)."""
    if not isinstance(value, (dict, list)):
        return []
    found: list[Path] = []
    for key, child in value.items() if isinstance(value, dict) else enumerate(value):
        found.append((*path, key))
        found.extend(places(child, (*path, key)))
    return found


def fresh(value: Any) -> Any:
    """A deep copy that shares nothing, even where the original shared a part twice."""
    if isinstance(value, dict):
        return {key: fresh(child) for key, child in value.items()}
    if isinstance(value, list):
        return [fresh(child) for child in value]
    return value


def at(value: Any, path: Path) -> Any:
    for piece in path:
        value = value[piece]
    return value


def names_a_place(field: str, data: Any) -> bool:
    """The error's path is somewhere in the document: an existing key or index, or a field
    or item missing from an existing object or list."""
    if field == "document":
        return True
    if not isinstance(data, dict):
        return False
    existing = [(), *places(data)]
    for path in existing:
        node, where = at(data, path), render(path)
        if field == where:
            return True
        if isinstance(node, dict) and field in {render((*path, name)) for name in FIELD_NAMES}:
            return True
        if isinstance(node, list) and re.fullmatch(re.escape(where) + r"\[\d+\]", field):
            return True
    return False


def outcome(data: Any) -> RuleDocument | RuleDocumentError:
    """parse_rule's answer: a rule that survives export and re-import unchanged, or a
    RuleDocumentError whose every problem names a place in the document and a fix. Any
    other exception propagates and fails the test."""
    try:
        rule = parse_rule(data)
    except RuleDocumentError as error:
        assert error.problems
        assert error.field == error.problems[0][0]
        decoded = data
        if isinstance(data, (str, bytes)):
            try:
                decoded = json.loads(data)
            except (ValueError, RecursionError):
                decoded = None
        for field, problem in error.problems:
            assert problem.strip(), f"{field}: says no fix"
            assert f"{field}: {problem}" in str(error)
            assert names_a_place(field, decoded), f"{field!r} is not a place in the document"
        return error
    assert isinstance(rule, RuleDocument)
    exported = rule.to_json()
    assert parse_rule(exported) == rule, f"export changed the rule: {exported}"
    assert parse_rule(json.dumps(exported)) == rule, f"JSON text changed the rule: {exported}"
    assert parse_rule(exported).to_json() == exported
    return rule


# ------------------------------------------------------- (a) random input


@runs(300)
@given(JSON_VALUES | st.dictionaries(st.sampled_from(sorted(FIELD_NAMES)), JSON_VALUES))
def test_random_json_values_are_a_rule_or_a_field_message(value: Any) -> None:
    outcome(value)
    outcome(json.dumps(value))


@runs(200)
@example("[" * 5_000)  # nested too deep for Python's json module
@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_random_text_is_a_rule_or_a_field_message(text: str) -> None:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        is_json = False
    else:
        is_json = True
    result = outcome(text)
    if not is_json:
        assert isinstance(result, RuleDocumentError) and result.field == "document"


# --------------------------------------------- (b) mutations of valid documents


@dataclass(frozen=True)
class Mutation:
    kind: str  # replace | delete | insert
    document: dict[str, Any]
    path: Path  # where the value was replaced, deleted or inserted
    before: dict[str, Any]  # the valid document it came from

    @property
    def parent(self) -> Path:
        return self.path[:-1]


@st.composite
def mutations(draw: st.DrawFn, base: dict[str, Any]) -> Mutation:
    document = fresh(base)
    kind = draw(st.sampled_from(["replace", "delete", "insert"]))
    if kind == "insert":
        containers = [
            p for p in [(), *places(document)] if isinstance(at(document, p), dict | list)
        ]
        parent = draw(st.sampled_from(containers))
        node = at(document, parent)
        value = fresh(draw(REPLACEMENTS))
        if isinstance(node, dict):
            key = draw(KEYS.filter(lambda k: k and k not in node))
            node[key] = value
            return Mutation(kind, document, (*parent, key), base)
        index = draw(st.integers(min_value=0, max_value=len(node)))
        node.insert(index, value)
        return Mutation(kind, document, (*parent, index), base)
    path = draw(st.sampled_from(places(document)))
    parent_node = at(document, path[:-1])
    if kind == "replace":
        parent_node[path[-1]] = fresh(draw(REPLACEMENTS))
    else:
        del parent_node[path[-1]]
    return Mutation(kind, document, path, base)


def model_at(rule: RuleDocument, path: Path) -> Any:
    node: Any = rule
    for piece in path:
        node = node[piece] if isinstance(piece, int) else getattr(node, piece)
    return node


def _budget_on_ads(problem: tuple[str, str], document: dict[str, Any]) -> bool:
    """The one check across parts of the document: change_budget on an ad-level rule is
    reported at scope.level, wherever the edit was."""
    field, message = problem
    scope = document.get("scope")
    level = scope.get("level") if isinstance(scope, dict) else None
    return field == "scope.level" and level == "ad" and "no budget" in message


@st.composite
def edits(draw: st.DrawFn) -> Mutation:
    return draw(mutations(draw(DOCUMENTS)))


def edit(kind: str, path: Path, value: Any = None) -> Mutation:
    """RULES.md's example with one edit (for explicit examples)."""
    document = fresh(EXAMPLE)
    parent = at(document, path[:-1])
    if kind == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return Mutation(kind, document, path, EXAMPLE)


@runs(500)
@example(edit("insert", ("scope", "notify"), True))  # reported as "scope"
@example(edit("replace", ("scope", "filters", 0, "value"), 5))  # "….value.str"
@given(edits())
def test_an_edited_rule_is_valid_or_the_error_names_the_edited_place(edit: Mutation) -> None:
    result = outcome(edit.document)
    if isinstance(result, RuleDocument):
        return
    edited = render(edit.parent)
    for problem in result.problems:
        assert within(problem[0], edited) or _budget_on_ads(problem, edit.document), (
            f"{edit.kind} at {render(edit.path)!r}, but the error is about {problem}"
        )
    if edit.kind != "insert" or not isinstance(edit.path[-1], str):
        return
    # A key the object at that place does not have is reported as itself.
    model = type(model_at(parse_rule(edit.before), edit.parent))
    key = edit.path[-1]
    switches_node = key in ("all", "any") and model in (rd.Condition, rd.All, rd.Any_)
    if key not in model.model_fields and not switches_node:
        fields = [field for field, _ in result.problems]
        assert render(edit.path) in fields, f"unknown field {key!r} reported as {fields}"


@st.composite
def many_edits(draw: st.DrawFn) -> dict[str, Any]:
    document = draw(DOCUMENTS)
    for _ in range(draw(st.integers(min_value=2, max_value=5))):
        if not places(document):
            break
        document = draw(mutations(document)).document
    return document


@runs(150)
@example(edit("replace", ("scope", "filters", 0, "value"), None).document)  # "….value.str"
@given(many_edits())
def test_many_edits_still_give_a_rule_or_a_field_message(document: dict[str, Any]) -> None:
    outcome(document)


# ---------------------------------------------------------- (c) round trips


@runs(200)
@given(valid_documents())
def test_every_rule_rules_md_allows_is_accepted_and_round_trips(document: dict[str, Any]) -> None:
    rule = outcome(document)
    assert isinstance(rule, RuleDocument), f"a valid rule was refused: {rule}"
    assert rule.name == document["name"].strip()
    assert rule.scope.level == document["scope"]["level"]
    assert len(rule.actions) == len(document["actions"])
    metrics = [p for p in places(document["conditions"]) if p[-1] == "metric"]
    assert len(rule.conditions_list()) == len([p for p in metrics if "value" not in p])


@runs(150)
@example("2.5")
@example("3.14159265358979323846")  # more digits than a float keeps
@example("1E+5000")  # more digits than Python turns into an int by default
@given(NUMBER_TEXT)
def test_numbers_written_as_decimal_strings_are_refused_at_their_path(number: str) -> None:
    """parse_rule takes numbers only as JSON numbers: "value": "2.5" is refused, naming
    the value's path, so the stored rule is never one re-read from text."""
    document = rules_md_example()
    document["conditions"]["all"][0]["value"] = number
    document["actions"][0]["max"] = number
    result = outcome(document)
    assert isinstance(result, RuleDocumentError), f"the text {number!r} was taken as a number"
    assert [field for field, _ in result.problems] == ["conditions.all[0].value", "actions[0].max"]
    for field, problem in result.problems:
        assert "written as a JSON number (not text)" in problem, f"{field}: {problem}"


def test_the_fixed_documents_are_valid_and_round_trip() -> None:
    for document in FIXED_DOCUMENTS:
        rule = outcome(document)
        assert isinstance(rule, RuleDocument), rule
