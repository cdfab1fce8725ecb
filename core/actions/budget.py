"""The new budget for a `change_budget` action, in the account currency's minor unit.

RULES.md: exactly one of `by_percent` (signed), `by_amount` (signed, major units) or
`to`; optional `min` / `max`. An increase stops at `max` and never lowers a budget that
is already above it; a decrease stops at `min` and never raises one already below it;
`to` is clamped into [`min`, `max`]. Without a `max`, an increase at most doubles the
budget (by_percent above +100 needs a max; a `by_amount` beyond it stops there).
Bounds finer than the currency's unit round inward. Meta's own minimum for the account
is a floor too, and in any case one minor unit; when that floor is above the rule's
`max`, nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Literal

from core.errors import RexError
from core.money import format_minor, offset, to_minor
from core.rules.document import ChangeBudget


@dataclass(frozen=True)
class NewBudget:
    kind: Literal["daily", "lifetime"]
    old_minor: int
    new_minor: int
    note: str | None = None  # which bound applied

    @property
    def changes(self) -> bool:
        return self.new_minor != self.old_minor


class BudgetNotApplicable(RexError):
    """The entity has no budget this action can change; the message says why."""


def budget_kind(
    action: ChangeBudget, daily_minor: int | None, lifetime_minor: int | None
) -> Literal["daily", "lifetime"]:
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
) -> NewBudget:
    """The new budget. When nothing changes, `note` says why, naming the true cause
    (already at or beyond the rule's bound, Meta's minimum, a change smaller than the
    currency's unit); when a bound stopped the change, which one."""
    kind = budget_kind(action, daily_minor, lifetime_minor)
    old = daily_minor if kind == "daily" else lifetime_minor
    assert old is not None

    def money(minor: int) -> str:
        return format_minor(minor, currency)

    # Bounds finer than the currency's unit round inward: never past what the rule says.
    low = None if action.min is None else _whole(action.min, currency, ROUND_CEILING)
    high = None if action.max is None else _whole(action.max, currency, ROUND_FLOOR)
    if low is not None and high is not None and low > high:
        return NewBudget(kind, old, old, f"no whole amount of {currency} lies in [min, max]")

    if action.to is not None:
        target = to_minor(action.to, currency, exact=False)
        new, note = _clamp(target, low, high)
        if new == old:
            bound = {"lowered to max": " (the rule's max)", "raised to min": " (the rule's min)"}
            said = bound.get(note, "") if note else ""
            return NewBudget(kind, old, old, f"already at {money(old)}{said}")
    else:
        if action.by_percent is not None:
            raw = Decimal(old) * (1 + action.by_percent / 100)
            asked = f"{action.by_percent.normalize():f} % of {money(old)}"
        else:  # the document holds exactly one of by_percent, by_amount and to
            amount = action.by_amount
            assert amount is not None
            raw = Decimal(old) + to_minor(amount, currency, exact=False)
            asked = f"{amount.normalize():f} {currency}"
        new = int(raw.to_integral_value(rounding=ROUND_HALF_EVEN))
        note = None
        if new > 2 * old and high is None:  # by_amount: a typo must not multiply spend
            new, note = 2 * old, "an increase without a max stops at twice the budget"
        if new > old and high is not None and new > high:
            if old >= high:
                return NewBudget(kind, old, old, _beyond(old, high, "max", money))
            new, note = high, "stopped at max"
        elif new < old and low is not None and new < low:
            if old <= low:
                return NewBudget(kind, old, old, _beyond(old, low, "min", money))
            new, note = low, "stopped at min"
        if new == old:
            return NewBudget(
                kind, old, old,
                f"the change rounds to nothing ({asked} is less than {money(1)}, the "
                "currency's smallest unit)",
            )  # fmt: skip

    # The floor: Meta's minimum for the account, and in any case one minor unit (a
    # budget cannot be zero or negative; pausing is how spending stops).
    floor = max(meta_minimum_minor or 0, 1)
    if new < floor and new != old:
        minimum = (
            f"Meta's minimum is {money(floor)}"
            if meta_minimum_minor and meta_minimum_minor >= 1
            else "a budget cannot go below the currency's smallest unit"
        )
        if old <= floor:
            return NewBudget(kind, old, old, f"already at the lowest it can be ({minimum})")
        new, note = floor, minimum
        if high is not None and new > high:  # the floor is above the rule's max
            return NewBudget(
                kind, old, old, f"{minimum}, above the rule's max ({money(high)}): no change"
            )
    return NewBudget(kind=kind, old_minor=old, new_minor=new, note=note)


def _beyond(old: int, bound: int, which: str, money: Callable[[int], str]) -> str:
    """An increase on a budget already at or above max, a decrease at or below min."""
    if old == bound:
        return f"already at the rule's {which} ({money(bound)})"
    side, verb = ("above", "an increase never lowers it") if which == "max" else (
        "below", "a decrease never raises it")  # fmt: skip
    return f"already {side} the rule's {which} ({money(bound)}): {verb}"


def _whole(amount: Decimal, currency: str, rounding: str) -> int:
    """Major units → whole minor units, rounded as asked."""
    return int((Decimal(amount) * offset(currency)).to_integral_value(rounding=rounding))


def _clamp(value: int, low: int | None, high: int | None) -> tuple[int, str | None]:
    if low is not None and value < low:
        return low, "raised to min"
    if high is not None and value > high:
        return high, "lowered to max"
    return value, None
