"""Boundaries of the statistics the mutation run (make mutate, docs/quality.md) found untested: the
edges of each rule, where `<` and `<=` part ways, and the estimators on data that tells them apart."""

from __future__ import annotations

import pytest

from agent_exporter.analytics import (
    Trend,
    TrendFit,
    classify_trend,
    failure_rate_anomaly,
    interpolate,
    ratio_anomaly,
    theil_sen_slope,
    wilson_upper_bound,
)

#: a steady climb of one a day around a median of 10
CLIMB = [(0.0, 8.0), (1.0, 9.0), (2.0, 10.0), (3.0, 11.0), (4.0, 12.0)]


def test_exactly_min_points_is_enough_for_a_trend_and_one_fewer_is_not() -> None:
    fit = classify_trend(CLIMB, window_days=1.0, threshold=0.5, higher_is_better=True)
    assert fit == TrendFit(5, Trend.STABLE, slope_per_day=1.0, level=10.0, change=1.0, relative_change=0.1)
    short = classify_trend(CLIMB[:4], window_days=1.0, threshold=0.5, higher_is_better=True)
    assert short == TrendFit(points=4, trend=Trend.INSUFFICIENT)


def test_points_all_on_one_day_have_no_slope_and_no_trend() -> None:
    same_day = [(1.0, float(y)) for y in range(6)]
    fit = classify_trend(same_day, window_days=7.0, threshold=0.1, higher_is_better=True)
    assert fit == TrendFit(points=6, trend=Trend.INSUFFICIENT)
    assert theil_sen_slope(same_day) is None


def test_a_change_of_exactly_the_threshold_is_a_trend() -> None:
    # slope 1 x 1 day = 1.0 on a level of 10: a relative change of exactly 0.1
    up = classify_trend(CLIMB, window_days=1.0, threshold=0.1, higher_is_better=True)
    assert (up.trend, up.relative_change) == (Trend.IMPROVING, 0.1)
    assert (
        classify_trend(CLIMB, window_days=1.0, threshold=0.1, higher_is_better=False).trend is Trend.DECLINING
    )


def test_theil_sen_takes_the_median_of_every_pair_once() -> None:
    # pairwise slopes 1, 1, 1, 10/3, 4.5, 8: the median is (1 + 10/3) / 2 = 13/6
    assert theil_sen_slope([(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 10.0)]) == pytest.approx(13 / 6)


def test_failure_rate_rule_counts_periods_of_exactly_min_attempts() -> None:
    assert failure_rate_anomaly(30, 40, 10, 40, min_attempts=40, min_increase=0.1)
    assert not failure_rate_anomaly(30, 39, 10, 40, min_attempts=40, min_increase=0.1)
    assert not failure_rate_anomaly(30, 40, 10, 39, min_attempts=40, min_increase=0.1)


def test_failure_rate_up_by_exactly_min_increase_is_an_anomaly() -> None:
    # 0.75 against 0.25: up by exactly 0.5, and the window's Wilson bound (0.598) is above 0.25
    assert failure_rate_anomaly(30, 40, 10, 40, min_attempts=10, min_increase=0.5)
    assert not failure_rate_anomaly(30, 40, 10, 40, min_attempts=10, min_increase=0.51)


def test_failure_rate_rule_needs_both_the_increase_and_the_bound() -> None:
    # up by 0.1 only (0.5 against 0.4) although the window's bound (0.469) is above 0.4
    assert not failure_rate_anomaly(500, 1000, 400, 1000, min_attempts=10, min_increase=0.2)
    # up by 0.9, but 9 of 10 has a bound (0.43 at z = 3) below the baseline 0.5
    assert failure_rate_anomaly(9, 10, 5, 10, min_attempts=10, min_increase=0.1)
    assert not failure_rate_anomaly(9, 10, 5, 10, min_attempts=10, min_increase=0.1, z=3.0)


def test_no_failure_at_all_is_never_an_anomaly() -> None:
    assert not failure_rate_anomaly(0, 10, 0, 10, min_attempts=10, min_increase=0.0)


def test_a_ratio_rule_compares_against_a_baseline_below_one() -> None:
    assert ratio_anomaly(1.0, 0.5, 2.0)
    assert not ratio_anomaly(0.99, 0.5, 2.0)
    assert not ratio_anomaly(5.0, 0.0, 2.0)


def test_interpolate_edges() -> None:
    assert interpolate(0, 0.5, {1: 5.0}) is None
    assert interpolate(1, 0.99, {1: 7.0}) == 7.0
    # the median of 3 is row 2 exactly: row 3 is not needed
    assert interpolate(3, 0.5, {2: 4.0}) == 4.0
    # halfway between rows 2 and 3 of 4, but row 3 is missing: row 2 stands
    assert interpolate(4, 0.5, {2: 3.0}) == 3.0


def test_wilson_upper_bound_edges_and_its_own_z() -> None:
    assert wilson_upper_bound(0, 0) == 1.0
    assert wilson_upper_bound(0, 1) == pytest.approx(0.79345, abs=1e-5)
    assert wilson_upper_bound(6, 8, 1.0) == pytest.approx(0.86921, abs=1e-5)  # 0.92852 at z = 1.96
