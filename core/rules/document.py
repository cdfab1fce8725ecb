"""The rule document (RULES.md) as a typed model: Rex's public interface.

`parse_rule(data)` turns JSON (text or decoded) into a `RuleDocument` or raises
`RuleDocumentError` whose `problems` each name the field by its path in the document
and say how to fix it, e.g. `conditions.all[1].value: between needs [lo, hi] with
lo ≤ hi`. `rule_json_schema()` is the published JSON Schema (docs/rule.schema.json).

A rule's money values (a threshold on a money metric, a budget amount or bound,
`min_spend`) are all in one currency: the document's `currency`, or — for a document
that does not state it — the currency its scoped accounts share. `check_rule_currency`
settles that when a rule is saved (it fills the currency in, or refuses a scope that
mixes currencies); `currency_in_scope` is the same judgement at run time, where an
account billing in another currency is left out with the reason.
"""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.enums import DOCUMENT_STATUSES, DocumentStatus, Level, RuleStatus
from core.errors import InputError
from core.ids import normalise_account_id
from core.money import MoneyError, check_currency
from core.rules.metrics import METRICS, Unit
from core.rules.windows import Window, WindowError

SCHEMA_VERSION: Literal[1] = 1
COMPARISONS = (">", ">=", "<", "<=", "=", "!=")
RANGE_OPS = ("between", "not_between")
FILTER_FIELDS = ("id", "name", "effective_status", "campaign_id", "adset_id")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RuleDocumentError(InputError):
    """A rule document that does not validate; `problems` lists (field path, fix)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        first_field, first_problem = problems[0]
        super().__init__(first_field, first_problem)
        self.args = ("\n".join(f"{path}: {problem}" for path, problem in problems),)

    def __str__(self) -> str:
        return self.args[0]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _json_number(value: Decimal) -> int | float:
    """Numbers leave as JSON numbers (3, 0.8), not strings; they were parsed from text."""
    return int(value) if value == value.to_integral_value() else float(value)


def _json_number_in(value: Any) -> Any:
    """Numbers come in as JSON numbers: text that looks like one is refused, so the rule
    stored is the rule validated (a string of 40 digits would not survive as a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError("give a number such as 3 or 0.8, written as a JSON number (not text)")
    if not Decimal(value).is_finite() or abs(Decimal(value)) >= NUMBER_LIMIT:
        raise ValueError(f"give a finite number below {NUMBER_LIMIT:,}")
    return value


NUMBER_LIMIT = 10**15
Number = Annotated[
    Decimal,
    BeforeValidator(_json_number_in),
    Field(allow_inf_nan=False),
    PlainSerializer(_json_number, when_used="json"),
]


def _by_value(members: tuple[StrEnum, ...]) -> BeforeValidator:
    """Levels and statuses: JSON holds the value ("adset"), the document keeps the member.
    A value that is not one of `members` is refused naming the values (a `Literal` of
    members alone would name them `<Level.AD: 'ad'>`); the `Literal` of members each field
    is typed with keeps the published schema an inline list of the strings."""
    by_value = {member.value: member for member in members}
    quoted = [f"'{value}'" for value in by_value]
    expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}"

    def member(value: Any) -> StrEnum:
        if isinstance(value, str) and value in by_value:
            return by_value[value]
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": expected}
        )

    return BeforeValidator(member)


LevelField = Annotated[Literal[Level.CAMPAIGN, Level.ADSET, Level.AD], _by_value(tuple(Level))]
StatusField = Annotated[DocumentStatus, _by_value(DOCUMENT_STATUSES)]


# ------------------------------------------------------------------------- scope


class Filter(_Strict):
    field: Literal["id", "name", "effective_status", "campaign_id", "adset_id"]
    op: Literal["=", "!=", "in", "not_in", "contains", "not_contains"]
    value: str | list[str]

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        many = self.op in ("in", "not_in")
        if many and not (isinstance(self.value, list) and self.value):
            raise ValueError(f"@value '{self.op}' needs a non-empty list of strings")
        if not many and not isinstance(self.value, str):
            raise ValueError(f"@value '{self.op}' needs one string")
        return self


class Scope(_Strict):
    account_ids: list[str] = Field(default_factory=list)
    level: LevelField
    filters: list[Filter] = Field(default_factory=list)

    @field_validator("account_ids")
    @classmethod
    def _account_ids(cls, values: list[str]) -> list[str]:
        try:
            return sorted({normalise_account_id(v) for v in values})
        except InputError as error:
            raise ValueError(error.problem) from None


# -------------------------------------------------------------------- conditions


