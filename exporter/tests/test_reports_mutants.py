"""Reports details the mutation run (make mutate, docs/quality.md) found untested, on aggregates built
by hand: the Wilson interval at the report's confidence, the ranking's tie-breaks, the order of a
timeseries' groups, and the edges of a trend window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from agent_exporter import read_models as m
from agent_exporter.aggregates import DAY, Aggregate, Bucket
from agent_exporter.analytics import wilson_lower_bound, wilson_upper_bound
from agent_exporter.queries import ErrorGroup, Streak
from agent_exporter.reports import (
    AnomalyRules,
    _first_line,
    _plural,
    anomalies,
    build_report,
    build_trends,
    error_group_out,
    figures,
    findings,
    human_duration,
    rated,
    series,
    totals,
    z_for,
)

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


def test_the_figures_of_an_aggregate_field_by_field() -> None:
    a = Aggregate(
        runs=10,
        cancelled=2,
        successes=6,
        statuses={"success": 6, "failure": 2, "cancelled": 2},
        duration_percentiles={0.5: 30.0, 0.95: 90.0, 0.99: 120.0},
        duration_sum=400.0,
        duration_max=130.0,
        input_tokens=8000,
        output_tokens=2000,
        cache_read_tokens=4000,
        cache_write_tokens=500,
        reasoning_tokens=300,
        token_runs=8,
        cost_sum=3.0000004,
        cost_runs=5,
        llm_calls=40,
        llm_runs=8,
        tool_calls=25,
        tool_runs=10,
        first_ended_at=datetime(2026, 12, 3, tzinfo=UTC).timestamp(),
        last_ended_at=datetime(2026, 12, 4, tzinfo=UTC).timestamp(),
    )
    assert figures(a).model_dump() == {
        "runs": 10,
        "cancelled": 2,
        "attempts": 8,
        "successes": 6,
        "failures": 2,
        "success_rate": 0.75,
        "statuses": {"success": 6, "failure": 2, "cancelled": 2},
        "duration_mean_seconds": 40.0,
        "duration_p50_seconds": 30.0,
        "duration_p95_seconds": 90.0,
        "duration_p99_seconds": 120.0,
        "duration_max_seconds": 130.0,
        "input_tokens": 8000,
        "output_tokens": 2000,
        "total_tokens": 10000,
        "cache_read_tokens": 4000,
        "cache_write_tokens": 500,
        "reasoning_tokens": 300,
        "tokens_per_run": 1250.0,
        "cache_hit_ratio": 0.5,
        "cost_usd": 3.0,
        "cost_per_run_usd": 3.0000004 / 5,
        "cost_per_success_usd": 3.0000004 / 6,
        "runs_without_cost": 5,
        "llm_calls": 40,
        "llm_calls_per_run": 5.0,
        "tool_calls": 25,
        "tool_calls_per_run": 2.5,
        "first_ended_at": datetime(2026, 12, 3, tzinfo=UTC),
        "last_ended_at": datetime(2026, 12, 4, tzinfo=UTC),
    }


def test_a_summary_is_cut_to_its_first_line_and_two_hundred_characters() -> None:
    assert _first_line("  first line\nsecond line") == "first line"
    assert _first_line("x" * 200) == "x" * 200
    assert _first_line("y" * 201) == "y" * 199 + "…"
    assert _first_line("z" * 12, limit=10) == "z" * 9 + "…"
    assert _first_line(" \n ") == ""


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert [_plural(n, "cancelled run") for n in (0, 1, 2)] == [
        "0 cancelled runs",
        "1 cancelled run",
        "2 cancelled runs",
    ]


def test_the_ungrouped_series_comes_before_any_named_group_of_as_many_runs() -> None:
    cells = [Aggregate(key=("A",), bucket=0, runs=1), Aggregate(bucket=1, runs=1)]
    assert groups(cells) == [(None, [0, 1]), ("A", [1, 0])]


def mixed() -> list[Aggregate]:
    """gamma's cell first: the order the groups first appear in is not their order by name."""
    return [
        cell("gamma", 0, 5, model="m1", issue_type="docs"),
        cell("beta", 3, 3, model="m2", issue_type="feature"),
        cell("alpha", 2, 3, model="m1", issue_type="bug"),
        cell("alpha", 1, 2, model="m2", issue_type="bug"),
    ]


