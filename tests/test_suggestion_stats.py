"""core.suggestions.stats: the intervals, shrinkage, tests and false-discovery control
that every suggestion stands on — checked against known values and, by simulation with
a fixed seed, for what they promise (coverage, error rates)."""

from __future__ import annotations

import random

import pytest

from core.suggestions import stats


def test_a_flat_prior_and_no_data_give_the_uniform_interval() -> None:
    # Beta(1, 1) is the uniform distribution: its 5 % and 95 % quantiles are 0.05, 0.95
    empty = stats.rate(0, 0, prior_rate=0.5, prior_strength=2)
    assert (empty.estimate, empty.low, empty.high) == pytest.approx((0.5, 0.05, 0.95))
    assert empty.level == 0.9


def test_small_segments_are_shrunk_toward_their_ad_set_large_ones_speak_for_themselves() -> None:
    ad_set = 0.02  # the ad set converts 2 % of clicks
    small = stats.rate(2, 4, prior_rate=ad_set, prior_strength=200)
    large = stats.rate(5_000, 10_000, prior_rate=ad_set, prior_strength=200)
    assert small.estimate == pytest.approx((0.02 * 200 + 2) / 204)  # near the ad set's 2 %
    assert small.estimate < 0.05 and large.estimate > 0.49
    assert large.width < small.width * 0.5  # more data, a narrower interval
    assert large.estimate == pytest.approx((0.02 * 200 + 5_000) / 10_200)  # within 1 % of 0.5
    assert not small.contains(0.5)  # two sales in four clicks say little


def test_intervals_cover_the_truth_as_often_as_they_say() -> None:
    rng = random.Random(11)
    covered = 0
    runs = 2000
    for _ in range(runs):
        truth = rng.uniform(0.01, 0.2)
        trials = rng.randint(50, 2000)
        successes = sum(rng.random() < truth for _ in range(trials))
        # a weak prior (a few trials' worth) at a plausible rate
        if stats.rate(successes, trials, prior_rate=0.05, prior_strength=2).contains(truth):
            covered += 1
    # a 90 % interval: with 2,000 runs the share covered is 0.90 ± 0.02 (three standard
    # errors of a proportion, sqrt(0.9 · 0.1 / 2000) ≈ 0.0067); it fails if the interval
    # is too narrow (overconfident) or too wide
    assert 0.88 <= covered / runs <= 0.92


def test_counts_per_spend_have_a_gamma_posterior_shrunk_the_same_way() -> None:
    thin = stats.per_spend(1, 10.0, prior_rate=0.05, prior_spend=100.0)
    assert thin.estimate == pytest.approx((0.05 * 100 + 1) / 110)
    thick = stats.per_spend(500, 10_000.0, prior_rate=0.01, prior_spend=100.0)
    assert thick.estimate == pytest.approx((0.01 * 100 + 500) / 10_100)
    assert thick.low < 0.05 < thick.high and thick.width < thin.width
    with pytest.raises(ValueError, match="spend"):
        stats.per_spend(1, -5.0, prior_rate=0.05, prior_spend=100.0)


def test_the_probability_one_rate_is_below_another() -> None:
    same = stats.beta_posterior(30, 1000, prior_rate=0.03, prior_strength=10)
    assert stats.prob_below(same, same) == pytest.approx(0.5, abs=1e-3)
    low = stats.beta_posterior(10, 1000, prior_rate=0.03, prior_strength=10)
    high = stats.beta_posterior(60, 1000, prior_rate=0.03, prior_strength=10)
    assert stats.prob_below(low, high) > 0.999
    assert stats.prob_below(high, low) < 0.001
    assert stats.prob_below(low, high) + stats.prob_below(high, low) == pytest.approx(1, abs=1e-3)


def test_p_values_find_real_differences_and_not_noise() -> None:
    assert stats.rate_p_value(30, 1000, 300, 10_000) > 0.5  # the same 3 %
    assert stats.rate_p_value(10, 1000, 600, 10_000) < 1e-6  # 1 % against 6 %
    # past the exact test's limit the G-test answers the same question
    assert stats.rate_p_value(300, 20_000, 3_000, 200_000) > 0.5
    assert stats.rate_p_value(100, 20_000, 6_000, 200_000) < 1e-6
    assert stats.rate_p_value(0, 50_000, 0, 60_000) == 1.0  # nothing converted anywhere
    # purchases per dollar: 10 % of the spend and 10 % of the purchases — no difference
    assert stats.per_spend_p_value(20, 100.0, 180, 900.0) > 0.5
    assert stats.per_spend_p_value(2, 300.0, 198, 700.0) < 1e-6  # 30 % of spend, 1 % of sales
    assert stats.per_spend_p_value(0, 0.0, 0, 0.0) == 1.0


def test_under_no_difference_p_values_are_uniform_so_a_5_percent_test_errs_5_percent() -> None:
    rng = random.Random(5)
    errors = 0
    runs = 1000
    for _ in range(runs):
        n1, n2 = rng.randint(200, 800), rng.randint(2000, 6000)
        s1 = sum(rng.random() < 0.04 for _ in range(n1))
        s2 = sum(rng.random() < 0.04 for _ in range(n2))
        errors += stats.rate_p_value(s1, n1, s2, n2) < 0.05
    # Fisher's test is conservative (at most 5 %); with 1,000 runs a rate above 6.9 %
    # (three standard errors above 5 %) means the test calls noise a difference
    assert errors / runs <= 0.069


def test_benjamini_hochberg_on_the_papers_own_example() -> None:
    # Benjamini & Hochberg (1995), section 4: 15 p-values, q = 0.05 → the 4 smallest
    p_values = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
                0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000]  # fmt: skip
    shuffled = p_values[7:] + p_values[:7]  # the order they come in does not matter
    chosen = stats.benjamini_hochberg(shuffled, q=0.05)
    assert sorted(p for p, c in zip(shuffled, chosen, strict=True) if c) == p_values[:4]
    assert stats.benjamini_hochberg([], q=0.1) == []
    assert stats.benjamini_hochberg([0.5, 0.9], q=0.1) == [False, False]
    with pytest.raises(ValueError, match="q"):
        stats.benjamini_hochberg([0.01], q=1.5)


def test_bad_inputs_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="exceed trials"):
        stats.rate(5, 4, prior_rate=0.1, prior_strength=10)
    with pytest.raises(ValueError, match="prior_rate"):
        stats.rate(1, 4, prior_rate=0.0, prior_strength=10)
    with pytest.raises(ValueError, match="prior_strength"):
        stats.rate(1, 4, prior_rate=0.1, prior_strength=0)