class Reference(_Strict):
    """The same entity's metric over another window, times a factor (its baseline)."""

    metric: str
    window: str
    times: Number = Decimal(1)

    @field_validator("metric")
    @classmethod
    def _metric(cls, name: str) -> str:
        return _check_metric(name, windowed=True)

    @field_validator("window")
    @classmethod
    def _window(cls, window: str) -> str:
        return _check_window(window)


def _value_kind(value: Any) -> str:
    if isinstance(value, (dict, Reference)):
        return "reference"
    return "range" if isinstance(value, list) else "number"


Value = Annotated[
    Annotated[Number, Tag("number")]
    | Annotated[list[Number], Tag("range")]
    | Annotated[Reference, Tag("reference")],
    Discriminator(_value_kind),
]


class Condition(_Strict):
    metric: str
    window: str | None = None
    op: Literal[">", ">=", "<", "<=", "=", "!=", "between", "not_between"]
    value: Value

    @field_validator("metric")
    @classmethod
    def _metric(cls, name: str) -> str:
        return _check_metric(name, windowed=None)

    @field_validator("window")
    @classmethod
    def _window(cls, window: str | None) -> str | None:
        return None if window is None else _check_window(window)

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        metric = METRICS[self.metric]
        if metric.needs_window and self.window is None:
            raise ValueError(f"@window '{self.metric}' needs a window, e.g. \"last_7d\"")
        if not metric.needs_window and self.window is not None:
            raise ValueError(f"@window '{self.metric}' is a current value: remove the window")
        if self.op in RANGE_OPS:
            value = self.value
            if not (isinstance(value, list) and len(value) == 2 and value[0] <= value[1]):
                raise ValueError(f"@value {self.op} needs [lo, hi] with lo ≤ hi")
        elif isinstance(self.value, list):
            raise ValueError(f"@value '{self.op}' compares with one number or a reference")
        return self


class All(_Strict):
    all: list[Node] = Field(min_length=1)


class Any_(_Strict):
    any: list[Node] = Field(min_length=1)


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "all" if "all" in value else "any" if "any" in value else "condition"
    return "all" if isinstance(value, All) else "any" if isinstance(value, Any_) else "condition"


Node = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[Any_, Tag("any")]
    | Annotated[Condition, Tag("condition")],
    Discriminator(_node_kind),
]


# ----------------------------------------------------------------------- actions


class Pause(_Strict):
    type: Literal["pause"]


class Resume(_Strict):
    type: Literal["resume"]


# An increase is where a typo costs money: +1000 for +10 would multiply a budget by 11 at
# every run. Without a `max` an increase may at most double the budget per action; with
# one it may go up to +1000 % (the `max` then bounds the spend; more is a typo, and `to`
# sets a budget outright). Decreases only lower spend (never below Meta's minimum or one
# minor unit), so they keep their range (-100, 0).
PERCENT_WITHOUT_MAX = 100
PERCENT_LIMIT = 1000


