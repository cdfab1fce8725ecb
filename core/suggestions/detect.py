"""Finding segments that are truly better or worse than the rest of their ad set.

One test per segment of one breakdown of one ad set, over a period of whole days:

* where Meta reports purchases (age × gender, placement, country), the segment's
  **purchases per unit of spend** against the rest's — Gamma-Poisson posteriors, each
  shrunk toward "no difference" (the rest's own rate) with the weight of the spend that
  buys `PRIOR_PURCHASES` purchases there, so a thin segment says little;
* where it does not (region, DMA, hour: no off-Meta metrics), **clicks per unit of
  spend** (the inverse of CPC), the same way.

A segment is tested only with enough data (`Guards`): enough purchases (clicks) in the ad
set, enough spend in the segment to have bought a few at the ad set's rate, enough
spend in the rest. Each test gives a two-sided p-value (the conditional binomial test),
the posterior probability of the direction seen, and the **weekly profit of acting on
it** with an interval: moving the segment's spend to the rest (excluding a worse
segment) or the rest's to it (weighting a better one) gains the difference in revenue
per spend — the rate difference times the ad set's value per purchase (per click) —
on the segment's weekly spend, from 4,000 draws of the two posteriors (a fixed seed:
the same data give the same interval; drawn only for the findings that pass the
correction). Which tests are discoveries is decided across all the tests of an ad set
at once, its tables as families (`discoveries`, `stats.hierarchical`), so that testing
many segments does not make noise look like patterns.

Effects ignore diminishing returns (the moved spend is assumed to earn the rest's
average rate) and the learning phase an edit starts: the confidence a suggestion states
accounts for both (the suggestions' prior, then learned from outcomes).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import numpy as np

from core.suggestions import stats

PRIOR_PURCHASES = 5.0  # the prior weighs the spend that buys this many at the ad set's rate
MIN_DIFFERENCE = 0.2  # a segment at least 20 % worse or better than the rest, credibly
DRAWS = 4000
Q = 0.05  # the false discovery rate controlled within each ad set's tests
OUTLIER = 1 / 3  # a discovery under this share of its ad set's spend is set aside …
MAJORITY = 0.5  # … and one with this share stands only if it can be retested without them
Direction = Literal["worse", "better"]
Basis = Literal["purchases", "clicks"]
ON_META_ONLY = frozenset({"region", "dma", "hour"})  # Meta gives no purchases by these
SuggestionKind = Literal["demographic", "placement", "geography", "dayparting", "budget"]
# which kind of suggestion a finding in each dimension (a breakdown or a grouping of one)
# makes; `budget` comes from the daily table, not a breakdown
KIND_OF_DIMENSION: dict[str, SuggestionKind] = {
    "age_gender": "demographic", "age": "demographic", "gender": "demographic",
    "placement": "placement", "publisher_platform": "placement",
    "impression_device": "placement",
    "country": "geography", "region": "geography", "dma": "geography",
    "hour": "dayparting",
}  # fmt: skip


@dataclass(frozen=True)
class SegmentSums:
    """A segment's sums over the period. Money in the account currency's major units;
    `purchases` and `revenue` None where Meta reports none (region, DMA, hour)."""

    key: tuple[str, ...]
    spend: float
    impressions: int
    clicks: int
    purchases: int | None
    revenue: float | None

    def plus(self, other: SegmentSums) -> SegmentSums:
        def both(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else a + b

        purchases = both(self.purchases, other.purchases)
        return SegmentSums(
            (),
            self.spend + other.spend,
            self.impressions + other.impressions,
            self.clicks + other.clicks,
            None if purchases is None else int(purchases),
            both(self.revenue, other.revenue),
        )


@dataclass(frozen=True)
class Guards:
    """The least data a test needs."""

    adset_purchases: int = 30  # purchases of the ad set in the period (clicks: ×20)
    segment_expected: float = 3.0  # the segment's spend must buy this many at the ad set's rate
    rest_share: float = 0.2  # the rest must have at least this share of the spend


@dataclass(frozen=True)
class Finding:
    """One tested segment: how it differs from the rest, the evidence, what acting on it
    is worth per week."""

    dimension: str
    key: tuple[str, ...]
    basis: Basis
    direction: Direction
    segment: SegmentSums
    rest: SegmentSums
    segment_rate: stats.Interval  # purchases (clicks) per unit of spend
    rest_rate: stats.Interval
    p_value: float
    probability: float  # posterior probability of `direction`
    days: int
    value: float  # what one purchase (click) is worth in the ad set (`_value_per`)
    # the two Gamma posteriors of the rate, (shape, rate): the segment's, the rest's
    posteriors: tuple[tuple[float, float], tuple[float, float]]

    @property
    def share(self) -> float:
        """The segment's share of the ad set's spend."""
        whole = self.segment.spend + self.rest.spend
        return self.segment.spend / whole if whole else 0.0

    @cached_property
    def weekly_profit(self) -> stats.Interval:
        """What acting on it is worth a week — excluding a worse segment (its spend earns
        the rest's rate) or weighting a better one (the rest's spend earns its rate): the
        rate difference × the value per purchase × the segment's weekly spend, from
        `DRAWS` draws of the two posteriors (seeded by the segment: the same data give the
        same interval). Computed when asked: only discoveries need it."""
        seed = zlib.crc32(repr((self.dimension, self.key)).encode())
        segment, rest = self.posteriors
        draws = _difference(rest, segment, seed=seed)  # rest − segment, per spend
        weekly_spend = self.segment.spend * 7 / self.days
        sign = 1 if self.direction == "worse" else -1
        return _interval(draws * self.value * weekly_spend * sign)


def judge_segments(
    dimension: str,
    segments: Sequence[SegmentSums],
    *,
    days: int,
    guards: Guards | None = None,
    set_aside: frozenset[tuple[str, ...]] = frozenset(),
) -> list[Finding]:
    """Every segment of one breakdown of one ad set that has the data to be tested, each
    against the rest of the ad set — without the segments `set_aside` (found different
    already) — not yet corrected for testing many (`discoveries`). One array pass over
    the table's segments."""
    guards = guards or Guards()
    if days <= 0 or not segments:
        return []
    basis: Basis = "clicks" if dimension in ON_META_ONLY else "purchases"
    counted = [_count(s, basis) for s in segments]
    if any(c is None for c in counted):
        return []  # a table without the numbers its basis needs says nothing
    whole = segments[0]
    for s in segments[1:]:
        whole = whole.plus(s)
    spend = np.array([s.spend for s in segments], dtype=float)
    count = np.array(counted, dtype=float)
    needed = guards.adset_purchases * (20 if basis == "clicks" else 1)
    if whole.spend <= 0 or count.sum() < needed:
        return []
    adset_rate = count.sum() / whole.spend
    value = _value_per(whole, basis)
    kept = np.array([s.key not in set_aside for s in segments])
    # the rest of each segment: the kept segments but itself
    rest_spend = spend[kept].sum() - np.where(kept, spend, 0.0)
    rest_count = count[kept].sum() - np.where(kept, count, 0.0)
    others = kept.sum() - kept  # how many kept segments its rest holds
    # the rest must hold a fair share of the ad set (set-aside segments counted: they are
    # what the first round compared with) and, without them, enough to have bought a few
    tested = np.flatnonzero(
        (others > 0)
        & (spend * adset_rate >= guards.segment_expected)  # else too little to have bought a few
        & (whole.spend - spend >= guards.rest_share * whole.spend)
        & (rest_spend * adset_rate >= guards.segment_expected)
    )
    if not len(tested):
        return []
    spend, count, rest_spend, rest_count = (
        spend[tested],
        count[tested],
        rest_spend[tested],
        rest_count[tested],
    )
    # shrunk toward "no difference": the prior is the rest's own rate
    prior = np.where((rest_count > 0) & (rest_spend > 0),
                     rest_count / np.maximum(rest_spend, 1e-300), adset_rate)  # fmt: skip
    prior_spend = PRIOR_PURCHASES / prior
    seg_shape, seg_rate = PRIOR_PURCHASES + count, prior_spend + spend
    rest_shape, rest_rate = PRIOR_PURCHASES + rest_count, prior_spend + rest_spend
    seg_low, seg_high = stats.gamma_quantiles(seg_shape, seg_rate)
    rest_low, rest_high = stats.gamma_quantiles(rest_shape, rest_rate)
    worse = seg_shape / seg_rate < rest_shape / rest_rate
    below = stats.prob_gamma_below(seg_shape, seg_rate, rest_shape, rest_rate)
    p_values = stats.per_spend_p_values(count, spend, rest_count, rest_spend)
    findings = []
    rests = _rests(segments, kept)
    for j, index in enumerate(tested.tolist()):
        segment, rest = segments[index], rests[index]
        findings.append(
            Finding(
                dimension=dimension,
                key=segment.key,
                basis=basis,
                direction="worse" if worse[j] else "better",
                segment=segment,
                rest=rest,
                segment_rate=stats.Interval(
                    float(seg_shape[j] / seg_rate[j]), float(seg_low[j]), float(seg_high[j])
                ),  # fmt: skip
                rest_rate=stats.Interval(
                    float(rest_shape[j] / rest_rate[j]), float(rest_low[j]), float(rest_high[j])
                ),  # fmt: skip
                p_value=float(p_values[j]),
                probability=float(below[j] if worse[j] else 1 - below[j]),
                days=days,
                value=value,
                posteriors=(
                    (float(seg_shape[j]), float(seg_rate[j])),
                    (float(rest_shape[j]), float(rest_rate[j])),
                ),  # fmt: skip
            )
        )
    return findings


