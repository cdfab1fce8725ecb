"""The new budget for a `change_budget` action, in the account currency's minor unit.

RULES.md: exactly one of `by_percent` (signed), `by_amount` (signed, major units) or
`to`; optional `min` / `max`. An increase stops at `max` and never lowers a budget that
is already above it; a decrease stops at `min` and never raises one already below it;
`to` is clamped into [`min`, `max`]. Meta's own minimum for the account is a floor too.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from core.money import format_money, from_minor, to_minor
from core.rules.document import ChangeBudget


@dataclass(frozen=True)
class BudgetChange:
    kind: str  # daily | lifetime
    old_minor: int
    new_minor: int
    note: str | None = None  # which bound applied

    @property
    def changes(self) -> bool:
        return self.new_minor != self.old_minor


class BudgetNotApplicable(Exception):
    """The entity has no budget this action can change; the message says why."""


def budget_kind(action: ChangeBudget, daily_minor: int | None, lifetime_minor: int | None) -> str:
    if action.budget is not None:
        if (daily_minor if action.budget == "daily" else lifetime_minor) is None:
            raise BudgetNotApplicable(f"it has no {action.budget} budget")
        return action.budget
    if daily_minor is not None:
        return "daily"
    if lifetime_minor is not None:
        return "lifetime"
    raise BudgetNotApplicable("it has no budget of its own")


def new_budget(
    action: ChangeBudget,
    *,
    currency: str,
    daily_minor: int | None,
    lifetime_minor: int | None,
    meta_minimum_minor: int | None = None,
) -> BudgetChange:
    kind = budget_kind(action, daily_minor, lifetime_minor)
    old = daily_minor if kind == "daily" else lifetime_minor
    assert old is not None
    low = None if action.min is None else to_minor(action.min, currency, exact=False)
    high = None if action.max is None else to_minor(action.max, currency, exact=False)

    if action.to is not None:
        target = to_minor(action.to, currency, exact=False)
        new, note = _clamp(target, low, high)
    else:
        if action.by_percent is not None:
            raw = Decimal(old) * (1 + action.by_percent / 100)
        else:
            raw = Decimal(old) + to_minor(action.by_amount, currency, exact=False)  # type: ignore[arg-type]
        new = int(raw.to_integral_value(rounding=ROUND_HALF_EVEN))
        note = None
        if new > old and high is not None and new > high:
            new, note = max(old, high), "stopped at max"
        elif new < old and low is not None and new < low:
            new, note = min(old, low), "stopped at min"

    if meta_minimum_minor and new < meta_minimum_minor and new != old:
        new = meta_minimum_minor if old >= meta_minimum_minor else old
        minimum = format_money(from_minor(meta_minimum_minor, currency), currency)
        note = f"Meta's minimum is {minimum}"
    return BudgetChange(kind=kind, old_minor=old, new_minor=new, note=note)


def _clamp(value: int, low: int | None, high: int | None) -> tuple[int, str | None]:
    if low is not None and value < low:
        return low, "raised to min"
    if high is not None and value > high:
        return high, "lowered to max"
    return value, None
