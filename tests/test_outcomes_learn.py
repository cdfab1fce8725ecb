"""core.outcomes.learn: a kind's confidence learned from measured outcomes — near its prior
with few, its truth with many, the measurement noise taken out — and calibration as the
reliability bins and the expected calibration error."""

from __future__ import annotations

import random

import pytest

from core.outcomes.learn import PRIOR_OUTCOMES, calibration, learned, recalibrated
from core.suggestions.stats import Interval


def outcomes(true_effects: list[float], noise: float, seed: int) -> list[Interval]:
    """Each true effect measured with a normal error of sd `noise` (90 % intervals)."""
    rng = random.Random(seed)
    made = []
    for effect in true_effects:
        measured = effect + rng.gauss(0, noise)
        made.append(Interval(measured, measured - 1.645 * noise, measured + 1.645 * noise))
    return made


def test_a_kind_with_few_outcomes_stays_near_its_prior_and_says_how_little_it_knows() -> None:
    two = learned([0.7, 0.7], outcomes([-50.0, -40.0], 10.0, 1), [100.0, 100.0])
    assert two.outcomes == 2 and two.prior == pytest.approx(0.7)
    # two clearly bad outcomes against a prior worth five: moved, not overturned
    assert 0.4 < two.rate.estimate < 0.7 and two.rate.width > 0.4


def test_many_noisy_outcomes_learn_the_true_rate_not_a_coin_toss() -> None:
    # every change of the kind truly gains 20 % of its spend, each measured with an error
    # as large as its effect: half the outcomes alone look like nothing
    true = [20.0] * 80
    measured = outcomes(true, 20.0, 2)
    naive = sum(i.low > 0 for i in measured) / len(measured)
    assert naive < 0.6  # counting credible improvements says "about half"
    kind = learned([0.5] * 80, measured, [100.0] * 80)
    assert kind.rate.estimate > 0.85 and kind.rate.low > 0.8  # the truth: all improve
    # and a kind whose changes truly all lose
    losing = learned([0.5] * 80, outcomes([-20.0] * 80, 20.0, 3), [100.0] * 80)
    assert losing.rate.estimate < 0.1


def test_a_suggestion_s_confidence_moves_with_what_its_kind_learned() -> None:
    kind = learned([0.7] * 60, outcomes([-30.0] * 60, 10.0, 4), [100.0] * 60)
    assert recalibrated(0.7, kind) == pytest.approx(kind.rate.estimate)
    assert recalibrated(0.9, kind) > recalibrated(0.7, kind)  # its own prior still counts
    unmoved = learned([], [], [])  # nothing measured: no shift
    assert unmoved.rate.estimate == pytest.approx(unmoved.prior)
    assert recalibrated(0.8, unmoved) == pytest.approx(0.8)
    assert PRIOR_OUTCOMES > 0


def test_calibration_bins_the_stated_confidence_against_what_happened() -> None:
    stated = [0.15] * 10 + [0.85] * 10
    happened = [1.0] * 2 + [0.0] * 8 + [1.0] * 6 + [0.0] * 4  # 20 % and 60 % came true
    result = calibration(stated, happened)
    assert [(b.count, b.stated, b.observed) for b in result.bins] == [
        (10, pytest.approx(0.15), pytest.approx(0.2)),
        (10, pytest.approx(0.85), pytest.approx(0.6)),
    ]
    assert result.error == pytest.approx(0.5 * 0.05 + 0.5 * 0.25)
    assert calibration([0.3] * 10, [1.0] * 3 + [0.0] * 7).error == pytest.approx(0.0)
    with pytest.raises(ValueError, match="one stated confidence per outcome"):
        calibration([0.5], [])
