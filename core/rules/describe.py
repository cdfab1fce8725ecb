"""Rules and their verdicts in plain language, from the metric catalogue.

* `describe_rule(rule, currency)` — the whole rule in one sentence: "If ROAS over the
  last 7 days > 3 and profit over the last 7 days > 100.00 USD → raise the budget 25 %
  (at most 500.00 USD), every 6 hours · at most 10 actions a day · cooldown 1 day".
* `describe_condition(condition, currency)` — one condition, as in that sentence.
* `explain_condition(…)` — a judged condition, as the trace says it: "ROAS over the
  last 7 days is 0.45, not above 3".
* `describe_value_key("roas@last_7d")` → "ROAS, last 7 days" (a trace's value keys as
  column headings) and `format_value(metric, value, currency)` → "4.19", "1.47 %",
  "250.00 USD": numbers rounded as people read them.

Money is always shown with its currency; a rule that states none (and was given none)
shows its money values as "500 (account currency)".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.enums import Level
from core.money import decimals, format_money
from core.rules.document import (
    All,
    Any_,
    ChangeBudget,
    Condition,
    Duplicate,
    Notify,
    Pause,
    Reference,
    Resume,
    RuleDocument,
    Safety,
    Schedule,
)
from core.rules.metrics import METRICS, Metric, Unit
from core.rules.windows import Window

SYMBOLS = {">": ">", ">=": "≥", "<": "<", "<=": "≤", "=": "=", "!=": "≠"}
LEVEL_NOUNS = {Level.CAMPAIGN: "campaign", Level.ADSET: "ad set", Level.AD: "ad"}
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
DAY_ORDER = [*WEEKDAYS, "sat", "sun"]

# a condition's outcome in words: op → (when it held, when it did not)
_HELD = {
    ">": ("above", "not above"),
    ">=": ("at least", "below"),
    "<": ("below", "not below"),
    "<=": ("at most", "above"),
    "=": ("equal to", "not equal to"),
    "!=": ("other than", "equal to"),
}


# ------------------------------------------------------------------------ rules


def describe_rule(rule: RuleDocument, currency: str | None = None) -> str:
    """The rule in one sentence. `currency`: the one its money values are in when the
    document does not state it (the currency its scoped accounts share)."""
    currency = rule.currency or currency
    level = rule.scope.level
    actions = ", then ".join(describe_action(a, level, currency) for a in rule.actions)
    text = (
        f"If {_node(rule.conditions, currency, top=True)} → {actions}, "
        f"{describe_schedule(rule.schedule)}"
    )
    first_window = next((c.window for c in rule.conditions_list() if c.window), None)
    return " · ".join([text, *_safety(rule.safety, currency, first_window)])


def describe_condition(condition: Condition, currency: str | None = None) -> str:
    """ "ROAS over the last 7 days > 3", "cost per purchase over the last 3 days < 0.8 ×
    its cost per purchase over the last 30 days", "CTR today between 1 % and 2 %"."""
    metric = METRICS[condition.metric]
    subject = _subject(metric, condition.window)
    value = condition.value
    if isinstance(value, Reference):
        return f"{subject} {SYMBOLS[condition.op]} {_reference(value)}"
    if isinstance(value, list):
        low, high = (_threshold(metric, v, currency) for v in value)
        word = "between" if condition.op == "between" else "not between"
        return f"{subject} {word} {low} and {high}"
    return f"{subject} {SYMBOLS[condition.op]} {_threshold(metric, value, currency)}"


def describe_action(action: Any, level: Level = Level.CAMPAIGN, currency: str | None = None) -> str:
    noun = LEVEL_NOUNS[level]
    if isinstance(action, Pause):
        return f"pause the {noun}"
    if isinstance(action, Resume):
        return f"resume the {noun}"
    if isinstance(action, Duplicate):
        return f"copy the {noun} (paused, its name + “{action.name_suffix}”)"
    if isinstance(action, Notify):
        return f"notify “{action.message}”" if action.message else "send a notification"
    if isinstance(action, ChangeBudget):
        return _budget_action(action, currency)
    return str(getattr(action, "type", action))


def describe_schedule(schedule: Schedule) -> str:
    text = f"every {_duration(schedule.every_minutes, one='')}"
    days = [d for d in DAY_ORDER if d in (schedule.days or [])]
    if days and days != DAY_ORDER:
        shown = (
            "weekdays"
            if days == WEEKDAYS
            else "weekends"
            if days == ["sat", "sun"]
            else ", ".join(d.capitalize() for d in days)
        )
        text += f" on {shown}"
    if schedule.hours:
        start, end = schedule.hours
        text += f" from {start:02d}:00 to {end:02d}:00 (the account's time)"
    return text


