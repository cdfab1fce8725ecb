"""The statistics suggestions stand on: intervals, shrinkage, tests, false discoveries.

Every number that could move money is a distribution here, not a point:

* **rates** — CTR (clicks per impression), conversion rate (purchases per click): Beta-
  Binomial. A segment's rate is Beta(α₀ + successes, β₀ + failures) with a prior centred
  on its ad set's rate and weighing `prior_strength` trials, so a small segment is shrunk
  toward its ad set and a large one speaks for itself (`rate`);
* **counts per money** — purchases per unit of spend: Gamma-Poisson. Gamma(α₀ + count,
  β₀ + spend), the prior the ad set's rate weighing `prior_spend` of spend (`per_spend`);
* **is a segment different from the rest of its ad set?** — the posterior probability
  that its rate is below the rest's (`prob_below`), and a two-sided p-value: Fisher's
  exact test for rates (a G-test once both sides pass 10,000 trials, where it is as good
  and far cheaper), and for counts per spend the conditional binomial test — given the
  total count, the segment's share is Binomial(total, its share of the spend) when it is
  no different (`rate_p_value`, `per_spend_p_value`);
* **many segments tested in an account** — Benjamini–Hochberg: of m tests, those whose
  p-values stay under the step-up line k·q/m, so that the expected share of false
  discoveries among the suggestions is at most q (`benjamini_hochberg`).

Intervals are equal-tailed credible intervals of the posterior at `level` (90 % by
default). Assumptions, stated where they are used (README, "Suggestions"): trials are
independent given the segment's rate (no day-to-day drift within the period), and a
segment's traffic is not chosen by its own performance within the period (Meta's
delivery optimisation breaks this mildly: the intervals are then somewhat narrow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

LEVEL = 0.9
FISHER_LIMIT = 10_000  # trials per side up to which the exact test is used


@dataclass(frozen=True)
class Interval:
    """An estimate with its credible interval at `level`."""

    estimate: float
    low: float
    high: float
    level: float = LEVEL

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _check(name: str, value: float, *, positive: bool = False) -> None:
    if value < 0 or (positive and value == 0) or not np.isfinite(value):
        raise ValueError(f"{name} must be {'above' if positive else 'at least'} 0, not {value}")


def rate(
    successes: int,
    trials: int,
    *,
    prior_rate: float,
    prior_strength: float,
    level: float = LEVEL,
) -> Interval:
    """A rate's posterior (Beta-Binomial): `successes` of `trials`, shrunk toward
    `prior_rate` with the weight of `prior_strength` trials."""
    _check("successes", successes)
    _check("prior_strength", prior_strength, positive=True)
    if successes > trials:
        raise ValueError(f"successes ({successes}) must not exceed trials ({trials})")
    if not 0 < prior_rate < 1:
        raise ValueError(f"prior_rate must be between 0 and 1, not {prior_rate}")
    a = prior_rate * prior_strength + successes
    b = (1 - prior_rate) * prior_strength + trials - successes
    tail = (1 - level) / 2
    low, high = stats.beta.ppf([tail, 1 - tail], a, b)
    return Interval(a / (a + b), float(low), float(high), level)


def per_spend(
    count: int,
    spend: float,
    *,
    prior_rate: float,
    prior_spend: float,
    level: float = LEVEL,
) -> Interval:
    """Counts per unit of spend (Gamma-Poisson): `count` over `spend`, shrunk toward
    `prior_rate` with the weight of `prior_spend`."""
    _check("count", count)
    _check("spend", spend)
    _check("prior_rate", prior_rate, positive=True)
    _check("prior_spend", prior_spend, positive=True)
    a = prior_rate * prior_spend + count
    b = prior_spend + spend
    tail = (1 - level) / 2
    low, high = stats.gamma.ppf([tail, 1 - tail], a, scale=1 / b)
    return Interval(a / b, float(low), float(high), level)


def beta_posterior(
    successes: int, trials: int, *, prior_rate: float, prior_strength: float
) -> tuple[float, float]:
    """The (α, β) of `rate`'s posterior."""
    return (
        prior_rate * prior_strength + successes,
        (1 - prior_rate) * prior_strength + trials - successes,
    )


def prob_below(first: tuple[float, float], second: tuple[float, float]) -> float:
    """P(X < Y) for X ~ Beta(first), Y ~ Beta(second): the posterior probability that the
    first rate is the lower one (numerical integration on a fine grid)."""
    grid = np.linspace(0.0, 1.0, 4001)
    density = stats.beta.pdf(grid, *first)
    above = stats.beta.sf(grid, *second)  # P(Y > x)
    value = np.trapezoid(density * above, grid)
    return float(min(1.0, max(0.0, value)))


