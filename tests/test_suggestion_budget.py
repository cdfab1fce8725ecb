"""core.suggestions.budget on the sandbox market's own numbers (a scenario world, in
process, whose ad sets' budgets changed on its timeline so that their spend varied): a
budget moves from an ad set far past its audience's capacity to one well under it that
its budget holds back, by amounts within the stated bounds and worth what the market
says it is worth; similar ad sets, spend that never varied and thin data give no
verdict; the same data give the same answer."""

from __future__ import annotations

import copy
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.sandbox import market
from core.sandbox.scenario import build_world, load_scenario
from core.sandbox.world import World
from core.suggestions.budget import (
    DONOR_SHARE,
    MAX_CHANGE,
    BudgetSeries,
    Day,
    Guards,
    NoVerdict,
    Response,
    find_shifts,
    respond,
)
from tests.conftest import NOW

USD = 100  # minor units per dollar
FIRST, LAST = 8, 60  # the days used: 60 to 8 days ago — settled (late conversions are in)
Steps = list[tuple[int, int]]  # (days ago the budget was set, the budget in minor units)


def adset(adset_id: str, *, roas: float, capacity: int, budget: int) -> dict[str, Any]:
    return {
        "id": adset_id, "name": f"Shop · {adset_id}", "daily_budget": budget,
        "market": {"roas": roas, "capacity": str(capacity), "variation": 0},
        "ads": [{"id": f"{adset_id}1", "name": "ad"}],
    }  # fmt: skip


def ramp(start: int, factor: float, steps: int, every: int, *, ends: int = 16) -> Steps:
    """A budget raised by `factor` every `every` days, the last time `ends` days ago."""
    return [
        (ends + every * (steps - 1 - k), round(start * factor**k)) for k in range(steps)
    ]  # fmt: skip


def world(adsets: list[dict[str, Any]], history: dict[str, Steps], seed: int = 3) -> World:
    """A scenario world whose ad sets' budgets followed `history` up to their budget now
    (the last step): each change on the timeline at the start of its local day."""
    for spec in adsets:
        if spec["id"] in history:
            spec["daily_budget"] = history[spec["id"]][-1][1]
    scenario = {
        "accounts": [{
            "id": "act_4001", "name": "Shop", "currency": "USD",
            "timezone": "America/Los_Angeles",
            "campaigns": [{"id": "4101", "name": "Shop", "adsets": adsets}],
        }],
    }  # fmt: skip
    built = build_world(load_scenario(copy.deepcopy(scenario)), seed, lambda: NOW)
    account = built.accounts["act_4001"]
    today, zone = account.today(NOW), ZoneInfo(account.timezone_name)
    for adset_id, steps in history.items():
        for (_, old), (ago, new) in zip(steps, steps[1:], strict=False):
            at = datetime.combine(today - timedelta(days=ago), time(), zone)
            built.seed_change(built.entities[adset_id], "daily_budget", old, new, at)
    return built


def series(built: World, adset_id: str, first: int = FIRST, last: int = LAST) -> BudgetSeries:
    """The ad set's days from `last` to `first` days ago as Rex would have them: its ads'
    numbers summed, learning where the market says it was (Rex: from the change record)."""
    today = built.accounts["act_4001"].today(NOW)
    entity = built.entities[adset_id]
    days = []
    for back in range(last, first - 1, -1):
        local = today - timedelta(days=back)
        total = market.ZERO_COUNTS
        for ad in built.children(adset_id, "ad"):
            total = total + built.day(ad, local)
        learning = built.expected_adset(entity, local).learning
        days.append(Day(local, total.spend / USD, total.revenue / USD, total.purchases, learning))
    return BudgetSeries(adset_id, entity.daily_budget or 0, tuple(days))


def truth(built: World, adset_id: str, budget: int) -> market.Expected:
    """What the market expects of the ad set on a settled day at `budget`."""
    return market.expected(built.profile(built.entities[adset_id]), market.State(budget / USD))