def _safety(safety: Safety, currency: str | None, window: str | None) -> list[str]:
    tail = []
    if safety.dry_run:
        tail.append("dry run (changes nothing)")
    if safety.require_approval:
        tail.append("each action waits for approval")
    plural = "s" if safety.max_daily_actions != 1 else ""
    tail.append(f"at most {safety.max_daily_actions} action{plural} a day per account")
    tail.append(
        f"cooldown {_duration(safety.cooldown_minutes)}"
        if safety.cooldown_minutes
        else "no cooldown"
    )
    least = []
    if safety.min_spend is not None:
        least.append(f"{_money(safety.min_spend, currency)} spent")
    if safety.min_impressions is not None:
        least.append(f"{safety.min_impressions:,} impressions")
    if least:
        over = Window.parse(window).words if window else ""
        tail.append(f"only with at least {' and '.join(least)} {over}".strip())
    return tail


def _node(node: All | Any_ | Condition, currency: str | None, *, top: bool = False) -> str:
    """A condition tree: "a and b", "a or b"; a group inside another in brackets."""
    if isinstance(node, Condition):
        return describe_condition(node, currency)
    children, word = (node.all, " and ") if isinstance(node, All) else (node.any, " or ")
    text = word.join(_node(child, currency) for child in children)
    return text if top or len(children) == 1 else f"({text})"


def _budget_action(action: ChangeBudget, currency: str | None) -> str:
    budget = {"daily": "the daily budget", "lifetime": "the lifetime budget"}.get(
        action.budget or "", "the budget"
    )
    if action.by_percent is not None:
        verb = "raise" if action.by_percent > 0 else "lower"
        text = f"{verb} {budget} {_number(abs(action.by_percent))} %"
    elif action.by_amount is not None:
        verb = "raise" if action.by_amount > 0 else "lower"
        text = f"{verb} {budget} by {_money(abs(action.by_amount), currency)}"
    else:
        assert action.to is not None
        text = f"set {budget} to {_money(action.to, currency)}"
    bounds = []
    if action.min is not None:
        bounds.append(f"at least {_money(action.min, currency)}")
    if action.max is not None:
        bounds.append(f"at most {_money(action.max, currency)}")
    elif (action.by_percent or action.by_amount or 0) > 0:
        bounds.append("at most twice the budget")
    return text + (f" ({', '.join(bounds)})" if bounds else "")


# --------------------------------------------------------------------- verdicts


def counts_text(
    acted: int, queued: int, would: int, skipped: int, *, mode: str | None = None
) -> str:
    """What a run did, in words: "2 acted", "2 queued for approval", "2 would act (dry
    run)", "1 skipped" — only the counts that are not zero ("nothing to do"), except the
    one a run of its `mode` is about (`dry_run`, `approval`), said even at 0."""
    parts = [
        f"{acted} acted" if acted else "",
        f"{queued} queued for approval" if queued or mode == "approval" else "",
        f"{would} would act (dry run)" if would or mode == "dry_run" else "",
        f"{skipped} skipped" if skipped else "",
    ]
    return ", ".join(p for p in parts if p) or "nothing to do"


def explain_condition(
    condition: Condition,
    *,
    actual: Decimal | None,
    expected: Any,
    held: bool,
    undefined: str | None,
    currency: str | None,
) -> str:
    """A judged condition in words: "ROAS over the last 7 days is 0.45, not above 3";
    "… is undefined (nothing spent)"."""
    if undefined:
        return undefined
    metric = METRICS[condition.metric]
    subject = _subject(metric, condition.window)
    verb = "are" if metric.plural else "is"
    value = condition.value
    if isinstance(value, list):
        low, high = (_threshold(metric, v, currency) for v in value)
        inside = held if condition.op == "between" else not held
        relation = f"{'between' if inside else 'outside'} {low} and {high}"
        return f"{subject} {verb} {format_value(metric.name, actual, currency)}, {relation}"
    if isinstance(value, Reference):
        base = format_value(value.metric, expected, currency)
        target = f"{_reference(value)} ({base})"
        shown = format_value(metric.name, actual, currency, unlike=expected)
    else:
        target = _threshold(metric, value, currency)
        shown = format_value(metric.name, actual, currency, unlike=value)
    relation = _HELD[condition.op][0 if held else 1]
    return f"{subject} {verb} {shown}, {relation} {target}"


