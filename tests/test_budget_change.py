"""The new budget of a change_budget action: percent / amount / to, bounds, currencies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.actions.budget import BudgetNotApplicable, new_budget
from core.rules.document import ChangeBudget


def change(**fields) -> ChangeBudget:  # type: ignore[no-untyped-def]
    return ChangeBudget(type="change_budget", **fields)


def usd(action: ChangeBudget, daily: int | None = 20_000, **kw) -> tuple[int, int, str | None]:  # type: ignore[no-untyped-def]
    result = new_budget(action, currency="USD", daily_minor=daily, lifetime_minor=None, **kw)
    return result.old_minor, result.new_minor, result.note


def test_the_worked_example_raises_by_a_quarter_up_to_the_max() -> None:
    rule = change(by_percent=25, max=500)
    assert usd(rule, 20_000)[1] == 25_000  # A: $200 → $250
    assert usd(rule, 32_000)[1] == 40_000  # C: $320 → $400
    assert usd(rule, 45_000)[:2] == (45_000, 50_000)  # stops at $500
    assert usd(rule, 45_000)[2] == "stopped at max"


def test_an_increase_never_lowers_a_budget_already_above_max() -> None:
    assert usd(change(by_percent=25, max=500), 60_000)[:2] == (60_000, 60_000)


def test_a_decrease_stops_at_min_and_never_raises_one_below_it() -> None:
    rule = change(by_percent=-50, min=50)
    assert usd(rule, 8_000)[1] == 5_000
    assert usd(rule, 4_000)[:2] == (4_000, 4_000)


def test_to_is_clamped_into_the_bounds() -> None:
    assert usd(change(to=900, max=500))[1] == 50_000
    assert usd(change(to=10, min=20))[1] == 2_000
    assert usd(change(to=Decimal("123.45")))[1] == 12_345


def test_by_amount_in_major_units_of_each_currency() -> None:
    assert usd(change(by_amount=-25))[1] == 17_500
    jpy = new_budget(change(by_amount=500), currency="JPY", daily_minor=3_000, lifetime_minor=None)
    assert (jpy.old_minor, jpy.new_minor) == (3_000, 3_500)


def test_jpy_percent_rounds_to_whole_yen() -> None:
    result = new_budget(
        change(by_percent=10), currency="JPY", daily_minor=1_234, lifetime_minor=None
    )
    assert result.new_minor == 1_357  # 1357.4 → 1357 yen, not 135,740


def test_a_change_that_rounds_to_nothing_is_no_change() -> None:
    result = new_budget(
        change(by_percent=Decimal("0.01")), currency="USD", daily_minor=100, lifetime_minor=None
    )
    assert not result.changes


def test_meta_minimum_is_a_floor() -> None:
    assert usd(change(by_percent=-90), 2_000, meta_minimum_minor=100)[1:] == (
        200,
        None,
    )
    old, new, note = usd(change(by_percent=-99), 2_000, meta_minimum_minor=100)
    assert new == 100 and "minimum is 1.00 USD" in note


def test_lifetime_budget_and_missing_budgets() -> None:
    result = new_budget(
        change(by_percent=10), currency="USD", daily_minor=None, lifetime_minor=100_000
    )
    assert (result.kind, result.new_minor) == ("lifetime", 110_000)
    with pytest.raises(BudgetNotApplicable, match="no budget of its own"):
        new_budget(change(by_percent=10), currency="USD", daily_minor=None, lifetime_minor=None)
    with pytest.raises(BudgetNotApplicable, match="no lifetime budget"):
        new_budget(
            change(by_percent=10, budget="lifetime"),
            currency="USD",
            daily_minor=1,
            lifetime_minor=None,
        )


def test_an_amount_without_a_max_at_most_doubles_the_budget() -> None:
    from core.actions.budget import new_budget
    from core.rules.document import ChangeBudget

    typo = ChangeBudget(type="change_budget", by_amount=5000)  # meant 50.00
    change = new_budget(typo, currency="USD", daily_minor=5_000, lifetime_minor=None)
    assert change.new_minor == 10_000 and "twice" in (change.note or "")
    bounded = ChangeBudget(type="change_budget", by_amount=5000, max=2000)
    assert (
        new_budget(bounded, currency="USD", daily_minor=5_000, lifetime_minor=None).new_minor
        == 200_000
    )


def test_no_change_says_its_true_cause() -> None:
    def jpy(action: ChangeBudget, daily: int) -> str | None:
        result = new_budget(action, currency="JPY", daily_minor=daily, lifetime_minor=None)
        assert not result.changes
        return result.note

    # a ¥3,000 budget and "max 500": above the max, not a change that rounds away
    raise_it = change(by_percent=25, max=500)
    assert (
        jpy(raise_it, 3_000)
        == "already above the rule's max (500 JPY): an increase never lowers it"
    )
    assert jpy(raise_it, 500) == "already at the rule's max (500 JPY)"
    lower_it = change(by_percent=-20, min=1000)
    assert (
        jpy(lower_it, 800) == "already below the rule's min (1,000 JPY): a decrease never raises it"
    )
    assert jpy(change(to=3000), 3_000) == "already at 3,000 JPY"
    assert jpy(change(to=9000, max=3000), 3_000) == "already at 3,000 JPY (the rule's max)"
    assert jpy(change(by_percent=Decimal("0.01")), 3_000) == (
        "the change rounds to nothing (0.01 % of 3,000 JPY is less than 1 JPY, the currency's "
        "smallest unit)"
    )
    floor = new_budget(change(by_percent=-50), currency="USD", daily_minor=100,
                       lifetime_minor=None, meta_minimum_minor=100)  # fmt: skip
    assert floor.note == "already at the lowest it can be (Meta's minimum is 1.00 USD)"
