"""The sandbox's market: how an ad set's numbers follow from what it is and what is done
to it. Pure functions of a profile, a state and a seed — no clock, no world.

**A profile per ad set** (`Profile`), deterministic for the seed (or planted by a
scenario): its audience's `capacity` (the daily spend in major units the whole audience
takes at its base cost), base rates (CPM in major units, CTR, conversion rate per click,
order value) and, per *dimension* — age × gender, placement (platform × position ×
device), country, region, DMA, hour of day in the account's time zone — each segment's
share of delivery and its multipliers of CPM, CTR, conversion rate and order value.
Multipliers are normalised so that the whole audience, untargeted, has the base rates:
a segment is better or worse than the ad set, never all of them at once.

**A day** (`simulate`) from the ad set's state on it — its budget, what its targeting and
schedule leave of each dimension, whether it is in Meta's learning phase:

* *reach*: excluding segments removes their share of the audience (capacity shrinks by
  the share left, per dimension) and their multipliers from the mix (the ad set's rates
  become the delivery-weighted mean of the segments that remain);
* *delivery follows the budget with diminishing returns*: spend = C·(1 − e^(−B/C)) for a
  budget B and a capacity C (≈ B while the audience is large, → C when it is not), and
  the CPM rises as spend pushes into the audience (× (1 + ½·spend/C)), so ROAS — and
  more so marginal ROAS — falls as the budget rises;
* *learning*: for `LEARNING_DAYS` after a significant edit the CPM is `LEARNING_CPM` ×
  and the conversion rate `LEARNING_CVR` × their settled values, with twice the daily
  noise;
* *noise the way counts have it*: the day's spend varies with pacing (±8 %), rates with a
  daily log-normal wobble; clicks and purchases are Poisson counts around their
  expectation, order values vary per order.

**Segments** (`split_day`): a day's totals split over one dimension's segments in the
proportions the profile and the targeting give each column (spend by delivery share,
impressions by share ÷ CPM, clicks × CTR, purchases × conversion rate, revenue by the
orders and their value): a multinomial draw of each column's units (impressions, clicks,
purchases, cents), so the parts are whole numbers summing exactly to the day, noisy as
counts are and unbiased.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

LEARNING_DAYS = 7
LEARNING_CPM = 1.2
LEARNING_CVR = 0.8
SIGNIFICANT_BUDGET_CHANGE = 0.3  # a budget change above ±30 % restarts learning
LONG_PAUSE_DAYS = 7  # resuming after a pause this long restarts learning
SATURATION = 0.5  # CPM × (1 + SATURATION · spend / capacity)
PACING_NOISE = 0.08
RATE_NOISE = 0.10
ORDER_VALUE_NOISE = 0.35  # per order, log-normal

DIMENSIONS = ("demographic", "placement", "country", "region", "dma", "hour")
COLUMNS = ("spend", "impressions", "clicks", "reach", "purchases", "revenue")


@dataclass(frozen=True)
class Segment:
    """One segment's latent numbers: share of delivery, and multipliers of the ad set's
    base rates (1 = the ad set's own)."""

    share: float
    cpm: float = 1.0
    ctr: float = 1.0
    cvr: float = 1.0
    aov: float = 1.0


@dataclass(frozen=True)
class Profile:
    """An ad set's latent performance. Money in the account currency's major units."""

    capacity: float
    cpm: float
    ctr: float
    cvr: float
    aov: float
    segments: Mapping[str, Mapping[tuple[str, ...], Segment]]  # dimension → key → segment
    reach_ratio: float = 1.35  # impressions per person reached, in a day

    def normalised(self) -> Profile:
        """The same profile with each dimension's multipliers scaled so that the whole
        audience has the base rates."""
        return replace(self, segments={d: _normalise(s) for d, s in self.segments.items()})


def _normalise(segments: Mapping[tuple[str, ...], Segment]) -> dict[tuple[str, ...], Segment]:
    total = sum(s.share for s in segments.values()) or 1.0
    shares = {k: s.share / total for k, s in segments.items()}
    whole = mix(segments, shares)
    return {
        k: Segment(
            share=shares[k],
            cpm=s.cpm / whole.cpm,
            ctr=s.ctr / whole.ctr,
            cvr=s.cvr / whole.cvr,
            aov=s.aov / whole.aov,
        )
        for k, s in segments.items()
    }


@dataclass(frozen=True)
class Mix:
    """What a set of segments delivers together, relative to the base rates: the share of
    the audience they are, and their effective multipliers."""

    share: float
    cpm: float
    ctr: float
    cvr: float
    aov: float


def mix(
    segments: Mapping[tuple[str, ...], Segment], shares: Mapping[tuple[str, ...], float]
) -> Mix:
    """The delivery-weighted mean of the segments with `shares` (0 for excluded ones):
    impressions per spend, clicks per impression, purchases per click, value per
    purchase."""
    total = sum(shares.values())
    if total <= 0:
        return Mix(0.0, 1.0, 1.0, 1.0, 1.0)
    impressions = sum(w / segments[k].cpm for k, w in shares.items()) / total
    clicks = sum(w / segments[k].cpm * segments[k].ctr for k, w in shares.items()) / total
    purchases = (
        sum(w / segments[k].cpm * segments[k].ctr * segments[k].cvr for k, w in shares.items())
        / total
    )
    value = (
        sum(
            w / segments[k].cpm * segments[k].ctr * segments[k].cvr * segments[k].aov
            for k, w in shares.items()
        )
        / total
    )
    return Mix(
        share=total,
        cpm=1 / impressions,
        ctr=clicks / impressions,
        cvr=purchases / clicks if clicks else 1.0,
        aov=value / purchases if purchases else 1.0,
    )


@dataclass(frozen=True)
class State:
    """What governs an ad set's delivery over (part of) a day."""

    budget: float  # major units per day that may be spent (0: not delivering)
    # per dimension, the fraction of each segment the targeting still reaches (a dimension
    # not given: all of it; a segment not given: none of it)
    included: Mapping[str, Mapping[tuple[str, ...], float]] = field(default_factory=dict)
    learning: bool = False

    def shares(self, profile: Profile, dimension: str) -> dict[tuple[str, ...], float]:
        """Each segment's delivery share under this targeting (0 where excluded)."""
        segments = profile.segments[dimension]
        kept = self.included.get(dimension)
        if kept is None:
            return {k: s.share for k, s in segments.items()}
        return {k: s.share * kept.get(k, 0.0) for k, s in segments.items()}


@dataclass(frozen=True)
class Expected:
    """A day's expected numbers (floats, before noise)."""

    spend: float = 0.0
    impressions: float = 0.0
    clicks: float = 0.0
    purchases: float = 0.0
    revenue: float = 0.0
    learning: bool = False

    def __add__(self, other: Expected) -> Expected:
        return Expected(
            self.spend + other.spend,
            self.impressions + other.impressions,
            self.clicks + other.clicks,
            self.purchases + other.purchases,
            self.revenue + other.revenue,
            self.learning or other.learning,
        )

    def scaled(self, factor: float) -> Expected:
        return Expected(
            self.spend * factor,
            self.impressions * factor,
            self.clicks * factor,
            self.purchases * factor,
            self.revenue * factor,
            self.learning,
        )

    @property
    def roas(self) -> float | None:
        return self.revenue / self.spend if self.spend else None


def expected(profile: Profile, state: State) -> Expected:
    """The day's expected numbers for a whole day in `state`."""
    if state.budget <= 0:
        return Expected()
    mixes = [mix(profile.segments[d], state.shares(profile, d)) for d in profile.segments]
    reach = math.prod(m.share for m in mixes)
    capacity = profile.capacity * reach
    if capacity <= 0:
        return Expected(learning=state.learning)
    spend = capacity * (1 - math.exp(-state.budget / capacity))
    cpm = profile.cpm * math.prod(m.cpm for m in mixes) * (1 + SATURATION * spend / capacity)
    ctr = profile.ctr * math.prod(m.ctr for m in mixes)
    cvr = profile.cvr * math.prod(m.cvr for m in mixes)
    aov = profile.aov * math.prod(m.aov for m in mixes)
    if state.learning:
        cpm *= LEARNING_CPM
        cvr *= LEARNING_CVR
    impressions = spend / cpm * 1000
    clicks = impressions * min(ctr, 0.5)
    purchases = clicks * min(cvr, 1.0)
    return Expected(spend, impressions, clicks, purchases, purchases * aov, state.learning)


@dataclass(frozen=True)
class Counts:
    """A day's numbers as Meta reports them: whole numbers, money in minor units (the
    sandbox world's `Day`)."""

    spend: int
    impressions: int
    clicks: int
    reach: int
    purchases: int
    revenue: int

    FIELDS = COLUMNS

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(getattr(self, f) for f in COLUMNS)

    def is_empty(self) -> bool:
        return not (self.spend or self.impressions)

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))