def rate_p_value(successes: int, trials: int, rest_successes: int, rest_trials: int) -> float:
    """Two-sided p-value that a segment's rate equals the rest's."""
    table = [[successes, trials - successes], [rest_successes, rest_trials - rest_successes]]
    if min(trials, rest_trials) <= FISHER_LIMIT:
        return float(stats.fisher_exact(table).pvalue)
    if (
        successes + rest_successes == 0
        or (trials - successes) + (rest_trials - rest_successes) == 0
    ):
        return 1.0  # nothing (or everything) succeeded on both sides: no difference seen
    return float(stats.chi2_contingency(table, lambda_="log-likelihood").pvalue)


def per_spend_p_value(count: int, spend: float, rest_count: int, rest_spend: float) -> float:
    """Two-sided p-value that a segment's counts per spend equal the rest's (conditional
    binomial test)."""
    total = count + rest_count
    if total == 0 or spend + rest_spend <= 0:
        return 1.0
    return float(stats.binomtest(count, total, spend / (spend + rest_spend)).pvalue)


def per_spend_p_values(
    count: np.ndarray, spend: np.ndarray, rest_count: np.ndarray, rest_spend: np.ndarray
) -> np.ndarray:
    """`per_spend_p_value` for arrays of segments at once: two-sided by doubling the
    smaller tail of the conditional binomial (a little more conservative than the
    smallest-likelihood method `binomtest` uses, and a thousand times cheaper)."""
    total = count + rest_count
    share = spend / np.maximum(spend + rest_spend, 1e-300)
    low = stats.binom.cdf(count, total, share)
    high = stats.binom.sf(count - 1, total, share)
    p = np.minimum(1.0, 2 * np.minimum(low, high))
    return np.where((total > 0) & (spend + rest_spend > 0), p, 1.0)


def gamma_quantiles(
    shape: np.ndarray, rate: np.ndarray, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """The equal-tailed interval at `level` of Gamma(shape, rate) posteriors, arrays."""
    tail = (1 - level) / 2
    return special.gammaincinv(shape, tail) / rate, special.gammaincinv(shape, 1 - tail) / rate


def prob_gamma_below(
    shape: np.ndarray, rate: np.ndarray, other_shape: np.ndarray, other_rate: np.ndarray
) -> np.ndarray:
    """P(X < Y) for X ~ Gamma(shape, rate), Y ~ Gamma(other_shape, other_rate): exactly,
    since rate·X / (rate·X + other_rate·Y) is Beta(shape, other_shape)."""
    return special.betainc(shape, other_shape, rate / (rate + other_rate))


def benjamini_hochberg(p_values: Sequence[float], q: float = 0.1) -> list[bool]:
    """Which of the tests are discoveries at false discovery rate `q` (step-up)."""
    if not 0 < q < 1:
        raise ValueError(f"q must be between 0 and 1, not {q}")
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    passed = 0
    for rank, index in enumerate(order, start=1):
        if p_values[index] <= rank * q / m:
            passed = rank  # the largest rank under the line: it and every smaller p pass
    chosen = set(order[:passed])
    return [i in chosen for i in range(m)]


def simes(p_values: Sequence[float]) -> float:
    """Simes' combination: a p-value for "none of these tests has an effect" — the
    smallest m·p₍ₖ₎/k — valid when the tests are positively dependent."""
    ordered = sorted(p_values)
    m = len(ordered)
    return min(1.0, min(m * p / k for k, p in enumerate(ordered, start=1))) if m else 1.0


def hierarchical(families: Sequence[Sequence[float]], q: float = 0.1) -> list[list[bool]]:
    """Which tests are discoveries when they come in families (the tables of one ad
    set): each family's Simes p-value, Benjamini–Hochberg across the families at `q`,
    then within each of the R selected families of m Benjamini–Hochberg at q·R/m
    (Benjamini & Bogomolov 2014) — the false discovery rate is controlled on average
    over the selected families, and when no test has an effect, the chance of any
    discovery at all is at most `q`. A family of many weak tests (fifty regions) no
    longer dilutes one of three strong ones (the genders), as one flat correction over
    all of them would."""
    tested = [i for i, family in enumerate(families) if family]
    chosen = benjamini_hochberg([simes(families[i]) for i in tested], q=q) if tested else []
    selected = [i for i, ok in zip(tested, chosen, strict=True) if ok]
    level = q * len(selected) / len(tested) if tested else 0.0
    return [
        benjamini_hochberg(family, q=level) if i in selected else [False] * len(family)
        for i, family in enumerate(families)
    ]
