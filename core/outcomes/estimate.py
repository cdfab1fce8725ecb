"""What a change did: its effect against what would have happened anyway.

A plain before/after comparison is dishonest for changes made *because* an entity stood
out (regression to the mean), in weeks that differ from the last (seasonality, pay-days),
with conversions still arriving for days (attribution). Here the effect of a change is
estimated against a **comparison group** — comparable entities of the same account that
were not changed over the same days — by a difference in differences on each metric:

* the entity's share of the group's numbers over a **baseline** period before the
  change, θ = T_base / C_base (the longest settled period available, up to
  `BASELINE_DAYS`; days chosen for being extreme are left out by the caller — a rule's
  own window — since their noise regresses);
* what the entity would have done anyway over the days after: θ · C_post;
* the effect: what it did, T_post, less that.

**The interval** comes from the day-to-day noise of the entity against its group in the
baseline: each day's Pearson residual (T_d − θ·C_d) / √(θ·C_d) per metric, their
covariance Σ across metrics (spend, revenue, purchases, clicks and impressions move
together). Counts and money are quasi-Poisson here — a day's variance proportional to its
mean, the dispersion Σ estimated — so the effect on metric m has variance
Σₘₘ · (T_post + (θC_post)² / T_base): the post days' noise (as much as the entity
delivered in them: a paused one's zeros have none), and the baseline's in θ.
Intervals of the effects and of what derives from them (profit = revenue − spend, ROAS,
CPA, CTR) come from `DRAWS` multivariate Student-t draws with the baseline's degrees of
freedom (a fixed seed: the same data give the same answer).

**Assumptions**: without the change, the entity would have kept its baseline share of
its group (parallel trends, on the multiplicative scale); the comparison entities were
not affected by the change (a budget moved *between* entities breaks this: they are not
comparison entities for each other); day-level noise is the same before and after.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from core.suggestions.stats import LEVEL, Interval

BASE_METRICS = ("spend", "revenue", "purchases", "clicks", "impressions")
DERIVED_METRICS = ("profit", "roas", "cpa", "ctr")
BASELINE_DAYS = 28
MEASURED_AFTER = 5  # from this many days after, their own noise is measured too
DRAWS = 4000


@dataclass(frozen=True)
class Guards:
    """The least data an estimate needs."""

    baseline_days: int = 7  # days with delivery in the baseline
    baseline_purchases: int = 10  # the entity's, in the baseline
    comparison_entities: int = 2


@dataclass(frozen=True)
class Numbers:
    """One entity's (or a group's) numbers over some days. Money in the account
    currency's major units."""

    spend: float = 0.0
    revenue: float = 0.0
    purchases: float = 0.0
    clicks: float = 0.0
    impressions: float = 0.0

    def __add__(self, other: Numbers) -> Numbers:
        return Numbers(*(getattr(self, m) + getattr(other, m) for m in BASE_METRICS))

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, m) for m in BASE_METRICS], dtype=float)

    @property
    def derived(self) -> dict[str, float | None]:
        """Profit, ROAS, cost per purchase and click-through rate (None: undefined)."""
        return _derived(self.vector())


Series = Mapping[date, Numbers]  # an entity's days


@dataclass(frozen=True)
class NoEstimate:
    """Why there is no estimate (thin data, no comparison): no verdict, never a guess."""

    reason: str


@dataclass(frozen=True)
class Estimate:
    """The change's estimated effect over the `days` after it (the day of the change
    itself, partly before, left out)."""

    days: int
    baseline: tuple[date, date]
    baseline_days: int
    comparison_entities: int
    observed: Numbers  # the entity over the days after
    expected: Numbers  # what it would have done anyway
    effects: dict[str, Interval]  # per metric: observed − expected, with its interval
    before_after: dict[str, float | None]  # the plain deltas: the days after − as many before
    probability_improving: float  # that the profit effect is above zero (from the draws)

    @property
    def is_improving(self) -> bool | None:
        """The seed's rule — profit up, or revenue and ROAS both up — on the estimated
        effects, credibly (the interval's low end above zero): True; credibly not
        (profit's high end below zero, and revenue's or ROAS's too): False; otherwise
        None — not enough evidence."""
        profit, revenue, roas = (self.effects.get(m) for m in ("profit", "revenue", "roas"))
        if profit is None:
            return None
        if profit.low > 0 or (revenue and roas and revenue.low > 0 and roas.low > 0):
            return True
        if profit.high < 0 and (
            revenue is None or roas is None or revenue.high < 0 or roas.high < 0
        ):
            return False
        return None

    @property
    def verdict(self) -> str:
        return {True: "improving", False: "not improving", None: "not enough evidence"}[
            self.is_improving
        ]


