"""Reports details the mutation run (make mutate, docs/quality.md) found untested, on aggregates built
by hand: the Wilson interval at the report's confidence, the ranking's tie-breaks, the order of a
timeseries' groups, and the edges of a trend window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent_exporter import read_models as m
from agent_exporter.aggregates import DAY, Aggregate, Bucket
from agent_exporter.analytics import wilson_lower_bound, wilson_upper_bound
from agent_exporter.reports import build_report, build_trends, rated, series

GENERATED = datetime(2026, 12, 4, tzinfo=UTC)
THRESHOLDS = {"success_rate": 0.05, "duration_seconds": 0.1, "cost_per_run_usd": 0.1, "tokens_per_run": 0.1}


def cell(agent: str, successes: int, runs: int, *, model: str = "m", issue_type: str = "bug") -> Aggregate:
    return Aggregate(key=(agent, model, issue_type), runs=runs, successes=successes, duration_sum=10.0 * runs)


def report(cells: list[Aggregate], confidence: float) -> m.ReportOut:
    return build_report(
        cells, min_attempts=1, confidence=confidence, generated_at=GENERATED, filters=m.Filters()
    )


def test_rated_gives_the_wilson_interval_at_the_confidence_asked() -> None:
    a = Aggregate(runs=10, cancelled=2, successes=6, cost_sum=1.5, cost_runs=5, duration_sum=50.0)
    out = rated(a, 1.0)
    assert (out["success_rate_lower"], out["success_rate_upper"]) == (
        wilson_lower_bound(6, 8, 1.0),
        wilson_upper_bound(6, 8, 1.0),
    )
    assert (out["attempts"], out["failures"], out["success_rate"], out["cost_per_success_usd"]) == (
        8,
        2,
        0.75,
        0.25,
    )


def test_rated_has_no_interval_without_attempts() -> None:
    out = rated(Aggregate(runs=2, cancelled=2), 1.96)
    assert (out["success_rate"], out["success_rate_lower"], out["success_rate_upper"]) == (None, None, None)


@pytest.mark.parametrize(("confidence", "best"), [(0.95, "ninety"), (0.5, "three")])
def test_the_recommendation_ranks_by_the_bound_at_the_reports_confidence(
    confidence: float, best: str
) -> None:
    # 3 of 3 against 9 of 10: at 95 % the wide interval of 3 attempts loses, at 50 % it wins
    pick = report([cell("three", 3, 3), cell("ninety", 9, 10)], confidence).recommendations[0].agent
    assert pick is not None
    assert pick.name == best


def test_among_equal_bounds_more_attempts_rank_first() -> None:
    # no success at all: every bound is 0, and the better-tested candidate comes first
    assert wilson_lower_bound(0, 4) == wilson_lower_bound(0, 8) == 0.0
    pick = report([cell("few", 0, 4), cell("many", 0, 8)], 0.95).recommendations[0].agent
    assert pick is not None
    assert (pick.name, pick.runner_up) == ("many", "few")


def groups(aggregates: list[Aggregate]) -> list[tuple[str | None, list[int]]]:
    return [(s.group, [p.runs for p in s.points]) for s in series(aggregates, Bucket(DAY), range(2))]


def test_a_series_lists_groups_by_their_runs_over_every_bucket() -> None:
    b0, b1 = Aggregate(key=("b",), bucket=0, runs=2), Aggregate(key=("b",), bucket=1, runs=2)
    assert groups([b0, b1, Aggregate(key=("a",), bucket=0, runs=3)]) == [("b", [2, 2]), ("a", [3, 0])]


def test_a_series_lists_groups_with_equal_runs_by_name_the_ungrouped_first() -> None:
    cells = [Aggregate(key=(k,), bucket=1, runs=1) for k in ("b", "a")] + [Aggregate(bucket=0, runs=1)]
    assert groups(cells) == [(None, [1, 0]), ("a", [0, 1]), ("b", [0, 1])]


def day(bucket: int, successes: int, runs: int = 10) -> Aggregate:
    return Aggregate(bucket=bucket, runs=runs, successes=successes, duration_sum=30.0 * runs)


def trends(days: list[Aggregate], window: int, min_points: int) -> m.WindowTrend:
    [out] = build_trends(
        days, origin=0.0, end=10 * DAY, windows=[window], thresholds=THRESHOLDS, min_points=min_points
    )
    return out


def test_a_trend_window_holds_its_days_only() -> None:
    days = [day(6, 10), day(7, 5), day(8, 6), day(9, 7)]  # day 6 is before the last 3 days
    out = trends(days, 3, min_points=3)
    assert (out.runs, out.data_points, out.status) == (30, 3, "ok")
    success = out.metrics[0]
    assert (success.metric, success.current, success.data_points) == ("success_rate", 0.6, 3)


def test_exactly_min_points_days_make_a_trend_with_the_minimum_asked() -> None:
    out = trends([day(7, 5), day(8, 6), day(9, 7)], 3, min_points=3)
    success = out.metrics[0]
    assert (out.status, success.trend) == ("ok", "improving")
    assert success.slope_per_day == pytest.approx(0.1, abs=1e-12)
    fewer = trends([day(8, 6), day(9, 7)], 3, min_points=3)
    assert (fewer.status, fewer.metrics[0].trend) == ("insufficient data", "insufficient data")