class ChangeBudget(_Strict):
    type: Literal["change_budget"]
    by_percent: Number | None = Field(
        default=None,
        description="Signed percent, above -100; an increase above "
        f"+{PERCENT_WITHOUT_MAX} needs a max, and +{PERCENT_LIMIT} is the most.",
        json_schema_extra={"exclusiveMinimum": -100, "maximum": PERCENT_LIMIT},
    )
    by_amount: Number | None = None
    to: Number | None = Field(default=None, gt=0)
    min: Number | None = Field(default=None, gt=0)
    max: Number | None = Field(default=None, gt=0)
    budget: Literal["daily", "lifetime"] | None = None

    @model_validator(mode="after")
    def _one_change(self) -> ChangeBudget:
        given = [n for n in ("by_percent", "by_amount", "to") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of by_percent, by_amount or to"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.by_percent is not None and (self.by_percent == 0 or self.by_percent <= -100):
            raise ValueError("@by_percent must be non-zero and above -100")
        if self.by_percent is not None and self.by_percent > PERCENT_LIMIT:
            raise ValueError(
                f"@by_percent at most +{PERCENT_LIMIT} (an 11× budget) per action; for a "
                "fixed budget use `to`"
            )
        if self.by_percent is not None and self.by_percent > PERCENT_WITHOUT_MAX and not self.max:
            raise ValueError(
                f"@by_percent above +{PERCENT_WITHOUT_MAX} needs a max (the highest budget "
                'this rule may set): add "max", or increase by less'
            )
        if self.by_amount == 0:
            raise ValueError("@by_amount must be non-zero")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("@min must not be above max")
        return self


class Duplicate(_Strict):
    type: Literal["duplicate"]
    name_suffix: str = Field(default=" - Copy", max_length=100)


class Notify(_Strict):
    type: Literal["notify"]
    message: str | None = Field(default=None, max_length=2000)


Action = Annotated[Pause | Resume | ChangeBudget | Duplicate | Notify, Field(discriminator="type")]


# ---------------------------------------------------------------- schedule, safety


class Schedule(_Strict):
    every_minutes: int = Field(default=60, ge=1, le=10_080)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    hours: tuple[int, int] | None = None

    @field_validator("hours")
    @classmethod
    def _hours(cls, hours: tuple[int, int] | None) -> tuple[int, int] | None:
        if hours is not None and not 0 <= hours[0] < hours[1] <= 24:
            raise ValueError("hours is [start, end) with 0 ≤ start < end ≤ 24, e.g. [8, 20]")
        return hours


class Safety(_Strict):
    max_daily_actions: int = Field(default=10, ge=1, le=10_000)
    cooldown_minutes: int = Field(default=1440, ge=0, le=525_600)
    dry_run: bool = False
    require_approval: bool = False
    min_spend: Number | None = Field(default=None, ge=0)
    min_impressions: int | None = Field(default=None, ge=0)


# ---------------------------------------------------------------------- document


class RuleDocument(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(min_length=1, max_length=200)
    status: StatusField = RuleStatus.ACTIVE
    currency: str | None = Field(
        default=None,
        description="ISO 4217 code (USD, JPY …) of every money value in the rule: money "
        "thresholds, budget amounts and bounds, min_spend. Accounts billing in another "
        "currency are left out. Without it, the currency the scoped accounts share.",
        json_schema_extra={"pattern": "^[A-Za-z]{3}$"},
    )
    scope: Scope
    conditions: Node
    actions: list[Action] = Field(min_length=1, max_length=10)
    schedule: Schedule = Field(default_factory=Schedule)
    safety: Safety = Field(default_factory=Safety)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        name = name.strip()
        if not name:
            raise ValueError("give the rule a name")
        return name

    @field_validator("currency")
    @classmethod
    def _currency(cls, currency: str | None) -> str | None:
        if currency is None:
            return None
        try:
            return check_currency(currency)
        except MoneyError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _actions_fit_level(self) -> RuleDocument:
        for action in self.actions:
            if isinstance(action, ChangeBudget) and self.scope.level == Level.AD:
                raise ValueError(
                    "@scope.level ads have no budget: change_budget needs campaign or adset"
                )
        return self

    def to_json(self) -> dict[str, Any]:
        return json.loads(self.model_dump_json(exclude_none=True))

    def conditions_list(self) -> list[Condition]:
        """Every condition in the tree, depth first."""
        found: list[Condition] = []

        def walk(node: Any) -> None:
            if isinstance(node, Condition):
                found.append(node)
            else:
                for child in node.all if isinstance(node, All) else node.any:
                    walk(child)

        walk(self.conditions)
        return found


All.model_rebuild()
Any_.model_rebuild()


# ---------------------------------------------------------------------- currency


def money_values(rule: RuleDocument) -> list[str]:
    """The rule's money values as written ("profit > 100", "max 500", "min_spend 50"):
    the values that mean nothing without a currency. A baseline reference ("0.8 × its
    30-day CPA"), a percent change and zero ("spend > 0") are in no currency."""
    found: list[str] = []
    for condition in rule.conditions_list():
        value = condition.value
        if (
            METRICS[condition.metric].unit == Unit.MONEY
            and not isinstance(value, Reference)
            and any(v != 0 for v in (value if isinstance(value, list) else [value]))
        ):
            shown = (
                f"[{_shown(value[0])}, {_shown(value[1])}]"
                if isinstance(value, list)
                else _shown(value)
            )
            found.append(f"{condition.metric} {condition.op} {shown}")
    for action in rule.actions:
        if isinstance(action, ChangeBudget):
            for name in ("by_amount", "to", "min", "max"):
                amount = getattr(action, name)
                if amount is not None:
                    found.append(f"{name} {_shown(amount)}")
    if rule.safety.min_spend:
        found.append(f"min_spend {_shown(rule.safety.min_spend)}")
    return found


def _shown(value: Decimal) -> str:
    return format(value.normalize(), "f")


def currency_in_scope(
    rule: RuleDocument, account_currencies: dict[str, str]
) -> tuple[str | None, dict[str, str]]:
    """The currency of the rule's money values, and the accounts left out for it
    (external id → why), given the currencies of the accounts in its scope.

    A rule without money values is in no currency and leaves no account out. One that
    states its currency leaves out the accounts billing in another. One that does not
    is in the currency its accounts share; if they bill in several, every account is
    left out — Rex never guesses which currency "max 500" meant.
    """
    accounts = _in_scope(rule, account_currencies)
    values = money_values(rule)
    if not values:
        return rule.currency, {}
    shown = _values_text(values)
    if rule.currency is not None:
        return rule.currency, {
            account: (
                f"{account} bills in {currency}, but this rule's money values ({shown}) are "
                f"in {rule.currency}: left out"
            )
            for account, currency in sorted(accounts.items())
            if currency != rule.currency
        }
    found = sorted(set(accounts.values()))
    if len(found) <= 1:
        return (found[0] if found else None), {}
    problem = _mixed(rule, accounts, shown)
    return None, dict.fromkeys(sorted(accounts), problem)


def check_rule_currency(rule: RuleDocument, account_currencies: dict[str, str]) -> RuleDocument:
    """The rule as it is saved: with its currency filled in from its scoped accounts when
    it has money values and states none; refused (RuleDocumentError naming the field)
    when its scope mixes currencies, or names an account in another currency than the
    one it states.

    `account_currencies`: external id → currency of the connected accounts in the
    rule's scope — those of `scope.account_ids`, or every connected account when the
    rule has none (others in the mapping are ignored)."""
    currency, left_out = currency_in_scope(rule, account_currencies)
    if left_out and rule.currency is None:
        problem = next(iter(left_out.values()))
        raise RuleDocumentError([("currency", problem)])
    if left_out and rule.scope.account_ids:
        raise RuleDocumentError(
            [
                (
                    f"scope.account_ids[{index}]",
                    f"{account} bills in {account_currencies[account]}, but this rule's "
                    f"money values ({_values_text(money_values(rule))}) are in "
                    f"{rule.currency}: remove it, or make a rule in "
                    f"{account_currencies[account]} for it",
                )
                for index, account in enumerate(rule.scope.account_ids)
                if account in left_out
            ]
        )
    if rule.currency is None and currency is not None:
        return rule.model_copy(update={"currency": currency})
    return rule


def _in_scope(rule: RuleDocument, account_currencies: dict[str, str]) -> dict[str, str]:
    if not rule.scope.account_ids:
        return dict(account_currencies)
    return {a: c for a, c in account_currencies.items() if a in rule.scope.account_ids}


def _values_text(values: list[str]) -> str:
    return ", ".join(values[:3]) + (f" and {len(values) - 3} more" if len(values) > 3 else "")


def _mixed(rule: RuleDocument, accounts: dict[str, str], shown: str) -> str:
    by_currency: dict[str, list[str]] = {}
    for account, currency in sorted(accounts.items()):
        by_currency.setdefault(currency, []).append(account)
    parts = []
    for index, (currency, ids) in enumerate(by_currency.items()):  # in account order
        verb = ("bills" if len(ids) == 1 else "bill") + " " if index == 0 else ""
        parts.append(f"{', '.join(ids)} {verb}in {currency}")
    listed = ", ".join(parts[:-1]) + f" and {parts[-1]}"
    example = next(iter(by_currency))
    fix = (
        "scope it to accounts of one currency (one rule per currency)"
        if rule.scope.account_ids
        else "scope it to accounts of one currency, or state the currency its values are "
        f'in ("currency": "{example}"): accounts billing in another are then left out'
    )
    return f"this rule's money values ({shown}) need one currency, but {listed}: {fix}"


# ------------------------------------------------------------------- validation


TOO_DEEP = ("document", "nested too deeply: conditions need only a few levels of all / any")


def parse_rule(data: str | bytes | dict[str, Any]) -> RuleDocument:
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as error:
            raise RuleDocumentError([("document", f"not valid JSON ({error})")]) from None
        except RecursionError:
            raise RuleDocumentError([TOO_DEEP]) from None
    if not isinstance(data, dict):
        raise RuleDocumentError([("document", "a rule is a JSON object {…}")])
    try:
        rule = RuleDocument.model_validate(data)
    except ValidationError as error:
        problems = _problems(error, data)
        nul = _nul_problem(data)
        if nul is not None and not any(_inside(nul[0], path) for path, _ in problems):
            problems.append(nul)  # not already in a field refused as a whole
        raise RuleDocumentError(problems) from None
    except RecursionError:
        raise RuleDocumentError([TOO_DEEP]) from None
    nul = _nul_problem(data)
    if nul is not None:
        raise RuleDocumentError([nul])
    return rule


def rule_json_schema() -> dict[str, Any]:
    schema = RuleDocument.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Rex rule document"
    return schema


VALUE_HELP = "a number, [lo, hi] for between, or a reference {metric, window, times}"


def _problems(error: ValidationError, data: Any) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        named = item["type"] in ("missing", "extra_forbidden")
        path = _path(item["loc"], data, names_a_field=named)
        message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if message.startswith("@"):  # a validator naming the field it is about
            field, _, message = message[1:].partition(" ")
            path = field if field.startswith("scope.") else f"{path}.{field}"
        if item["type"] == "extra_forbidden":
            message = "unknown field: remove it (RULES.md lists the fields)"
        elif item["type"] == "missing":
            message = "required: add it"
        elif item["type"] == "union_tag_invalid" and path.startswith("actions"):
            message = "unknown action type; use pause, resume, change_budget, duplicate or notify"
        elif _is_type_error(item["type"]) and ".value." in f"{path}." and "conditions" in path:
            path, message = path[: path.index(".value") + 6], f"give {VALUE_HELP}"
        if (path, message) not in problems:
            problems.append((path, message))
    return problems or [("document", str(error))]


def _nul_problem(data: dict[str, Any]) -> tuple[str, str] | None:
    path = _nul_path(data)
    if path is None:
        return None
    return path, "contains a NUL character (\\u0000), which no text may hold: remove it"


def _inside(path: str, outer: str) -> bool:
    return outer == "document" or path == outer or path.startswith((f"{outer}.", f"{outer}["))


def _nul_path(node: Any, path: str = "") -> str | None:
    """The path of the first key or string holding U+0000 (PostgreSQL refuses it in text
    and JSON, SQLite would keep it: refused here so both databases store the same rules)."""
    if isinstance(node, str):
        return (path.lstrip(".") or "document") if "\x00" in node else None
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{_key(str(key))}"
            if "\x00" in str(key):
                return here.lstrip(".")
            found = _nul_path(value, here)
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _is_type_error(kind: str) -> bool:
    return kind.endswith("_type") or kind.endswith("_parsing")


def _path(loc: tuple[Any, ...], data: Any, *, names_a_field: bool = False) -> str:
    """The field's path in the document as written: pydantic's location walked through
    the input, so that its names for union branches and wrappers (`number`, `str`,
    `function-after[…]`) are left out and every key that is in the document is kept;
    with `names_a_field`, the last piece is a key missing from (or unknown to) its
    object and is kept too."""
    parts: list[str] = []
    node = data
    for index, piece in enumerate(loc):
        last = index == len(loc) - 1
        following = None if last else loc[index + 1]
        if _fits(node, piece) and not (
            # a branch name that is also a key here ({"any": …} chose the branch "any"):
            # it is a key only if what follows it continues inside it
            following is not None
            and not _fits(_step(node, piece), following)
            and (
                _fits(node, following)
                or (
                    index + 1 == len(loc) - 1
                    and names_a_field
                    and isinstance(following, str)
                    and not isinstance(_step(node, piece), dict)
                )
            )
        ):
            parts.append(f"[{piece}]" if isinstance(piece, int) else f".{_key(piece)}")
            node = _step(node, piece)
        elif names_a_field and last and isinstance(piece, str) and isinstance(node, dict):
            parts.append(f".{_key(piece)}")  # a field missing from an object that is there
        elif names_a_field and last and isinstance(piece, int) and isinstance(node, list):
            parts.append(f"[{piece}]")  # an item missing from a list that is there
        # anything else is pydantic's own name for a branch or a wrapper: not a field
    return "".join(parts).lstrip(".") or "document"


def _fits(node: Any, piece: Any) -> bool:
    if isinstance(piece, int) and isinstance(node, list):
        return -len(node) <= piece < len(node)
    return isinstance(piece, str) and isinstance(node, dict) and piece in node


def _step(node: Any, piece: Any) -> Any:
    return node[piece]


def _key(name: str) -> str:
    return name if name.isidentifier() else json.dumps(name)


def _check_metric(name: str, *, windowed: bool | None) -> str:
    if name not in METRICS:
        known = ", ".join(METRICS)
        raise ValueError(f"unknown metric {name!r}; use one of {known}")
    if windowed and not METRICS[name].needs_window:
        raise ValueError(f"'{name}' has no window and cannot be a baseline reference")
    return name


def _check_window(window: str) -> str:
    try:
        return Window.parse(window).name
    except WindowError as error:
        raise ValueError(str(error)) from None