def discoveries(findings: Sequence[Finding], q: float = Q) -> list[Finding]:
    """The findings that stand: after controlling the false discovery rate at `q` across
    all of them (an ad set's: each table a family, `stats.hierarchical`), whose weekly
    profit is positive at the interval's low end, and whose difference is large enough
    to matter — the segment's rate credibly (its interval's far end) at least
    `MIN_DIFFERENCE` below or above the rest's. A smaller difference is not worth an edit
    that restarts Meta's learning phase (≈ a fifth of a week's efficiency). Thin or
    doubtful evidence gives no verdict."""
    tables: dict[str, list[Finding]] = {}
    for finding in findings:
        tables.setdefault(finding.dimension, []).append(finding)
    passed = stats.hierarchical([[f.p_value for f in t] for t in tables.values()], q=q)
    return [
        f
        for table, oks in zip(tables.values(), passed, strict=True)
        for f, ok in zip(table, oks, strict=True)
        if ok and _matters(f) and f.weekly_profit.low > 0
    ]


def _matters(finding: Finding) -> bool:
    rest = finding.rest_rate.estimate
    if finding.direction == "worse":
        return finding.segment_rate.high <= (1 - MIN_DIFFERENCE) * rest
    return finding.segment_rate.low >= (1 + MIN_DIFFERENCE) * rest