def test_the_report_rows_most_runs_first_then_by_name_with_what_each_relates_to() -> None:
    out = build_report(mixed(), min_attempts=5, confidence=0.95, generated_at=GENERATED, filters=m.Filters())
    assert [(r.agent, r.runs, r.models, r.issue_types) for r in out.by_agent] == [
        ("alpha", 5, ["m1", "m2"], ["bug"]),
        ("gamma", 5, ["m1"], ["docs"]),
        ("beta", 3, ["m2"], ["feature"]),
    ]
    # m2's 5 attempts are exactly the minimum asked: sufficient
    assert [(r.model, r.runs, r.agents, r.issue_types, r.sufficient) for r in out.by_model] == [
        ("m1", 8, ["alpha", "gamma"], ["bug", "docs"], True),
        ("m2", 5, ["alpha", "beta"], ["bug", "feature"], True),
    ]
    assert [(r.issue_type, r.runs, r.agents, r.models) for r in out.by_issue_type] == [
        ("bug", 5, ["alpha"], ["m1", "m2"]),
        ("docs", 5, ["gamma"], ["m1"]),
        ("feature", 3, ["beta"], ["m2"]),
    ]


def test_a_pick_names_its_agent_or_model_and_the_runner_ups_bound_at_the_reports_confidence() -> None:
    cells = [cell("alpha", 2, 3, model="m1"), cell("alpha", 1, 2, model="m2")]
    z = z_for(0.5)
    [bug] = report(cells, 0.5).recommendations
    assert bug.agent is not None
    assert bug.model is not None
    assert (bug.agent.name, bug.agent.agent, bug.agent.model, bug.agent.runner_up) == (
        "alpha",
        "alpha",
        None,
        None,
    )
    assert (bug.model.name, bug.model.agent, bug.model.model, bug.model.runner_up) == ("m1", None, "m1", "m2")
    assert bug.model.runner_up_success_rate_lower == wilson_lower_bound(1, 2, z) != wilson_lower_bound(1, 2)


def test_candidates_alike_in_bound_and_attempts_rank_by_name_whatever_their_order() -> None:
    [x] = report([cell("zeta", 0, 2), cell("eta", 0, 2)], 0.95).recommendations
    assert x.agent is not None
    assert (x.agent.name, x.agent.runner_up) == ("eta", "zeta")


RATED = Aggregate(
    runs=10,
    cancelled=2,
    successes=6,
    duration_sum=400.0,
    duration_percentiles={0.5: 30.0, 0.95: 90.0},
    input_tokens=8000,
    output_tokens=2000,
    token_runs=8,
    cost_sum=3.0000004,
    cost_runs=5,
    confidence_sum=4.5,
    confidence_runs=6,
    quality_sum=2.8,
    quality_runs=4,
)


def test_rated_field_by_field() -> None:
    assert rated(RATED, 1.0) == {
        "runs": 10,
        "cancelled": 2,
        "attempts": 8,
        "successes": 6,
        "failures": 2,
        "success_rate": 0.75,
        "success_rate_lower": wilson_lower_bound(6, 8, 1.0),
        "success_rate_upper": wilson_upper_bound(6, 8, 1.0),
        "cost_usd": 3.0,
        "cost_per_run_usd": 3.0000004 / 5,
        "cost_per_success_usd": 3.0000004 / 6,
        "duration_mean_seconds": 40.0,
        "tokens_per_run": 1250.0,
        "mean_confidence": 0.75,
        "mean_quality_score": 2.8 / 4,
    }


