"""A suggestion's confidence, from a prior: the probability that applying it improves
the ad set's profit over the following `HORIZON_DAYS` compared with not applying it.

Two things stand between a finding's weekly gain and that probability:

* the gain is uncertain — the finding's interval on the weekly profit of acting (from
  the two posteriors, core/suggestions/detect.py), read as a normal distribution with
  that mean and the spread its 90 % interval implies;
* an edit of targeting or schedule restarts Meta's **learning phase** (a budget change
  of more than 30 % does too): for a while the ad set buys less per unit of spend. An ad
  set leaves learning after about `LEARNING_EVENTS` optimisation events (purchases) or
  `LEARNING_DAYS`, whichever comes first (../shared/GRAPH_API_NOTES.md), and while it
  learns it earns `LEARNING_EFFICIENCY` of its settled revenue per spend. Meta publishes
  no such figure: 2/3 is the sandbox market's (CPM × 1.2, conversion rate × 0.8 while
  learning), and the figure Rex starts from until outcomes teach it better.

The cost is the ad set's revenue lost while learning, from its own numbers over the
evidence period; the confidence is P(gain − cost > 0). A change that does not restart
learning has no cost. This is the prior only: the next step measures outcomes and
learns the confidence from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from core.suggestions.stats import Interval

HORIZON_DAYS = 7
LONGER_DAYS = 28  # shown beside it: a change that pays its learning back in weeks
LEARNING_EVENTS = 50
LEARNING_DAYS = 7
LEARNING_EFFICIENCY = 2 / 3


@dataclass(frozen=True)
class AdSetPace:
    """An ad set's daily numbers over the evidence period (major units)."""

    spend_per_day: float
    revenue_per_day: float
    purchases_per_day: float


def learning_days(pace: AdSetPace) -> float:
    """How long the ad set learns after a significant edit: until it has had
    `LEARNING_EVENTS` purchases at its learning rate, at most `LEARNING_DAYS`."""
    per_day = pace.purchases_per_day * LEARNING_EFFICIENCY
    if per_day <= 0:
        return float(LEARNING_DAYS)
    return min(float(LEARNING_DAYS), LEARNING_EVENTS / per_day)


def learning_cost(pace: AdSetPace) -> float:
    """The revenue lost while the ad set learns again (major units)."""
    return learning_days(pace) * pace.revenue_per_day * (1 - LEARNING_EFFICIENCY)


def confidence(gain: Interval, *, cost: float = 0.0, days: int = HORIZON_DAYS) -> float:
    """P(gain − cost > 0) over `days`, the weekly gain normal with its interval's spread
    (a rate's uncertainty: the same in every week, so it scales with the days)."""
    z = _z(gain.level)
    weeks = days / 7
    spread = weeks * (gain.high - gain.low) / (2 * z) if gain.high > gain.low else 0.0
    margin = gain.estimate * weeks - cost
    if spread <= 0:
        return 1.0 if margin > 0 else 0.0
    return 0.5 * (1 + math.erf(margin / (spread * math.sqrt(2))))


def payback_days(gain: Interval, *, cost: float) -> float | None:
    """Days of the expected gain that pay back the learning cost (None: no gain)."""
    if gain.estimate <= 0:
        return None
    return cost / (gain.estimate / 7)


def _z(level: float) -> float:
    """The standard normal quantile of an equal-tailed interval at `level`."""
    return NormalDist().inv_cdf(0.5 + level / 2)