def estimate(
    treated: Series,
    comparison: Sequence[Series],
    *,
    changed_on: date,
    days: int,
    leave_out: frozenset[date] = frozenset(),
    guards: Guards | None = None,
) -> Estimate | NoEstimate:
    """The effect of a change made on `changed_on` over the `days` days after it, the
    entity `treated` against the `comparison` entities; `leave_out`: baseline days not
    to use (a rule's own window, chosen for being extreme)."""
    guards = guards or Guards()
    if len(comparison) < guards.comparison_entities:
        return NoEstimate(
            f"{len(comparison)} comparable entities not changed over these days; an "
            f"estimate needs at least {guards.comparison_entities}"
        )
    base_days = [
        changed_on - timedelta(days=k)
        for k in range(BASELINE_DAYS, 0, -1)
        if changed_on - timedelta(days=k) not in leave_out
    ]
    post_days = [changed_on + timedelta(days=k) for k in range(1, days + 1)]
    group = {d: _sum(s.get(d, Numbers()) for s in comparison) for d in (*base_days, *post_days)}
    used = [d for d in base_days if d in treated and treated[d].spend > 0 and group[d].spend > 0]
    if len(used) < guards.baseline_days:
        return NoEstimate(
            f"{len(used)} days with delivery in the baseline; an estimate needs "
            f"{guards.baseline_days}"
        )
    t_base = _sum(treated[d] for d in used).vector()
    c_base = _sum(group[d] for d in used).vector()
    if t_base[BASE_METRICS.index("purchases")] < guards.baseline_purchases:
        return NoEstimate(
            f"{t_base[BASE_METRICS.index('purchases')]:.0f} purchases in the baseline; an "
            f"estimate needs {guards.baseline_purchases}"
        )
    if np.any(c_base <= 0) or np.any(t_base <= 0):
        return NoEstimate("the baseline has no clicks or no purchases for the entity or its group")
    share = t_base / c_base
    observed = _sum(treated.get(d, Numbers()) for d in post_days).vector()
    expected = share * _sum(group[d] for d in post_days).vector()
    dispersion = _dispersion(
        np.array([treated[d].vector() for d in used]),
        np.array([group[d].vector() for d in used]) * share,
    )
    dof = len(used) - 1
    if days >= MEASURED_AFTER:
        # the days after are noisier when the change restarted Meta's learning phase:
        # their own dispersion (against their own level), where it is the larger
        after = np.array([treated.get(d, Numbers()).vector() for d in post_days])
        level = observed / np.maximum(_sum(group[d] for d in post_days).vector(), 1e-12)
        noisier = _dispersion(after, np.array([group[d].vector() for d in post_days]) * level)
        if np.trace(noisier) > np.trace(dispersion):
            dispersion, dof = noisier, days - 1
    # the days after are noisy as much as the entity delivered in them (a paused one's
    # zeros have no noise); the baseline's share is noisy as much as its days were
    post_noise = np.sqrt(np.maximum(observed, 1e-12))
    base_noise = expected / np.sqrt(t_base)
    covariance = dispersion * (np.outer(post_noise, post_noise) + np.outer(base_noise, base_noise))
    draws = _t_draws(covariance, dof, seed=len(used) * 1000 + days)
    # the truth of what it would have done anyway, given the data: the estimate ± noise
    anyway = expected[None, :] - draws
    effects = {
        metric: _interval(observed[i] - anyway[:, i]) for i, metric in enumerate(BASE_METRICS)
    }
    observed_derived = _derived(observed)
    anyway_derived = _derived_draws(anyway)
    profit_draws = observed_derived["profit"] - anyway_derived["profit"]  # type: ignore[operator]
    for metric in DERIVED_METRICS:
        value = observed_derived[metric]
        column = anyway_derived[metric]
        if value is None or column is None:
            continue
        effects[metric] = _interval(value - column)
    before = _sum(treated.get(changed_on - timedelta(days=k), Numbers())
                  for k in range(1, days + 1))  # fmt: skip
    return Estimate(
        days=days,
        baseline=(used[0], used[-1]),
        baseline_days=len(used),
        comparison_entities=len(comparison),
        observed=Numbers(*observed),
        expected=Numbers(*expected),
        effects=effects,
        before_after=before_after(before, Numbers(*observed)),
        probability_improving=float(np.mean(profit_draws > 0)),
    )