def test_totals_field_by_field() -> None:
    assert totals(RATED).model_dump() == {
        "runs": 10,
        "cancelled": 2,
        "attempts": 8,
        "successes": 6,
        "failures": 2,
        "success_rate": 0.75,
        "cost_usd": 3.0,
        "duration_p95_seconds": 90.0,
    }


def test_the_summary_counts_runs_without_cost_and_no_cost_per_success_without_any_cost() -> None:
    cells = [Aggregate(key=("a", "m", "bug"), runs=4, successes=2, cost_sum=2.0, cost_runs=3)]
    summary = report(cells, 0.95).summary
    assert (summary.total_cost_usd, summary.cost_per_success_usd, summary.runs_without_cost) == (2.0, 1.0, 1)
    free = report([cell("a", 2, 4)], 0.95).summary
    assert (free.cost_per_success_usd, free.runs_without_cost) == (None, 4)


def test_candidates_with_exactly_the_minimum_attempts_count_and_the_model_pick_skips_no_model() -> None:
    cells = [
        cell("a", 1, 2, model="m1"),
        cell("b", 1, 1, model="m1"),
        Aggregate(key=("c", None, "bug"), runs=5, successes=5),  # the best record, of no model
    ]
    [bug] = build_report(
        cells, min_attempts=2, confidence=0.95, generated_at=GENERATED, filters=m.Filters()
    ).recommendations
    assert (bug.candidates, bug.below_min_attempts) == (2, 1)  # (a, m1) at exactly 2; (b, m1) at 1
    assert bug.model is not None
    assert (bug.model.name, bug.model.runner_up) == ("m1", None)


def window_only(totals: Aggregate, errors: Sequence[ErrorGroup] = ()) -> list[str]:
    """The digest of a 24-hour window with these totals and error groups, and nothing else."""
    return findings(
        window_label="24h",
        window_totals=totals,
        streaks=[],
        anomalies_found=[],
        last_failure=None,
        errors=list(errors),
        as_of=0.0,
    )


def test_a_window_of_cancelled_runs_only_says_so_with_its_cost() -> None:
    said = window_only(Aggregate(runs=2, cancelled=2, cost_sum=1.5, cost_runs=2))
    assert said == ["Last 24h: 2 runs, all cancelled, USD 1.50."]


def test_the_digest_says_one_run_not_one_runs() -> None:
    one = [ErrorGroup("oom", 1, 1, 0.0, 1.0, {"failure": 1}, "r-1", "fixer", None)]
    said = window_only(Aggregate(runs=1, statuses={"failure": 1}), one)
    assert said == [
        "Last 24h: 1 run, 0% succeeded (0 of 1), 1 failed.",
        "Most frequent error in the last 24h: oom (1 run, 1 agent).",
    ]
    cancelled = window_only(Aggregate(runs=1, cancelled=1))
    assert cancelled == ["Last 24h: 1 run, all cancelled."]


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-5, "0s"),
        (0.4, "0s"),
        (59, "59s"),
        (60, "1m"),
        (90, "1.5m"),
        (119, "2.0m"),
        (640, "11m"),
        (700, "12m"),
        (3600, "60m"),
        (7199, "120m"),
        (7200, "2h"),
        (9000, "2.5h"),
        (DAY + 12 * 3600, "36h"),
        (2 * DAY, "2d"),
        (12 * DAY, "12d"),
    ],
)
def test_a_duration_in_words(seconds: float, said: str) -> None:
    assert human_duration(seconds) == said


def digest(streak: Streak, failure: m.Failure | None, errors: list[ErrorGroup]) -> list[str]:
    return findings(
        window_label="24h",
        window_totals=Aggregate(runs=4, successes=1),
        streaks=[streak],
        anomalies_found=[],
        last_failure=failure,
        errors=errors,
        as_of=10_000.0,
    )


