"""The rule for orders and ties (`aebook.comparisons`), against hand computations."""

import math

import numpy as np
import pytest

from aebook.claims import Claims
from aebook.comparisons import ahead, level, on_splits, split_means


def test_ahead_uses_the_t_interval_with_n_minus_1_degrees_of_freedom():
    # mean 2, sd 1, n 3: the 95% half-width is t(2) = 4.303 times 1 / sqrt(3)
    v = ahead([1.0, 2.0, 3.0])
    assert v.mean == pytest.approx(2.0)
    assert v.low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert not v  # the interval reaches below 0: no order can be claimed
    assert ahead([2.0, 2.1, 1.9, 2.05, 1.95])
    assert not ahead([-1.0, -1.1, -0.9])  # behind, not ahead


def test_five_splits_need_t4_not_two_standard_errors():
    # mean 1, standard error 0.42: more than 2 standard errors above 0, fewer than
    # t(4) = 2.776 of them
    gaps = [1 + 1.188 * d for d in (1.0, -1.0, 0.5, -0.5, 0.0)]
    mean = sum(gaps) / 5
    se = math.sqrt(sum((g - mean) ** 2 for g in gaps) / 4 / 5)
    assert 2 * se < mean < 2.776 * se
    assert not ahead(gaps)


def test_level_is_two_one_sided_tests_inside_the_margin():
    v = level([0.01, -0.01, 0.02, 0.0, -0.02], margin=0.05)
    assert v and v.margin == 0.05 and v.confidence == 0.90
    assert -0.05 < v.low < v.high < 0.05
    assert not level([0.04, 0.05, 0.045, 0.05], margin=0.05)  # near the edge


def test_a_noisier_measurement_makes_a_tie_harder_not_easier():
    quiet = [0.01, -0.01, 0.0, 0.01, -0.01]
    noisy = [0.3, -0.3, 0.0, 0.3, -0.3]  # the same mean, 30 times the spread
    assert level(quiet, margin=0.05)
    assert not level(noisy, margin=0.05)
    # while a failure to find a difference would have called the noisy pair a tie
    assert not ahead(noisy) and not ahead([-g for g in noisy])


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="at least 2 paired gaps"):
        ahead([1.0])
    with pytest.raises(ValueError, match="finite"):
        ahead([1.0, float("nan")])
    with pytest.raises(ValueError, match="margin must be positive"):
        level([0.0, 0.1], margin=0)


def test_a_verdict_is_a_claims_holds_and_its_numbers_are_recorded():
    claims = Claims("02_undercomplete", "mnist5k")
    v = level([0.01, -0.01, 0.0], margin=0.05)
    claims("A and B are level within 0.05", v, **v.measured())
    record = claims.results["A and B are level within 0.05"]
    assert record["holds"] and set(record["measured"]) == {
        "mean_gap",
        "low",
        "high",
        "n",
        "margin",
    }


def test_a_verdict_is_a_plain_bool_whatever_the_numbers_are():
    # a margin computed from NumPy numbers once made the verdict a numpy.bool, which
    # Python's bool() refuses to take from __bool__
    gaps = np.array([0.01, -0.01, 0.0])
    for v in (level(gaps, margin=np.float64(0.05)), ahead(gaps + np.float64(1.0))):
        assert type(v.holds) is bool and all([v, v]) and bool(v)


def test_ahead_by_a_declared_lead_needs_the_interval_above_it():
    gaps = [3.2, 3.4, 3.3, 3.5, 3.1]
    assert ahead(gaps, by=3.0)
    assert ahead(gaps, by=3.0).measured()["by"] == 3.0
    v = ahead(gaps, by=3.3)  # the mean is 3.3: the interval reaches below the lead
    assert v.mean == pytest.approx(3.3) and not v
    assert "by" not in ahead(gaps).measured()
    with pytest.raises(ValueError, match="lead"):
        ahead(gaps, by=-1.0)


def test_split_means_pairs_the_items_in_contiguous_parts():
    x = np.arange(10.0)
    assert split_means(x, 5).tolist() == [0.5, 2.5, 4.5, 6.5, 8.5]
    assert split_means(np.arange(7.0), 3).tolist() == [1.0, 3.5, 5.5]  # 3, 2, 2
    with pytest.raises(ValueError, match="splits"):
        split_means([1.0, 2.0], 5)


def test_on_splits_scores_each_part_once_and_in_order():
    seen = []
    out = on_splits(lambda s: seen.append((s.start, s.stop)) or s.stop - s.start, 7, 3)
    assert seen == [(0, 3), (3, 5), (5, 7)] and out.tolist() == [3.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="splits"):
        on_splits(len, 3, 1)