# far past its capacity: $1,000 a day is all its audience takes, and its budget went from
# $500 to ~$3,000 (one raise of 60 % restarted learning for a week); low marginal ROAS
SATURATED = adset("5001", roas=2.0, capacity=1000, budget=1)
SATURATED_HISTORY = [(61, 50000), (56, 62500), (51, 78125), (46, 125000), (36, 156250),
                     (31, 195312), (26, 244141), (21, 298023)]  # fmt: skip
# well under its capacity ($10,000) and spending its whole budget, raised from $160 to
# ~$490 by 25 % steps: high ROAS, still high at the margin
UNDER = adset("5002", roas=3.5, capacity=10000, budget=1)
UNDER_HISTORY = ramp(16000, 1.25, 6, 8)


def test_a_budget_moves_from_the_saturated_ad_set_to_the_budget_limited_one() -> None:
    built = world([dict(SATURATED), dict(UNDER)],
                  {"5001": SATURATED_HISTORY, "5002": UNDER_HISTORY})  # fmt: skip
    saturated, under = series(built, "5001"), series(built, "5002")
    (shift,) = find_shifts([saturated, under], unit=USD)
    assert (shift.donor.holder, shift.recipient.holder) == ("5001", "5002")

    # the amounts: the smaller of 20 % of the donor's budget and 30 % of the recipient's,
    # in whole dollars; the account's total budget unchanged
    donor_old, recipient_old = saturated.daily_budget, under.daily_budget
    bound = min(DONOR_SHARE * donor_old, MAX_CHANGE * recipient_old)
    assert shift.amount == int(bound // USD) * USD and shift.amount % USD == 0
    assert shift.donor_budget == (donor_old, donor_old - shift.amount)
    assert shift.recipient_budget == (recipient_old, recipient_old + shift.amount)
    assert shift.amount <= DONOR_SHARE * donor_old and shift.amount <= MAX_CHANGE * recipient_old

    # the evidence, against the market's truth at the budgets now
    donor, recipient = shift.donor, shift.recipient
    saturated_now = truth(built, "5001", donor_old)
    assert saturated_now.spend < 0.4 * donor_old / USD  # its audience, not its budget, limits it
    assert not donor.budget_limited and recipient.budget_limited
    learning_days = sum(d.learning for d in saturated.days)
    assert learning_days == 7 and donor.days == LAST - FIRST + 1 - learning_days
    assert donor.spend_low < 0.5 * donor.spend_high  # its spend varied with its budget
    assert donor.elasticity.estimate < 1  # diminishing returns, seen
    assert donor.marginal_roas.high < recipient.marginal_roas.low
    true_marginal = _marginal(built, "5002", recipient_old)
    assert recipient.marginal_roas.contains(true_marginal)
    assert recipient.marginal_roas.low > 1  # credibly above break-even at the margin

    # worth what the market says: its expected weekly profit at the new budgets
    worth = 0.0
    for adset_id, (old, new) in (("5001", shift.donor_budget), ("5002", shift.recipient_budget)):
        before, after = truth(built, adset_id, old), truth(built, adset_id, new)
        worth += 7 * ((after.revenue - before.revenue) - (after.spend - before.spend))
    assert shift.weekly_profit.low > 0 and shift.probability > 0.95
    assert shift.weekly_profit.contains(worth)


def test_the_shift_is_found_in_most_worlds() -> None:
    found = 0
    for seed in range(1, 7):
        built = world([dict(SATURATED), dict(UNDER)],
                      {"5001": SATURATED_HISTORY, "5002": UNDER_HISTORY}, seed=seed)  # fmt: skip
        shifts = find_shifts([series(built, "5001"), series(built, "5002")], unit=USD)
        assert all(s.donor.holder == "5001" for s in shifts)  # never the other way
        found += len(shifts)
    assert found >= 4


def test_the_donor_keeps_the_accounts_minimum_budget() -> None:
    built = world([dict(SATURATED), dict(UNDER)],
                  {"5001": SATURATED_HISTORY, "5002": UNDER_HISTORY})  # fmt: skip
    minimum = SATURATED_HISTORY[-1][1] - 5000  # $50 above it
    (shift,) = find_shifts([series(built, "5001"), series(built, "5002")], unit=USD,
                           min_budget=minimum)  # fmt: skip
    assert shift.amount == 5000 and shift.donor_budget[1] == minimum


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_similar_ad_sets_suggest_nothing(seed: int) -> None:
    # the same market, both budgets raised the same way: nothing to move
    built = world(
        [adset("6001", roas=2.5, capacity=3000, budget=1),
         adset("6002", roas=2.5, capacity=3000, budget=1)],
        {"6001": ramp(20000, 1.25, 6, 8), "6002": ramp(21000, 1.25, 6, 8, ends=18)},
        seed=seed,
    )  # fmt: skip
    judged = [respond(series(built, i), unit=USD) for i in ("6001", "6002")]
    assert all(isinstance(r, Response) for r in judged)  # both were judged …
    assert find_shifts([series(built, "6001"), series(built, "6002")], unit=USD) == []  # … alike


def test_spend_that_never_varied_gives_no_verdict() -> None:
    # the same two ad sets as the first test, their budgets never changed
    saturated, under = dict(SATURATED), dict(UNDER)
    saturated["daily_budget"], under["daily_budget"] = 298023, 48828
    built = world([saturated, under], {})
    both = [series(built, "5001"), series(built, "5002")]
    for judged in (respond(s, unit=USD) for s in both):
        assert isinstance(judged, NoVerdict) and "spend hardly varied" in judged.reason
    assert find_shifts(both, unit=USD) == []


def test_thin_data_gives_no_verdict() -> None:
    built = world([dict(SATURATED), dict(UNDER)],
                  {"5001": SATURATED_HISTORY, "5002": UNDER_HISTORY})  # fmt: skip
    few_days = [series(built, "5001", last=FIRST + 9), series(built, "5002", last=FIRST + 9)]
    for judged in (respond(s, unit=USD) for s in few_days):
        assert isinstance(judged, NoVerdict) and "fewer than 14" in judged.reason
    assert find_shifts(few_days, unit=USD) == []

    # $10 to $30 a day at a ROAS of 2 and orders of about $60: under one sale a day
    small = world([adset("7001", roas=2.0, capacity=1000, budget=1)],
                  {"7001": ramp(1000, 1.25, 6, 8)})  # fmt: skip
    thin = series(small, "7001", last=FIRST + 20)
    assert 0 < sum(d.purchases for d in thin.days) < 30
    judged = respond(thin, unit=USD)
    assert isinstance(judged, NoVerdict) and "purchases" in judged.reason

    # and any guard can be raised
    strict = respond(series(built, "5002"), unit=USD, guards=Guards(min_days=60))
    assert isinstance(strict, NoVerdict)


def test_a_recent_learning_phase_gives_no_verdict() -> None:
    # raised by 60 % eleven days ago: its last week of settled days is learning
    history = [*UNDER_HISTORY[:-1], (11, round(UNDER_HISTORY[-2][1] * 1.6))]
    built = world([dict(UNDER)], {"5002": history})
    judged = respond(series(built, "5002"), unit=USD)
    assert isinstance(judged, NoVerdict) and "learning" in judged.reason


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_same_data_give_the_same_answer(seed: int) -> None:
    built = world([dict(SATURATED), dict(UNDER)],
                  {"5001": SATURATED_HISTORY, "5002": UNDER_HISTORY}, seed=seed)  # fmt: skip
    both = [series(built, "5001"), series(built, "5002")]
    first = find_shifts(both, unit=USD)
    assert first == find_shifts(both, unit=USD)
    assert first == find_shifts(both[::-1], unit=USD)  # nor does the order matter
    assert respond(both[0], unit=USD) == respond(both[0], unit=USD)


def _marginal(built: World, adset_id: str, budget: int) -> float:
    """The market's marginal ROAS at `budget`: revenue per extra spend, a 0.1 % raise."""
    low, high = truth(built, adset_id, budget), truth(built, adset_id, round(budget * 1.001))
    return (high.revenue - low.revenue) / (high.spend - low.spend)