def failed(error_type: str | None, summary: str | None) -> m.Failure:
    at = datetime(2026, 12, 4, tzinfo=UTC)
    return m.Failure(
        run_id="r-9",
        agent="fixer",
        status="failure",
        started_at=at,
        ended_at=at,
        duration_seconds=1.0,
        cost_source="unknown",
        error_type=error_type,
        error_summary=summary,
        age_seconds=90.0,
    )


def errors_of(agents: int, error_type: str | None = None) -> list[ErrorGroup]:
    return [ErrorGroup(error_type, 3, agents, 0.0, 1.0, {"failure": 3}, "r-9", "fixer", None)]


def test_the_digest_words_a_streak_the_latest_failure_and_the_commonest_error() -> None:
    bounded = Streak(
        "fixer", 3, since=10_000.0 - 7200, last=9_000.0, error_types=["lint", "test"], bounded=True
    )
    said = digest(bounded, failed(None, "  first line\nsecond"), errors_of(1))
    assert said[1:] == [
        "fixer has failed its last at least 3 runs, since 2h ago; error types: lint, test.",
        "Most recent failure: run r-9 (fixer), 1.5m ago, status failure: first line.",
        "Most frequent error in the last 24h: unspecified (3 runs, 1 agent).",
    ]
    plain = Streak("fixer", 2, since=10_000.0 - 60, last=9_990.0, error_types=[], bounded=False, cancelled=1)
    said = digest(plain, failed("timeout", None), errors_of(2, "oom"))
    assert said[1:] == [
        "fixer has failed its last 2 runs (1 cancelled run ignored), since 1m ago.",
        "Most recent failure: run r-9 (fixer), 1.5m ago, timeout.",
        "Most frequent error in the last 24h: oom (3 runs, 2 agents).",
    ]


def found(
    window: dict[str, Aggregate], baseline: dict[str, Aggregate]
) -> list[tuple[str, str, float, float]]:
    out = anomalies(window, baseline, rules=AnomalyRules(), window_seconds=DAY, baseline_seconds=DAY)
    return [(a.agent, a.metric, a.window_value, a.baseline_value) for a in out]


def test_silence_needs_the_minimum_of_runs_before_and_none_now() -> None:
    assert found({}, {"fixer": Aggregate(runs=5, successes=5)}) == [("fixer", "silence", 0, 5.0)]
    assert found({}, {"fixer": Aggregate(runs=4, successes=4)}) == []
    steady = Aggregate(runs=5, successes=5)
    assert found({"fixer": steady}, {"fixer": steady}) == []


def test_a_failure_rate_anomaly_is_worded_with_the_cancelled_runs_left_out() -> None:
    window = Aggregate(runs=21, cancelled=1, successes=2)  # 18 of 20 attempts failed
    baseline = Aggregate(runs=20, successes=18)  # 2 of 20
    out = anomalies(
        {"fixer": window}, {"fixer": baseline}, rules=AnomalyRules(), window_seconds=DAY, baseline_seconds=DAY
    )
    assert [(a.metric, a.window_value, a.baseline_value, a.message) for a in out] == [
        (
            "failure_rate",
            0.9,
            0.1,
            "fixer: failure rate 90% (18 of 20 runs, 1 cancelled left out) in the last 24h against 10% "
            "in the 24h before",
        )
    ]


def test_a_p95_duration_anomaly_needs_the_minimum_of_runs_on_both_sides() -> None:
    def runs(n: int, p95: float) -> Aggregate:
        return Aggregate(runs=n, successes=n, duration_percentiles={0.95: p95})

    assert found({"fixer": runs(5, 300.0)}, {"fixer": runs(5, 100.0)}) == [
        ("fixer", "duration_p95_seconds", 300.0, 100.0)
    ]
    assert found({"fixer": runs(4, 300.0)}, {"fixer": runs(50, 100.0)}) == []
    assert found({"fixer": runs(50, 300.0)}, {"fixer": runs(4, 100.0)}) == []