ZERO_COUNTS = Counts(0, 0, 0, 0, 0, 0)


def simulate(
    profile: Profile, day: Expected, rng: random.Random, *, unit: int, fraction: float = 1.0
) -> Counts:
    """A day's reported numbers from its expectation: pacing and rate wobble, Poisson
    counts, order values per order. `unit`: minor units per major unit; `fraction`: the
    part of the day that has passed (today)."""
    if day.spend <= 0 or fraction <= 0:
        return ZERO_COUNTS
    noise = 2.0 if day.learning else 1.0
    spend = day.spend * fraction * _wobble(rng, PACING_NOISE * noise)
    spend_minor = round(spend * unit)
    if spend_minor <= 0:
        return ZERO_COUNTS
    spend = spend_minor / unit
    per_spend = day.impressions / day.spend * _wobble(rng, RATE_NOISE * noise)
    impressions = round(spend * per_spend)
    ctr = day.clicks / day.impressions if day.impressions else 0.0
    clicks = min(impressions, poisson(rng, impressions * ctr * _wobble(rng, RATE_NOISE * noise)))
    cvr = day.purchases / day.clicks if day.clicks else 0.0
    purchases = min(clicks, poisson(rng, clicks * cvr * _wobble(rng, RATE_NOISE * noise)))
    aov = day.revenue / day.purchases if day.purchases else 0.0
    revenue = sum(aov * _wobble(rng, ORDER_VALUE_NOISE) for _ in range(min(purchases, 200)))
    if purchases > 200:  # beyond a few hundred orders the mean is as good as the sum
        revenue *= purchases / 200
    reach = round(impressions / (profile.reach_ratio * _wobble(rng, 0.05)))
    return Counts(spend_minor, impressions, clicks, min(reach, impressions), purchases,
                  round(revenue * unit))  # fmt: skip


