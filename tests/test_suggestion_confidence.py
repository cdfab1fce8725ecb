"""The suggestions' confidence prior: the learning phase's cost from the ad set's own
pace, and the chance a change pays over a horizon."""

from __future__ import annotations

import pytest

from core.suggestions.confidence import (
    LEARNING_DAYS,
    LEARNING_EFFICIENCY,
    LEARNING_EVENTS,
    AdSetPace,
    confidence,
    learning_cost,
    learning_days,
    payback_days,
)
from core.suggestions.stats import Interval


def test_learning_lasts_until_its_purchases_or_a_week() -> None:
    busy = AdSetPace(spend_per_day=1000, revenue_per_day=3000, purchases_per_day=60)
    # 60 a day at the learning rate: 40 a day, so 50 purchases take 1.25 days
    assert learning_days(busy) == pytest.approx(LEARNING_EVENTS / (60 * LEARNING_EFFICIENCY))
    quiet = AdSetPace(spend_per_day=50, revenue_per_day=100, purchases_per_day=2)
    assert learning_days(quiet) == LEARNING_DAYS  # never 50 in a week: the whole week
    assert learning_days(AdSetPace(10, 0, 0)) == LEARNING_DAYS
    # the revenue lost: a third of each learning day's revenue
    assert learning_cost(quiet) == pytest.approx(LEARNING_DAYS * 100 * (1 - LEARNING_EFFICIENCY))


def test_confidence_is_the_chance_the_gain_beats_the_cost() -> None:
    gain = Interval(100.0, 60.0, 140.0)  # a weekly gain, 90 % interval
    assert confidence(gain) > 0.99  # nothing to pay back: the interval is above 0
    assert confidence(gain, cost=100.0) == pytest.approx(0.5)  # the cost is the estimate
    assert confidence(gain, cost=200.0) < 0.01  # two weeks of gain to pay in one
    # over four weeks the same cost is paid back: the longer horizon is the likelier
    assert confidence(gain, cost=200.0, days=28) > 0.95
    assert payback_days(gain, cost=200.0) == pytest.approx(14.0)
    assert payback_days(Interval(-5.0, -9.0, -1.0), cost=10.0) is None


def test_a_certain_gain_is_all_or_nothing() -> None:
    exact = Interval(50.0, 50.0, 50.0)
    assert confidence(exact, cost=49.0) == 1.0 and confidence(exact, cost=51.0) == 0.0
