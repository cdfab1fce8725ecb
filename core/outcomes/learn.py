"""Confidence learned from outcomes, and how well calibrated it is.

A suggestion states a confidence: the probability that applying it improves profit over
the following 7 days (the suggestion engine's prior, core/suggestions/confidence.py).
Each measured outcome says how it went with its uncertainty — the estimated profit
effect and its interval (core/outcomes/estimate.py, from its 7-day checkpoint). A week's
noise is large beside many effects, so counting "improved" verdicts, or averaging each
outcome's probability of improvement, would pull every kind toward a coin toss.

**Learned, per kind** (`learned`): the kind's true effects, relative to each entity's
weekly spend so that large and small ad sets pool, have some distribution; each outcome
measures its own with its standard error. That distribution is estimated without
assuming its shape (`_share_above_zero`: non-parametric maximum likelihood on a grid),
and the kind's rate of improvement is its mass above zero — the measurement noise taken
out. It starts from the kind's mean stated confidence weighing `PRIOR_OUTCOMES` outcomes
(a Beta whose successes and failures are the outcomes' count at that rate), so a kind
with few outcomes stays near its prior and its interval shows how little is known. A
new suggestion's confidence is its own prior moved by what its kind learned, on the
log-odds scale (`recalibrated`).

**Calibration** (`calibration`): the stated confidences in `BINS` bins against the share
that improved in each, and the expected calibration error — the bins' gaps weighted by
their sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from core.suggestions.stats import LEVEL, Interval

PRIOR_OUTCOMES = 5.0  # the prior weighs this many outcomes
GRID = 201  # points of the true effects' distribution
EM_STEPS = 300
BINS = 10


@dataclass(frozen=True)
class Learned:
    """A kind's probability of improvement, learned from `outcomes` measured outcomes."""

    prior: float  # the mean confidence its suggestions stated
    rate: Interval  # the posterior: estimate (mean) and its interval
    outcomes: int


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    stated: float  # the mean stated confidence in it
    observed: float  # the mean outcome in it


@dataclass(frozen=True)
class Calibration:
    bins: list[Bin]
    error: float  # the expected calibration error
    count: int


def learned(
    stated: Sequence[float],
    effects: Sequence[Interval],
    scales: Sequence[float],
    *,
    level: float = LEVEL,
) -> Learned:
    """The kind's rate of improvement from the confidences its measured suggestions
    stated, their profit effects (with intervals) and each entity's weekly spend before
    the change (`scales`: the effects are pooled relative to it)."""
    if not len(stated) == len(effects) == len(scales):
        raise ValueError("one stated confidence, effect and scale per outcome")
    prior = _clip(sum(stated) / len(stated)) if stated else 0.5
    kept = [(e, s) for e, s in zip(effects, scales, strict=True)
            if s > 0 and math.isfinite(e.estimate) and e.high > e.low]  # fmt: skip
    rate = prior
    if kept:
        z_level = float(scipy_stats.norm.ppf(0.5 + kept[0][0].level / 2))
        values = [e.estimate / s for e, s in kept]
        variances = [((e.high - e.low) / (2 * z_level) / s) ** 2 for e, s in kept]
        rate = _share_above_zero(values, variances)
    n = len(kept)
    alpha = PRIOR_OUTCOMES * prior + n * rate
    beta = PRIOR_OUTCOMES * (1 - prior) + n * (1 - rate)
    tail = (1 - level) / 2
    low, high = scipy_stats.beta.ppf([tail, 1 - tail], alpha, beta)
    return Learned(prior, Interval(alpha / (alpha + beta), float(low), float(high), level), n)


def _share_above_zero(values: Sequence[float], variances: Sequence[float]) -> float:
    """The share of true effects above zero, given effects measured with known variances:
    the distribution of the true effects estimated without assuming its shape (the
    non-parametric maximum likelihood of Kiefer and Wolfowitz, on a grid, by EM), then
    its mass above zero. A kind whose changes mostly lose and sometimes win (pauses gain
    exactly where ROAS was below 1) keeps both; one normal would not."""
    x = np.asarray(values, dtype=float)
    sd = np.sqrt(np.maximum(np.asarray(variances, dtype=float), 1e-18))
    grid = np.linspace(float(np.min(x - 3 * sd)), float(np.max(x + 3 * sd)), GRID)
    likelihood = scipy_stats.norm.pdf((x[:, None] - grid[None, :]) / sd[:, None]) / sd[:, None]
    weights = np.full(GRID, 1 / GRID)
    for _ in range(EM_STEPS):
        posterior = likelihood * weights
        posterior /= np.maximum(posterior.sum(axis=1, keepdims=True), 1e-300)
        weights = posterior.mean(axis=0)
    return float(weights[grid > 0].sum())


def recalibrated(confidence: float, kind: Learned) -> float:
    """A suggestion's prior confidence moved by what its kind learned: log-odds plus the
    kind's learned log-odds less its prior's."""
    shift = _logit(kind.rate.estimate) - _logit(kind.prior)
    return _expit(_logit(_clip(confidence)) + shift)


def calibration(
    stated: Sequence[float], outcomes: Sequence[float], bins: int = BINS
) -> Calibration:
    """Reliability: stated confidence against the share that improved, per bin of equal
    width, and the expected calibration error Σ (n_b / N) · |stated_b − observed_b|."""
    if len(stated) != len(outcomes):
        raise ValueError("one stated confidence per outcome")
    grouped: list[list[tuple[float, float]]] = [[] for _ in range(bins)]
    for s, o in zip(stated, outcomes, strict=True):
        grouped[min(int(s * bins), bins - 1)].append((s, o))
    made = [
        Bin(i / bins, (i + 1) / bins, len(g), sum(s for s, _ in g) / len(g),
            sum(o for _, o in g) / len(g))
        for i, g in enumerate(grouped) if g
    ]  # fmt: skip
    total = len(stated)
    error = sum(b.count / total * abs(b.stated - b.observed) for b in made) if total else 0.0
    return Calibration(made, error, total)


def _clip(p: float) -> float:
    return min(max(p, 1e-4), 1 - 1e-4)


def _logit(p: float) -> float:
    p = _clip(p)
    return math.log(p / (1 - p))


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))