def column_weights(profile: Profile, state: State, dimension: str) -> dict[str, list[float]]:
    """Per column, each segment's relative weight in the day's totals (keys in the
    profile's order): spend by share, impressions by share ÷ CPM, clicks × CTR,
    purchases × conversion rate, revenue × order value; reach as impressions."""
    segments = profile.segments[dimension]
    shares = state.shares(profile, dimension)
    spend = [shares[k] for k in segments]
    impressions = [w / s.cpm for w, s in zip(spend, segments.values(), strict=True)]
    clicks = [w * s.ctr for w, s in zip(impressions, segments.values(), strict=True)]
    purchases = [w * s.cvr for w, s in zip(clicks, segments.values(), strict=True)]
    revenue = [w * s.aov for w, s in zip(purchases, segments.values(), strict=True)]
    return {"spend": spend, "impressions": impressions, "clicks": clicks,
            "reach": impressions, "purchases": purchases, "revenue": revenue}  # fmt: skip


def split_day(
    totals: Counts, weights: Mapping[str, Sequence[float]], rng: random.Random
) -> list[Counts]:
    """`totals` over segments in the proportions `weights` give each column, each part
    wobbling as a count of its expected size would; integers summing exactly to the
    totals. Revenue goes with the purchases: a segment's share is its orders × its order
    value (no revenue where no order was made, unless the day has revenue and no
    purchase at all)."""
    columns: dict[str, list[int]] = {}
    for name in COLUMNS:
        total = getattr(totals, name)
        base = list(weights[name])
        if name == "revenue" and any(columns["purchases"]):
            # the value of the orders each segment made: its purchases × its order value
            per_order = [
                r / p if p else 0.0 for r, p in zip(base, weights["purchases"], strict=True)
            ]
            base = [n * v for n, v in zip(columns["purchases"], per_order, strict=True)]
            columns[name] = largest_remainder(total, base)
            continue
        whole = sum(base)
        if total == 0 or whole <= 0:
            columns[name] = [0] * len(base)
            continue
        # each unit (an impression, a click, a purchase, a cent) falls in a segment with
        # the segment's probability: a multinomial draw — unbiased, noisy as counts are
        draw = np.random.default_rng(rng.getrandbits(64))
        columns[name] = [int(n) for n in draw.multinomial(total, [w / whole for w in base])]
    count = len(next(iter(weights.values())))
    return [Counts(*(columns[name][i] for name in COLUMNS)) for i in range(count)]


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """`total` in integer parts proportional to `weights`, summing exactly to `total`."""
    whole = sum(weights)
    if total == 0 or whole <= 0:
        return [0] * len(weights)
    raw = [total * w / whole for w in weights]
    parts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count (Knuth's method for small means, a rounded normal for large)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _wobble(rng: random.Random, sigma: float) -> float:
    """A log-normal factor with mean 1 (its median a little below): so that a day's
    numbers average to their expectation — the truth `expected` gives is the mean of what
    `simulate` reports, not ≈ 8 % below it in revenue (four wobbles compounding)."""
    return math.exp(rng.gauss(0.0, sigma) - sigma * sigma / 2)