def spending(n: int, *, p95: float, usd: float, tokens: int, priced: int | None = None) -> Aggregate:
    """n runs; `priced` of them (n by default) with a cost and tokens, `usd` and `tokens` in all."""
    k = n if priced is None else priced
    return Aggregate(
        runs=n,
        successes=n,
        duration_percentiles={0.95: p95},
        cost_sum=usd,
        cost_runs=k,
        input_tokens=tokens * 4 // 5,
        output_tokens=tokens // 5,
        token_runs=k,
    )


def test_duration_cost_and_token_anomalies_are_worded_with_their_ratio() -> None:
    window = spending(5, p95=300.0, usd=5.0, tokens=50_000)
    baseline = spending(5, p95=100.0, usd=2.5, tokens=25_000)
    out = anomalies(
        {"fixer": window},
        {"fixer": baseline},
        rules=AnomalyRules(),
        window_seconds=DAY,
        baseline_seconds=7 * DAY,
    )
    assert [(a.agent, a.metric, a.window_value, a.baseline_value, a.message) for a in out] == [
        (
            "fixer",
            "duration_p95_seconds",
            300.0,
            100.0,
            "fixer: p95 duration 5m in the last 24h, 3.0× the 1.7m of the 7d before",
        ),
        (
            "fixer",
            "cost_per_run_usd",
            1.0,
            0.5,
            "fixer: USD 1.00 per run in the last 24h, 2.0× the USD 0.50 of the 7d before",
        ),
        (
            "fixer",
            "tokens_per_run",
            10_000.0,
            5_000.0,
            "fixer: 10,000 tokens per run in the last 24h, 2.0× the 5,000 of the 7d before",
        ),
    ]


def test_cost_and_token_anomalies_need_the_minimum_of_priced_runs_on_both_sides() -> None:
    def metrics(window: Aggregate, baseline: Aggregate) -> list[str]:
        return [metric for _, metric, _, _ in found({"fixer": window}, {"fixer": baseline})]

    few = spending(20, p95=300.0, usd=4.0, tokens=40_000, priced=4)
    many = spending(20, p95=100.0, usd=5.0, tokens=25_000)
    assert metrics(few, many) == ["duration_p95_seconds"]
    assert metrics(
        spending(20, p95=300.0, usd=20.0, tokens=100_000),
        spending(20, p95=100.0, usd=1.0, tokens=4_000, priced=4),
    ) == ["duration_p95_seconds"]


def test_without_any_cost_there_is_no_cost_per_success() -> None:
    free = Aggregate(runs=2, successes=2)
    assert (figures(free).cost_per_success_usd, rated(free, 1.96)["cost_per_success_usd"]) == (None, None)


def test_a_failure_rate_anomaly_without_cancelled_runs_says_nothing_of_them() -> None:
    out = anomalies(
        {"fixer": Aggregate(runs=20, successes=2)},
        {"fixer": Aggregate(runs=20, successes=18)},
        rules=AnomalyRules(),
        window_seconds=DAY,
        baseline_seconds=DAY,
    )
    assert [a.message for a in out] == [
        "fixer: failure rate 90% (18 of 20 runs) in the last 24h against 10% in the 24h before"
    ]


def test_an_error_group_as_the_digest_shows_it_field_by_field() -> None:
    group = ErrorGroup("oom", 3, 2, DAY, 2 * DAY, {"failure": 2, "error": 1}, "r-9", "fixer", "killed")
    assert error_group_out(group).model_dump() == {
        "error_type": "oom",
        "runs": 3,
        "agents": 2,
        "statuses": {"failure": 2, "error": 1},
        "first_seen": datetime(1970, 1, 2, tzinfo=UTC),
        "last_seen": datetime(1970, 1, 3, tzinfo=UTC),
        "latest_run_id": "r-9",
        "latest_agent": "fixer",
        "latest_summary": "killed",
    }
