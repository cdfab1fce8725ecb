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
the same data give the same interval). Which tests are discoveries is decided across
all the tests of an account at once (`discoveries`, Benjamini–Hochberg), so that
testing many segments does not make noise look like patterns.

Effects ignore diminishing returns (the moved spend is assumed to earn the rest's
average rate) and the learning phase an edit starts: the confidence a suggestion states
accounts for both (the suggestions' prior, then learned from outcomes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from core.suggestions import stats

PRIOR_PURCHASES = 5.0  # the prior weighs the spend that buys this many at the ad set's rate
MIN_DIFFERENCE = 0.2  # a segment at least 20 % worse or better than the rest, credibly
DRAWS = 4000
MAJORITY = 0.5  # a discovery with this share of its ad set's spend is not set aside
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
    weekly_profit: stats.Interval  # of acting: excluding a worse one, weighting a better one
    days: int

    @property
    def share(self) -> float:
        """The segment's share of the ad set's spend."""
        whole = self.segment.spend + self.rest.spend
        return self.segment.spend / whole if whole else 0.0


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
    already) — not yet corrected for testing many (`discoveries`)."""
    guards = guards or Guards()
    if days <= 0 or not segments:
        return []
    basis: Basis = "clicks" if dimension in ON_META_ONLY else "purchases"
    whole = segments[0]
    for s in segments[1:]:
        whole = whole.plus(s)
    total_count = _count(whole, basis)
    needed = guards.adset_purchases * (20 if basis == "clicks" else 1)
    if whole.spend <= 0 or total_count is None or total_count < needed:
        return []
    adset_rate = total_count / whole.spend
    value = _value_per(whole, basis)
    findings = []
    for index, segment in enumerate(segments):
        rest = _rest(segments, index, set_aside)
        if rest is None:
            continue
        count, rest_count = _count(segment, basis), _count(rest, basis)
        if count is None or rest_count is None:
            continue
        if segment.spend * adset_rate < guards.segment_expected:
            continue  # too little spend to have bought a few: no verdict
        if rest.spend < guards.rest_share * whole.spend:
            continue
        # shrunk toward "no difference": the prior is the rest's own rate
        prior = rest_count / rest.spend if rest_count and rest.spend else adset_rate
        prior_spend = PRIOR_PURCHASES / prior
        seg_post = (prior * prior_spend + count, prior_spend + segment.spend)
        rest_post = (prior * prior_spend + rest_count, prior_spend + rest.spend)
        seg_rate = stats.per_spend(count, segment.spend, prior_rate=prior,
                                   prior_spend=prior_spend)  # fmt: skip
        rest_rate = stats.per_spend(rest_count, rest.spend, prior_rate=prior,
                                    prior_spend=prior_spend)  # fmt: skip
        direction: Direction = "worse" if seg_rate.estimate < rest_rate.estimate else "better"
        draws = _difference(rest_post, seg_post, seed=index)  # rest − segment, per spend
        weekly_spend = segment.spend * 7 / days
        gain = draws * value * weekly_spend * (1 if direction == "worse" else -1)
        probability = float(np.mean(gain > 0))
        findings.append(
            Finding(
                dimension=dimension,
                key=segment.key,
                basis=basis,
                direction=direction,
                segment=segment,
                rest=rest,
                segment_rate=seg_rate,
                rest_rate=rest_rate,
                p_value=stats.per_spend_p_value(count, segment.spend, rest_count, rest.spend),
                probability=probability,
                weekly_profit=_interval(gain),
                days=days,
            )
        )
    return findings


def discoveries(findings: Sequence[Finding], q: float = 0.1) -> list[Finding]:
    """The findings that stand: after controlling the false discovery rate at `q` across
    all of them (an account's), whose weekly profit is positive at the interval's low
    end, and whose difference is large enough to matter — the segment's rate credibly
    (its interval's far end) at least `MIN_DIFFERENCE` below or above the rest's. A
    smaller difference is not worth an edit that restarts Meta's learning phase (≈ a
    fifth of a week's efficiency). Thin or doubtful evidence gives no verdict."""
    passed = stats.benjamini_hochberg([f.p_value for f in findings], q=q) if findings else []
    return [
        f
        for f, ok in zip(findings, passed, strict=True)
        if ok and f.weekly_profit.low > 0 and _matters(f)
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


def find_patterns(tables: Sequence[Table], *, days: int, q: float = 0.1,
                  guards: Guards | None = None) -> list[Finding]:  # fmt: skip
    """The segments of an account's ad sets that truly differ from the rest, in two
    rounds: every segment against the rest of its ad set; then again against the rest
    *without the segments the first round found* — a rest that holds a few very bad
    segments makes every ordinary segment look good (and a few very good ones make it
    look bad), and the second round is not fooled by that. A first-round discovery the
    second round cannot test again (without the others its rest is too small) stands,
    unless it holds most of the spend. A discovery that holds most of
    its ad set's spend (`MAJORITY`: the home country, dragged "better" by a bad small
    one) is not set aside: without it the rest would be too small to judge anything
    against. Each round controls the false discovery rate across the whole account
    (`discoveries`)."""
    first = discoveries(
        [f for dimension, segments in tables
         for f in judge_segments(dimension, segments, days=days, guards=guards)],
        q,
    )  # fmt: skip
    set_aside: dict[int, set[tuple[str, ...]]] = {id(segments): set() for _, segments in tables}
    for finding in first:  # which table each finding came from: its segment, by identity
        if finding.share >= MAJORITY:
            continue  # most of the ad set is its baseline, not an outlier to set aside
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
    # the others set aside, too small to judge against) stands as the first round found
    # it — unless it holds most of the ad set (its difference may be the others' doing)
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


def _rest(
    segments: Sequence[SegmentSums], index: int, set_aside: frozenset[tuple[str, ...]]
) -> SegmentSums | None:
    others = [s for i, s in enumerate(segments) if i != index and s.key not in set_aside]
    if not others:
        return None
    rest = others[0]
    for s in others[1:]:
        rest = rest.plus(s)
    return rest


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
