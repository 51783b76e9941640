"""The statistics behind reports and trends, on known values."""

from __future__ import annotations

import statistics

import pytest

from agent_exporter.analytics import (
    Trend,
    classify_trend,
    failure_rate_anomaly,
    interpolate,
    percentile_rank,
    ratio_anomaly,
    theil_sen_slope,
    wilson_lower_bound,
    wilson_upper_bound,
)


def test_wilson_lower_bound_of_three_out_of_three_is_far_below_one() -> None:
    assert wilson_lower_bound(3, 3) == pytest.approx(0.43850, abs=1e-5)


def test_wilson_lower_bound_of_ninety_out_of_a_hundred() -> None:
    assert wilson_lower_bound(90, 100) == pytest.approx(0.82564, abs=1e-5)


def test_three_out_of_three_ranks_below_ninety_out_of_a_hundred() -> None:
    assert wilson_lower_bound(3, 3) < wilson_lower_bound(90, 100)


def test_wilson_interval_brackets_the_rate() -> None:
    assert wilson_lower_bound(42, 100) < 0.42 < wilson_upper_bound(42, 100)
    assert wilson_upper_bound(0, 10) == pytest.approx(0.27753, abs=1e-5)


def test_wilson_bound_of_no_attempts_is_zero() -> None:
    assert wilson_lower_bound(0, 0) == 0.0


def test_interpolated_percentiles_match_the_inclusive_method() -> None:
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0]
    ordered = sorted(values)
    rows = {i + 1: v for i, v in enumerate(ordered)}
    expected = statistics.quantiles(values, n=100, method="inclusive")
    for p in (0.5, 0.95, 0.99):
        assert interpolate(len(values), p, rows) == pytest.approx(expected[round(p * 100) - 1])


def test_percentile_rank_of_ten_values() -> None:
    rank, fraction = percentile_rank(10, 0.5)
    assert (rank, fraction) == (5, 0.5)
    assert percentile_rank(10, 0.95)[0] == 9
    assert percentile_rank(1, 0.99) == (1, 0.0)


def test_theil_sen_slope_of_a_line_is_its_slope() -> None:
    assert theil_sen_slope([(0, 1.0), (1, 3.0), (2, 5.0), (3, 7.0)]) == pytest.approx(2.0)


def test_theil_sen_slope_ignores_one_outlier() -> None:
    points = [(0, 10.0), (1, 11.0), (2, 12.0), (3, 500.0), (4, 14.0), (5, 15.0)]
    assert theil_sen_slope(points) == pytest.approx(1.0)


def test_rising_success_rate_is_improving() -> None:
    points = [(float(d), 0.4 + 0.05 * d) for d in range(7)]
    fit = classify_trend(points, window_days=7, threshold=0.1, higher_is_better=True)
    assert fit.trend is Trend.IMPROVING
    assert fit.slope_per_day == pytest.approx(0.05)
    assert fit.level == pytest.approx(0.55)
    assert fit.change == pytest.approx(0.35)
    assert fit.relative_change == pytest.approx(0.35 / 0.55)


def test_rising_duration_is_declining() -> None:
    points = [(float(d), 60.0 + 3 * d) for d in range(10)]
    fit = classify_trend(points, window_days=30, threshold=0.1, higher_is_better=False)
    assert fit.trend is Trend.DECLINING


def test_falling_cost_is_improving() -> None:
    points = [(float(d), 2.0 - 0.1 * d) for d in range(7)]
    assert (
        classify_trend(points, window_days=7, threshold=0.1, higher_is_better=False).trend is Trend.IMPROVING
    )


def test_a_change_under_the_threshold_is_stable() -> None:
    # +0.1 % a day over 30 days: 3 % change, under a 10 % threshold
    points = [(float(d), 100.0 * (1 + 0.001 * d)) for d in range(30)]
    fit = classify_trend(points, window_days=30, threshold=0.1, higher_is_better=True)
    assert fit.trend is Trend.STABLE
    assert fit.relative_change == pytest.approx(0.03 * 100 / 101.45, rel=1e-3)


def test_the_threshold_is_configurable() -> None:
    points = [(float(d), 100.0 * (1 + 0.001 * d)) for d in range(30)]
    assert (
        classify_trend(points, window_days=30, threshold=0.02, higher_is_better=True).trend is Trend.IMPROVING
    )


def test_four_points_are_insufficient_data() -> None:
    fit = classify_trend(
        [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)], window_days=7, threshold=0.1, higher_is_better=True
    )
    assert fit.trend is Trend.INSUFFICIENT
    assert fit.trend.value == "insufficient data"
    assert fit.points == 4
    assert fit.slope_per_day is None


def test_a_flat_series_at_zero_is_stable() -> None:
    points = [(float(d), 0.0) for d in range(6)]
    assert classify_trend(points, window_days=7, threshold=0.1, higher_is_better=True).trend is Trend.STABLE


def test_failure_rate_anomaly_needs_a_real_rise() -> None:
    assert failure_rate_anomaly(5, 6, 0, 14, min_attempts=5, min_increase=0.1)
    assert not failure_rate_anomaly(2, 3, 0, 14, min_attempts=5, min_increase=0.1)  # too few attempts
    assert not failure_rate_anomaly(3, 20, 2, 20, min_attempts=5, min_increase=0.1)  # 15 % against 10 %


def test_ratio_anomaly_needs_a_positive_baseline() -> None:
    assert ratio_anomaly(30.0, 20.0, 1.5)
    assert not ratio_anomaly(29.0, 20.0, 1.5)
    assert not ratio_anomaly(5.0, 0.0, 1.5)
    assert not ratio_anomaly(None, 1.0, 1.5)


def test_no_success_has_a_lower_bound_of_exactly_zero() -> None:
    # the formula alone leaves float noise (3e-17 at 5 attempts), which would rank candidates by it
    assert {wilson_lower_bound(0, n, z) for n in range(1, 300) for z in (1.959963984540054, 2.5758)} == {0.0}