Table = tuple[str, Sequence[SegmentSums]]  # a dimension and its segments, for one ad set

# How a breakdown's segments also group: a pattern that spans an age band across genders
# (or a platform across its positions and devices) is thin in every cell and clear in
# the group. (group dimension, the key parts it keeps); the cells stay a dimension too.
GROUPINGS: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "age_gender": (("age", (0,)), ("gender", (1,))),
    "placement": (("publisher_platform", (0,)), ("impression_device", (2,))),
}


def expand(dimension: str, segments: Sequence[SegmentSums]) -> list[Table]:
    """A breakdown's tables: its own cells and each grouping of them (see `GROUPINGS`);
    each table's segments make up the whole ad set, so each is judged as it is."""
    tables: list[Table] = [(dimension, segments)]
    for name, parts in GROUPINGS.get(dimension, ()):
        grouped: dict[tuple[str, ...], SegmentSums] = {}
        for segment in segments:
            key = tuple(segment.key[i] for i in parts)
            total = grouped[key].plus(segment) if key in grouped else segment
            grouped[key] = replace(total, key=key)
        if len(grouped) > 1:
            tables.append((name, list(grouped.values())))
    return tables


def find_patterns(adsets: Sequence[Sequence[Table]], *, days: int, q: float = Q,
                  guards: Guards | None = None) -> list[Finding]:  # fmt: skip
    """The segments of each ad set (its tables) that truly differ from the rest of it;
    each ad set on its own (`adset_patterns`)."""
    return [f for tables in adsets for f in adset_patterns(tables, days=days, q=q, guards=guards)]