def before_after(before: Numbers, after: Numbers) -> dict[str, float | None]:
    """The seed's plain deltas: after − before, per metric (None where a ratio is
    undefined on either side)."""
    deltas: dict[str, float | None] = {
        m: getattr(after, m) - getattr(before, m) for m in BASE_METRICS
    }
    b, a = before.derived, after.derived
    for metric in DERIVED_METRICS:
        x, y = b[metric], a[metric]
        deltas[metric] = None if x is None or y is None else y - x
    return deltas


# ------------------------------------------------------------------------ arithmetic


def _sum(items: object) -> Numbers:
    total = Numbers()
    for item in items:  # type: ignore[attr-defined]
        total = total + item
    return total


def _dispersion(treated: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The covariance of the days' Pearson residuals across metrics (quasi-Poisson):
    (T_d − θC_d) / √(θC_d); at least 1 on the diagonal (no less noisy than Poisson)."""
    residuals = (treated - expected) / np.sqrt(np.maximum(expected, 1e-12))
    covariance = np.atleast_2d(np.cov(residuals, rowvar=False, ddof=1))
    variances = np.maximum(np.diag(covariance), 1e-12)
    floor = np.maximum(variances, 1.0)
    correlation = covariance / np.sqrt(np.outer(variances, variances))
    return correlation * np.sqrt(np.outer(floor, floor))


def _t_draws(covariance: np.ndarray, dof: int, *, seed: int) -> np.ndarray:
    """Multivariate Student-t draws with `dof` degrees of freedom around zero."""
    rng = np.random.default_rng(seed)
    normal = rng.multivariate_normal(np.zeros(len(covariance)), covariance, DRAWS,
                                     method="eigh")  # fmt: skip
    chi = rng.chisquare(max(dof, 1), DRAWS) / max(dof, 1)
    return normal / np.sqrt(chi)[:, None]


def _derived(v: np.ndarray) -> dict[str, float | None]:
    spend, revenue, purchases, clicks, impressions = (float(x) for x in v)
    return {
        "profit": revenue - spend,
        "roas": revenue / spend if spend > 0 else None,
        "cpa": spend / purchases if purchases > 0 else None,
        "ctr": clicks / impressions if impressions > 0 else None,
    }


def _derived_draws(v: np.ndarray) -> dict[str, np.ndarray | None]:
    spend, revenue, purchases, clicks, impressions = (v[:, i] for i in range(5))
    with np.errstate(divide="ignore", invalid="ignore"):
        roas = np.where(spend > 0, revenue / spend, np.nan)
        cpa = np.where(purchases > 0, spend / purchases, np.nan)
        ctr = np.where(impressions > 0, clicks / impressions, np.nan)
    return {"profit": revenue - spend, "roas": roas, "cpa": cpa, "ctr": ctr}


def _interval(draws: np.ndarray, level: float = LEVEL) -> Interval:
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return Interval(math.nan, math.nan, math.nan, level)
    tail = (1 - level) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return Interval(float(np.median(finite)), float(low), float(high), level)
