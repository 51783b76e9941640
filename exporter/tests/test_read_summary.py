"""GET /api/v1/summary and /api/v1/timeseries: figures, percentiles, groups, buckets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent_exporter.sketch import RELATIVE_ACCURACY

from .readfixtures import at, post, ten_runs
from .support import make_client, record


@pytest.fixture
def api(store_url: str, registry: CollectorRegistry) -> Iterator[TestClient]:
    """The app on each backend, with the ten fixture runs stored."""
    with make_client(store_url, registry) as client:
        post(client, ten_runs())
        yield client


def sketched(expected: Any) -> Any:
    """A percentile read from the rollups' sketches: within their stated relative error."""
    return pytest.approx(expected, rel=RELATIVE_ACCURACY)


def summary(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/summary", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_summary_counts_runs_by_outcome(api: TestClient) -> None:
    s = summary(api)["summary"]
    assert (s["runs"], s["cancelled"], s["attempts"], s["successes"], s["failures"]) == (10, 0, 10, 6, 4)
    assert s["success_rate"] == pytest.approx(0.6)
    assert s["statuses"] == {"success": 6, "failure": 2, "error": 1, "timeout": 1}


def cancelled_runs() -> list[dict[str, Any]]:
    """Three cancelled runs beside the ten: two of fixer on Monday, one of reviewer on Tuesday, each
    lasting 20 s and costing 1 USD (a cancelled run has spent what it spent)."""
    return [
        record(
            f"c{i}",
            agent=agent,
            status="cancelled",
            ended_at=at(day),
            duration_seconds=20.0,
            cost_usd=1.0,
            error_type="superseded",
        )
        for i, (agent, day) in enumerate((("fixer", 0.25), ("fixer", 0.75), ("reviewer", 1.25)))
    ]


@pytest.fixture
def with_cancelled(store_url: str, registry: CollectorRegistry) -> Iterator[TestClient]:
    """The ten fixture runs and three cancelled ones, on each backend."""
    with make_client(store_url, registry) as client:
        post(client, ten_runs() + cancelled_runs())
        yield client


def test_cancelled_runs_change_neither_the_success_rate_nor_the_failures(with_cancelled: TestClient) -> None:
    s = summary(with_cancelled)["summary"]
    assert (s["runs"], s["cancelled"], s["attempts"], s["successes"], s["failures"]) == (13, 3, 10, 6, 4)
    assert s["success_rate"] == pytest.approx(0.6)  # as without them
    assert s["statuses"] == {"success": 6, "failure": 2, "error": 1, "timeout": 1, "cancelled": 3}


def test_cancelled_runs_still_count_in_duration_and_cost(with_cancelled: TestClient) -> None:
    s = summary(with_cancelled)["summary"]
    assert s["duration_mean_seconds"] == pytest.approx(115.0 / 13)  # 55 s of the ten, 60 s cancelled
    assert s["cost_usd"] == pytest.approx(7.5)
    assert s["cost_per_success_usd"] == pytest.approx(7.5 / 6)


def test_cancelled_runs_leave_each_groups_success_rate_alone(with_cancelled: TestClient) -> None:
    groups = {g["group"]: g for g in summary(with_cancelled, group_by="agent")["groups"]}
    fixer, reviewer = groups["fixer"], groups["reviewer"]
    assert (fixer["runs"], fixer["cancelled"], fixer["attempts"], fixer["failures"]) == (7, 2, 5, 1)
    assert fixer["success_rate"] == pytest.approx(4 / 5)
    assert (reviewer["runs"], reviewer["cancelled"], reviewer["attempts"], reviewer["failures"]) == (
        6,
        1,
        5,
        3,
    )
    assert reviewer["success_rate"] == pytest.approx(2 / 5)


def test_only_cancelled_runs_have_no_success_rate(with_cancelled: TestClient) -> None:
    s = summary(with_cancelled, status="cancelled")["summary"]
    assert (s["runs"], s["cancelled"], s["attempts"], s["successes"], s["failures"]) == (3, 3, 0, 0, 0)
    assert s["success_rate"] is None


def test_cancelled_runs_leave_each_days_success_rate_alone(with_cancelled: TestClient) -> None:
    points = timeseries(with_cancelled, bucket="day", **{"from": at(0), "to": at(3)})["series"][0]["points"]
    assert [(p["runs"], p["cancelled"], p["attempts"], p["failures"]) for p in points] == [
        (4, 2, 2, 0),
        (3, 1, 2, 0),
        (2, 0, 2, 1),
    ]
    assert [p["success_rate"] for p in points] == pytest.approx([1.0, 1.0, 0.5])


def test_summary_duration_percentiles_interpolate_linearly(api: TestClient) -> None:
    s = summary(api)["summary"]
    assert s["duration_mean_seconds"] == pytest.approx(5.5)
    assert s["duration_p50_seconds"] == sketched(5.5)
    assert s["duration_p95_seconds"] == sketched(9.55)
    assert s["duration_p99_seconds"] == sketched(9.91)
    assert s["duration_max_seconds"] == pytest.approx(10.0)


def test_summary_percentiles_of_a_filtered_odd_count(api: TestClient) -> None:
    s = summary(api, agent="fixer")["summary"]  # durations 1, 3, 5, 7, 9
    assert s["duration_p50_seconds"] == sketched(5.0)
    assert s["duration_p95_seconds"] == sketched(8.6)
    assert s["duration_p99_seconds"] == sketched(8.92)


def test_summary_of_a_single_run_has_its_duration_as_every_percentile(api: TestClient) -> None:
    s = summary(api, status="timeout")["summary"]
    assert [s["duration_p50_seconds"], s["duration_p95_seconds"], s["duration_p99_seconds"]] == sketched(
        [9.0, 9.0, 9.0]
    )


def test_summary_tokens_and_calls_per_run(api: TestClient) -> None:
    s = summary(api)["summary"]
    assert (s["input_tokens"], s["output_tokens"], s["total_tokens"]) == (45_000, 4_500, 49_500)
    assert s["tokens_per_run"] == pytest.approx(5500.0)  # over the nine runs that reported tokens
    assert s["cache_read_tokens"] == 4_500
    assert s["cache_hit_ratio"] == pytest.approx(0.1)
    assert (s["llm_calls"], s["tool_calls"]) == (55, 110)
    assert s["llm_calls_per_run"] == pytest.approx(5.5)
    assert s["tool_calls_per_run"] == pytest.approx(11.0)


def test_summary_cost_leaves_unknown_costs_out(api: TestClient) -> None:
    s = summary(api)["summary"]
    assert s["cost_usd"] == pytest.approx(4.5)
    assert s["runs_without_cost"] == 1
    assert s["cost_per_run_usd"] == pytest.approx(0.5)  # 4.5 over the nine runs with a cost
    assert s["cost_per_success_usd"] == pytest.approx(0.75)  # 4.5 over six successes


def test_summary_of_nothing_is_zero_runs_and_null_rates(api: TestClient) -> None:
    s = summary(api, agent="nobody")["summary"]
    assert s["runs"] == 0
    assert s["success_rate"] is None
    assert s["duration_p50_seconds"] is None
    assert s["cost_per_run_usd"] is None


def test_summary_echoes_its_filters(api: TestClient) -> None:
    filters = summary(api, agent=["fixer", "reviewer"], **{"from": at(1)})["filters"]
    assert filters["agent"] == ["fixer", "reviewer"]
    assert filters["from"] == at(1)
    assert filters["to"] is None


def test_summary_groups_by_agent(api: TestClient) -> None:
    body = summary(api, group_by="agent")
    groups = {g["group"]: g for g in body["groups"]}
    assert body["group_by"] == "agent"
    assert (groups["fixer"]["runs"], groups["fixer"]["successes"]) == (5, 4)
    assert (groups["reviewer"]["runs"], groups["reviewer"]["successes"]) == (5, 2)
    assert groups["reviewer"]["statuses"] == {"success": 2, "failure": 2, "error": 1}
    assert groups["fixer"]["duration_p50_seconds"] == sketched(5.0)
    assert groups["reviewer"]["duration_p50_seconds"] == sketched(6.0)
    assert groups["reviewer"]["cost_usd"] == pytest.approx(2.0)  # r02 r04 r06 r08; r10 unknown


def test_summary_groups_by_status(api: TestClient) -> None:
    groups = {g["group"]: g["runs"] for g in summary(api, group_by="status")["groups"]}
    assert groups == {"success": 6, "failure": 2, "error": 1, "timeout": 1}


def test_groups_come_largest_first(api: TestClient) -> None:
    groups = summary(api, group_by="issue_type", status="success")["groups"]
    assert [(g["group"], g["runs"]) for g in groups] == [("complexity", 5), ("security", 1)]


def test_an_unknown_group_by_is_422(api: TestClient) -> None:
    response = api.get("/api/v1/summary", params={"group_by": "run_id"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("group_by: ")


def timeseries(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/timeseries", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_daily_timeseries_fills_empty_days(api: TestClient) -> None:
    body = timeseries(api, bucket="day", **{"from": at(0), "to": at(7)})
    points = body["series"][0]["points"]
    assert body["bucket_seconds"] == 86400
    assert [p["start"] for p in points] == [at(d) for d in range(7)]
    assert [p["runs"] for p in points] == [2, 2, 2, 2, 2, 0, 0]
    assert [p["successes"] for p in points] == [2, 2, 1, 1, 0, 0, 0]
    assert points[4]["statuses"] == {"timeout": 1, "failure": 1}
    assert points[6]["success_rate"] is None


def test_daily_timeseries_percentiles_per_day(api: TestClient) -> None:
    points = timeseries(api, bucket="day", **{"from": at(0), "to": at(5)})["series"][0]["points"]
    assert [p["duration_p50_seconds"] for p in points] == sketched([1.5, 3.5, 5.5, 7.5, 9.5])
    assert points[0]["duration_p95_seconds"] == sketched(1.95)
    assert [p["cost_usd"] for p in points] == pytest.approx([0.3, 0.7, 1.1, 1.5, 0.9])


def test_weekly_timeseries_starts_on_monday(api: TestClient) -> None:
    points = timeseries(api, bucket="week")["series"][0]["points"]
    assert [(p["start"], p["runs"]) for p in points] == [(at(0), 10)]


def test_hourly_timeseries_without_a_range_spans_the_runs(api: TestClient) -> None:
    points = timeseries(api, bucket="hour")["series"][0]["points"]
    assert len(points) == 4 * 24 + 12 + 1  # from r01's hour to r10's
    assert sum(p["runs"] for p in points) == 10
    assert points[0]["start"] == at(0)


def test_timeseries_groups_make_one_series_each(api: TestClient) -> None:
    body = timeseries(api, bucket="day", group_by="model", **{"from": at(0), "to": at(5)})
    series = {s["group"]: [p["runs"] for p in s["points"]] for s in body["series"]}
    assert series == {"claude-sonnet-4-5": [2, 2, 2, 0, 0], "gpt-5": [0, 0, 0, 2, 2]}


def test_timeseries_of_an_empty_range_has_empty_buckets(api: TestClient) -> None:
    body = timeseries(api, bucket="day", **{"from": at(10), "to": at(12)})
    assert [p["runs"] for p in body["series"][0]["points"]] == [0, 0]


def test_too_many_buckets_are_422(api: TestClient) -> None:
    response = api.get("/api/v1/timeseries", params={"bucket": "hour", "from": at(-400), "to": at(0)})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("bucket: 9600 hour buckets")


def test_timeseries_of_a_backfill_spread_over_a_week(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(
            client,
            [record(f"b{d}", ended_at=at(d + 0.25), duration_seconds=10.0 * (d + 1)) for d in range(7)],
        )
        points = timeseries(client, bucket="day")["series"][0]["points"]
    assert [p["duration_mean_seconds"] for p in points] == pytest.approx([10.0 * (d + 1) for d in range(7)])