def adset_patterns(tables: Sequence[Table], *, days: int, q: float = Q,
                   guards: Guards | None = None) -> list[Finding]:  # fmt: skip
    """One ad set's segments that truly differ from the rest, in two rounds: every
    segment against the rest of its ad set; then again against the rest *without the
    segments the first round found* — a rest that holds a few very bad segments makes
    every ordinary segment look good (and a few very good ones make it look bad), and the
    second round is not fooled by that. Only outliers are set aside: a discovery under
    `OUTLIER` of the ad set's spend. A larger one is half of a split (Android better
    when iPhone is worse) or the baseline itself (the home country, dragged "better" by
    a bad small one): without it the rest would be too small to judge anything against.
    A first-round discovery the second round cannot test again (without the outliers its
    rest is too small) stands, unless it holds most of the spend (`MAJORITY`: its
    difference may be the outliers' doing).

    Each round controls the false discovery rate at `q` across the ad set's tests
    (`discoveries`), and so, for an ad set with nothing to find, the chance of any
    discovery at all: whatever the account's size, at most a share `q` of its ad sets
    without patterns get a suggestion — an account of many ad sets does not lower the bar
    for each (as one correction across the account would, once it holds many true
    differences)."""
    first = discoveries(
        [f for dimension, segments in tables
         for f in judge_segments(dimension, segments, days=days, guards=guards)],
        q,
    )  # fmt: skip
    if not first:
        return []
    set_aside: dict[int, set[tuple[str, ...]]] = {id(segments): set() for _, segments in tables}
    for finding in first:  # which table each finding came from: its segment, by identity
        if finding.share >= OUTLIER:
            continue  # a split's half or the baseline, not an outlier to set aside
        for _dimension, segments in tables:
            if any(finding.segment is segment for segment in segments):
                set_aside[id(segments)].add(finding.key)
    second = [
        f
        for dimension, segments in tables
        for f in judge_segments(
            dimension,
            segments,
            days=days,
            guards=guards,
            set_aside=frozenset(set_aside[id(segments)]),
        )  # fmt: skip
    ]
    # a first-round discovery the second round could not test again (its rest, without
    # the outliers, too small to judge against) stands as the first round found it —
    # unless it holds most of the ad set (its difference may be the outliers' doing)
    retested = {id(f.segment) for f in second}
    kept = [f for f in first if id(f.segment) not in retested and f.share < MAJORITY]
    return discoveries(second, q) + kept


def _count(sums: SegmentSums, basis: Basis) -> int | None:
    return sums.clicks if basis == "clicks" else sums.purchases


def _value_per(whole: SegmentSums, basis: Basis) -> float:
    """What one purchase (one click) is worth in the ad set: revenue per purchase (per
    click); for clicks without purchase numbers, the spend a click costs (so the gain is
    the spend saved for the same clicks)."""
    if basis == "purchases":
        purchases = whole.purchases or 0
        return (whole.revenue or 0.0) / purchases if purchases else 0.0
    return whole.spend / whole.clicks if whole.clicks else 0.0


def _rests(segments: Sequence[SegmentSums], kept: np.ndarray) -> list[SegmentSums]:
    """Each segment's rest: the kept segments' sums without it (money to the cent's
    millionth, so that subtracting leaves no float dust)."""
    total = SegmentSums((), 0.0, 0, 0, 0, 0.0)
    for segment, keep in zip(segments, kept, strict=True):
        if keep:
            total = total.plus(segment)
    return [
        segment_minus(total, s) if keep else total for s, keep in zip(segments, kept, strict=True)
    ]


def segment_minus(total: SegmentSums, part: SegmentSums) -> SegmentSums:
    """`total` without `part` (which it holds)."""

    def less(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 6)

    purchases = less(total.purchases, part.purchases)
    return SegmentSums(
        (),
        round(total.spend - part.spend, 6),
        total.impressions - part.impressions,
        total.clicks - part.clicks,
        None if purchases is None else int(purchases),
        less(total.revenue, part.revenue),
    )


def _difference(
    first: tuple[float, float], second: tuple[float, float], *, seed: int
) -> np.ndarray:
    """Draws of rate(first) − rate(second) for Gamma(shape, rate) posteriors."""
    rng = np.random.default_rng(seed)
    a = rng.gamma(first[0], 1 / first[1], DRAWS)
    b = rng.gamma(second[0], 1 / second[1], DRAWS)
    return a - b


def _interval(draws: np.ndarray, level: float = stats.LEVEL) -> stats.Interval:
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return stats.Interval(float(np.mean(draws)), float(low), float(high), level)
