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


def test_simes_combines_a_family_into_one_p_value() -> None:
    # the smallest m·p₍ₖ₎/k: 3 · 0.01 / 1 = 0.03 beats 3 · 0.02 / 2 and 3 · 0.5 / 3
    assert stats.simes([0.02, 0.5, 0.01]) == pytest.approx(0.03)
    assert stats.simes([0.9, 0.9]) == pytest.approx(0.9)
    assert stats.simes([]) == 1.0


def test_a_small_family_of_strong_tests_is_not_diluted_by_a_large_one_of_noise() -> None:
    genders = [0.0015, 0.003, 0.4]
    regions = [(i + 0.5) / 50 for i in range(50)]  # fifty tests of nothing: uniform p
    flat = stats.benjamini_hochberg(genders + regions, q=0.05)
    assert not any(flat)  # one correction over 53 tests: 0.0015 > 0.05 / 53
    tiered = stats.hierarchical([genders, regions], q=0.05)
    assert tiered[0][:2] == [True, True] and not tiered[0][2]
    assert not any(tiered[1])


def test_a_family_without_effects_gets_a_discovery_at_most_q_of_the_time() -> None:
    # 4,000 ad sets of ten tables of independent null tests: the chance that one gets any
    # discovery at all is at most q = 0.05 (three standard errors: 0.05 + 0.0103)
    rng = random.Random(9)
    sizes = (18, 6, 3, 10, 4, 3, 4, 8, 7, 24)
    runs = 4000
    any_found = sum(
        any(
            any(f)
            for f in stats.hierarchical([[rng.random() for _ in range(m)] for m in sizes], q=0.05)
        )  # fmt: skip
        for _ in range(runs)
    )
    assert any_found / runs <= 0.05 + 3 * (0.05 * 0.95 / runs) ** 0.5


def test_array_p_values_and_probabilities_match_their_exact_forms() -> None:
    import numpy as np
    from scipy import stats as scipy_stats

    count, spend = np.array([10.0, 40.0, 0.0]), np.array([50.0, 100.0, 5.0])
    rest_count, rest_spend = np.array([100.0, 60.0, 30.0]), np.array([200.0, 100.0, 95.0])
    p = stats.per_spend_p_values(count, spend, rest_count, rest_spend)
    for i in range(3):
        exact = stats.per_spend_p_value(int(count[i]), spend[i], int(rest_count[i]), rest_spend[i])
        assert exact <= p[i] <= min(1.0, 2 * exact)  # the doubled tail: a little conservative
    # P(X < Y) for Gamma posteriors, against a large simulation
    rng = np.random.default_rng(3)
    x = rng.gamma(12.0, 1 / 300.0, 400_000)
    y = rng.gamma(30.0, 1 / 500.0, 400_000)
    below = stats.prob_gamma_below(np.array([12.0]), np.array([300.0]), np.array([30.0]),
                                   np.array([500.0]))  # fmt: skip
    assert below[0] == pytest.approx(np.mean(x < y), abs=0.003)
    low, high = stats.gamma_quantiles(np.array([12.0]), np.array([300.0]))
    assert (low[0], high[0]) == pytest.approx(
        tuple(scipy_stats.gamma.ppf([0.05, 0.95], 12.0, scale=1 / 300.0))
    )