def undefined_text(metric_name: str, window: str | None) -> str:
    """Why a value could not be judged: "ROAS over the last 7 days is undefined (nothing
    spent)", "daily budget is undefined (it has none)"."""
    metric = METRICS[metric_name]
    why = "it has none" if not metric.needs_window else metric.undefined_because
    return f"{_subject(metric, window)} is undefined ({why})"


def undefined_reference_text(reference: Reference) -> str:
    metric = METRICS[reference.metric]
    return f"{_reference(reference)} is undefined ({metric.undefined_because})"


def too_little_data(
    metric_name: str, window: str, actual: Decimal | None, least: Any, currency: str | None
) -> str:
    """The note of a candidate held back by min_spend / min_impressions."""
    metric = METRICS[metric_name]
    verb = "are" if metric.plural else "is"
    shown = format_value(metric_name, actual or Decimal(0), currency)
    need = format_value(metric_name, Decimal(least), currency)
    return f"{_subject(metric, window)} {verb} {shown}, below the rule's minimum of {need}"


def describe_value_key(key: str) -> str:
    """A trace's value key as a heading: "roas@last_7d" → "ROAS, last 7 days",
    "daily_budget" → "Daily budget" (an unknown key is returned as it is)."""
    name, _, window = key.partition("@")
    metric = METRICS.get(name)
    if metric is None:
        return key
    if not window:
        return metric.label
    try:
        return f"{metric.label}, {Window.parse(window).short}"
    except ValueError:
        return key


def describe_values(values: dict[str, Any], currency: str | None) -> dict[str, str]:
    """A candidate's values ({"roas@last_7d": Decimal | str | None}) as heading → text."""
    return {
        describe_value_key(key): format_value(key.partition("@")[0], value, currency)
        for key, value in values.items()
    }


def format_value(
    metric_name: str, value: Any, currency: str | None = None, *, unlike: Any = None
) -> str:
    """A metric's value as people read it: money with its currency (its decimals),
    ratios with 2 decimals, percentages with %, counts whole with separators; "—" when
    undefined. With `unlike` (the threshold it was compared with), more decimals are
    shown where the usual ones would make a different value look equal to it."""
    if value is None:
        return "—"
    number = Decimal(str(value))
    metric = METRICS.get(metric_name)
    unit = metric.unit if metric else Unit.RATIO
    if unit == Unit.MONEY and currency:
        places = decimals(currency)
    elif unit == Unit.COUNT and number == number.to_integral_value():
        places = 0
    else:
        places = 2
    if isinstance(unlike, (int, float, Decimal)) and not isinstance(unlike, bool):
        target = Decimal(str(unlike))
        while (
            number != target
            and places < 10
            and _rounded(number, places) == _rounded(target, places)
        ):
            places += 1
    text = f"{number:,.{places}f}"
    if unit == Unit.PERCENT:
        return f"{text} %"
    if unit == Unit.MONEY:
        return f"{text} {currency}" if currency else f"{text} (account currency)"
    return text


def _rounded(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places))


# ---------------------------------------------------------------------- pieces


def _subject(metric: Metric, window: str | None) -> str:
    return metric.words if window is None else f"{metric.words} {Window.parse(window).words}"


def _reference(reference: Reference) -> str:
    metric = METRICS[reference.metric]
    times = "" if reference.times == 1 else f"{_number(reference.times)} × "
    return f"{times}its {_subject(metric, reference.window)}"


def _threshold(metric: Metric, value: Decimal, currency: str | None) -> str:
    """A number from the rule, as written; money with its currency."""
    if metric.unit == Unit.MONEY:
        return _money(value, currency)
    if metric.unit == Unit.PERCENT:
        return f"{_number(value)} %"
    return _number(value)


def _money(amount: Decimal, currency: str | None) -> str:
    if currency:
        try:
            return format_money(Decimal(amount), currency)
        except ValueError:
            pass
    return f"{_number(amount)} (account currency)"


def _number(value: Decimal) -> str:
    return f"{Decimal(value).normalize():,f}"


def _duration(minutes: int, *, one: str = "1 ") -> str:
    """360 → "6 hours", 60 → "hour" (with one="") or "1 hour", 1440 → "1 day"."""
    for size, unit in ((1440, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            count = minutes // size
            return f"{one}{unit}" if count == 1 else f"{count} {unit}s"
    return f"{minutes} minutes"
