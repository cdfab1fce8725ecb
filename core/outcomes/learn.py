"""Confidence learned from outcomes, and how well calibrated it is.

A suggestion states a confidence: the probability that applying it improves profit over
the following 7 days (the suggestion engine's prior, core/suggestions/confidence.py).
Each measured outcome says how it went with its uncertainty — the estimated profit
effect and its interval (core/outcomes/estimate.py, from its 7-day checkpoint). A week's
noise is large beside many effects, so counting "improved" verdicts, or averaging each
outcome's probability of improvement, would pull every kind toward a coin toss.

**Learned, per kind** (`learned`): the kind's true effects, relative to each entity's
weekly spend so that large and small ad sets pool, are taken as normal with a mean μ and
a spread τ, each outcome measuring its own with its standard error (random effects,
fitted by the DerSimonian–Laird moments). The kind's rate of improvement is then the
share of its true effects above zero, Φ(μ / √(τ² + se(μ)²)) — the measurement noise
taken out. It starts from the kind's mean stated confidence weighing `PRIOR_OUTCOMES`
outcomes (a Beta whose successes and failures are the outcomes' count at that rate), so
a kind with few outcomes stays near its prior and its interval shows how little is
known. A new suggestion's confidence is its own prior moved by what its kind learned, on
the log-odds scale (`recalibrated`).

**Calibration** (`calibration`): the stated confidences in `BINS` bins against the share
that improved in each, and the expected calibration error — the bins' gaps weighted by
their sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

from core.suggestions.stats import LEVEL, Interval

PRIOR_OUTCOMES = 5.0  # the prior weighs this many outcomes
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
        mean, spread, error = _random_effects(values, variances)
        # each outcome's true effect, shrunk toward its kind's: P(above zero), averaged
        chances = []
        for x, v in zip(values, variances, strict=True):
            if spread <= 0:
                centre, var = mean, error**2
            else:
                precision = 1 / v + 1 / spread
                centre = (x / v + mean / spread) / precision
                var = 1 / precision + error**2 * (v / (v + spread)) ** 2
            chances.append(float(scipy_stats.norm.cdf(centre / math.sqrt(max(var, 1e-18)))))
        rate = sum(chances) / len(chances)
    n = len(kept)
    alpha = PRIOR_OUTCOMES * prior + n * rate
    beta = PRIOR_OUTCOMES * (1 - prior) + n * (1 - rate)
    tail = (1 - level) / 2
    low, high = scipy_stats.beta.ppf([tail, 1 - tail], alpha, beta)
    return Learned(prior, Interval(alpha / (alpha + beta), float(low), float(high), level), n)


def _random_effects(
    values: Sequence[float], variances: Sequence[float]
) -> tuple[float, float, float]:
    """(μ, τ², se(μ)) of values measured with known variances (DerSimonian–Laird)."""
    w = [1 / max(v, 1e-12) for v in variances]
    fixed = sum(wi * x for wi, x in zip(w, values, strict=True)) / sum(w)
    q = sum(wi * (x - fixed) ** 2 for wi, x in zip(w, values, strict=True))
    c = sum(w) - sum(wi**2 for wi in w) / sum(w)
    spread = max(0.0, (q - (len(values) - 1)) / c) if c > 0 else 0.0
    w = [1 / (v + spread) for v in variances]
    mean = sum(wi * x for wi, x in zip(w, values, strict=True)) / sum(w)
    return mean, spread, math.sqrt(1 / sum(w))


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
