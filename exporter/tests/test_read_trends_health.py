"""GET /api/v1/trends (rolling windows, Theil-Sen) and /api/v1/health (the operational digest)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent_exporter.aggregates import Aggregate
from agent_exporter.reports import AnomalyRules, anomalies

from .readfixtures import DAY, WEEK, at, post
from .support import make_client, record


def week_of_runs(days: range) -> list[dict[str, Any]]:
    """Ten runs a day on `days` (k-th day counted from the first): 4+k succeed, each lasts 60 s, costs
    1.0 + 0.1·k USD and uses 10000 - 1000·k tokens. Success rate and cost rise, tokens fall. And k+1
    cancelled runs a day, alike in all but status: they change no metric (counted as failures, they
    would make the success rate (4+k)/(11+2k), a falling line)."""
    runs = []
    for k, day in enumerate(days):
        for i in range(10 + k + 1):
            runs.append(
                record(
                    f"d{day}-{i}",
                    ended_at=at(day + 0.5 + i / 100),
                    status="success" if i < 4 + k else "failure" if i < 10 else "cancelled",
                    duration_seconds=60.0,
                    cost_usd=round(1.0 + 0.1 * k, 10),
                    input_tokens=10_000 - 1000 * k,
                    output_tokens=0,
                )
            )
    return runs


def trends(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/trends", params={"to": at(14), **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def metrics(window: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in window["metrics"]}


def test_trends_classify_a_known_week(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, week_of_runs(range(7, 14)))
        body = trends(client)
    week = body["windows"][0]
    assert (week["days"], week["runs"], week["data_points"], week["status"]) == (7, 98, 7, "ok")
    assert (week["from"], week["to"]) == (at(7), at(14))
    m = metrics(week)
    assert m["success_rate"]["trend"] == "improving"
    assert m["success_rate"]["slope_per_day"] == pytest.approx(0.1)
    assert m["success_rate"]["level"] == pytest.approx(0.7)
    assert m["success_rate"]["change"] == pytest.approx(0.7)
    assert m["success_rate"]["relative_change"] == pytest.approx(1.0)
    assert m["success_rate"]["current"] == pytest.approx(0.7)
    assert m["duration_seconds"]["trend"] == "stable"
    assert m["duration_seconds"]["slope_per_day"] == pytest.approx(0.0)
    assert m["cost_per_run_usd"]["trend"] == "declining"  # cost going up is bad news
    assert m["cost_per_run_usd"]["slope_per_day"] == pytest.approx(0.1)
    # cost per run is over every run: the (11+k)·(1+0.1·k) USD of the days over their 98 runs
    assert m["cost_per_run_usd"]["current"] == pytest.approx(130.2 / 98)
    assert m["tokens_per_run"]["trend"] == "improving"
    assert m["tokens_per_run"]["slope_per_day"] == pytest.approx(-1000.0)


def test_longer_windows_see_the_same_days_over_a_longer_span(
    store_url: str, registry: CollectorRegistry
) -> None:
    with make_client(store_url, registry) as client:
        post(client, week_of_runs(range(7, 14)))
        body = trends(client)
    assert [(w["days"], w["runs"], w["data_points"]) for w in body["windows"]] == [
        (7, 98, 7),
        (30, 98, 7),
        (90, 98, 7),
    ]
    month = metrics(body["windows"][1])
    assert month["success_rate"]["change"] == pytest.approx(3.0)  # 0.1 a day over 30 days


def test_fewer_than_five_days_are_insufficient_data(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, week_of_runs(range(10, 14)))
        week = trends(client)["windows"][0]
    assert (week["data_points"], week["status"]) == (4, "insufficient data")
    assert {m["trend"] for m in week["metrics"]} == {"insufficient data"}
    assert metrics(week)["success_rate"]["current"] == pytest.approx(0.55)
    assert metrics(week)["success_rate"]["slope_per_day"] is None


def test_thresholds_are_configurable(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, week_of_runs(range(7, 14)))
        loose = metrics(trends(client, window=7, threshold=2.0)["windows"][0])
        mixed = metrics(trends(client, window=7, threshold=2.0, cost_threshold=0.2)["windows"][0])
    assert loose["success_rate"]["trend"] == "stable"
    assert loose["cost_per_run_usd"]["trend"] == "stable"
    assert mixed["cost_per_run_usd"]["trend"] == "declining"
    assert mixed["cost_per_run_usd"]["threshold"] == 0.2


def test_a_bad_window_is_422(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        response = client.get("/api/v1/trends", params={"window": 0})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("window: ")


def incident() -> list[dict[str, Any]]:
    """Before at(13), the baseline week: steady and fine 2 successes a day, quiet 5. In the last 24 h
    before at(14): fine 6 successes; steady 1 success then 5 failures, with a cancelled run between
    the first two failures and another after the last one (someone stopped them: neither successes
    nor failures); quiet nothing."""
    runs = []
    for day in range(6, 13):
        for i in range(2):
            runs.append(record(f"steady-{day}-{i}", agent="steady", ended_at=at(day + 0.1 + i / 10)))
            runs.append(record(f"fine-{day}-{i}", agent="fine", ended_at=at(day + 0.2 + i / 10)))
        for i in range(5):
            runs.append(record(f"quiet-{day}-{i}", agent="quiet", ended_at=at(day + 0.3 + i / 100)))
    kinds = {1: "tests_failed", 2: "tests_failed", 3: "tests_failed", 4: "timeout", 5: "timeout"}
    for k in range(6):
        runs.append(record(f"fine-now-{k}", agent="fine", ended_at=at(13 + k / 10)))
        runs.append(
            record(
                f"steady-now-{k}",
                agent="steady",
                ended_at=at(13.05 + k / 10),
                status="success" if k == 0 else "timeout" if k >= 4 else "failure",
                error_type=kinds.get(k),
                error_summary=f"step {k} failed\nlong trace" if k else None,
            )
        )
    for at_day in (13.2, 13.6):
        runs.append(
            record(
                f"steady-cancelled-{at_day}",
                agent="steady",
                ended_at=at(at_day),
                status="cancelled",
                error_type="superseded",
                error_summary="a newer commit superseded the run",
            )
        )
    return runs


def health(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/health", params={"to": at(14), **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_health_finds_the_incident(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        body = health(client)
    assert body["status"] == "degraded"
    assert (body["window"]["from"], body["window"]["to"]) == (at(13), at(14))
    assert (body["baseline"]["from"], body["baseline"]["to"]) == (at(6), at(13))
    totals = body["totals"]
    assert (totals["runs"], totals["cancelled"], totals["attempts"]) == (14, 2, 12)
    assert (totals["successes"], totals["failures"]) == (7, 5)
    assert totals["success_rate"] == pytest.approx(7 / 12)
    assert body["baseline_totals"]["runs"] == 63


def test_health_reports_the_failure_streak(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        streaks = health(client)["failure_streaks"]
    # the cancelled runs neither break the streak (at 13.2, between failures) nor end or extend it
    # (at 13.6, the agent's latest run); their error_type is not among the streak's
    assert streaks == [
        {
            "agent": "steady",
            "failures": 5,
            "since": at(13.15),
            "last": at(13.55),
            "at_least": False,
            "cancelled": 2,
            "error_types": ["tests_failed", "timeout"],
        }
    ]


def test_only_cancelled_runs_after_a_success_are_no_streak(
    store_url: str, registry: CollectorRegistry
) -> None:
    runs = [record("ok", agent="solo", ended_at=at(13.1))]
    runs += [
        record(f"stopped-{k}", agent="solo", ended_at=at(13.2 + k / 10), status="cancelled") for k in range(4)
    ]
    with make_client(store_url, registry) as client:
        post(client, runs)
        body = health(client, min_streak=1)
    assert (body["failure_streaks"], body["errors"], body["most_recent_failure"]) == ([], [], None)
    assert body["findings"] == [
        "Last 24h: 5 runs (4 cancelled, left out of the rate), 100% succeeded (1 of 1), 0 failed."
    ]


def test_health_groups_errors_by_type_with_the_latest_example(
    store_url: str, registry: CollectorRegistry
) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        errors = health(client)["errors"]
    assert [(e["error_type"], e["runs"], e["agents"]) for e in errors] == [
        ("tests_failed", 3, 1),
        ("timeout", 2, 1),
    ]  # the cancelled runs' "superseded" is no failure
    assert errors[0]["latest_run_id"] == "steady-now-3"
    assert errors[0]["latest_summary"] == "step 3 failed\nlong trace"
    assert errors[1]["statuses"] == {"timeout": 2}


def test_health_flags_anomalies_against_the_baseline(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        anomalies = health(client)["anomalies"]
    assert [(a["agent"], a["metric"]) for a in anomalies] == [
        ("quiet", "silence"),
        ("steady", "failure_rate"),
    ]
    quiet, steady = anomalies
    assert (quiet["window_value"], quiet["baseline_value"]) == (0, pytest.approx(5.0))
    assert steady["window_value"] == pytest.approx(5 / 6)  # not 5 of 8: cancelled runs are left out
    assert steady["baseline_value"] == 0.0
    assert steady["message"] == (
        "steady: failure rate 83% (5 of 6 runs, 2 cancelled left out) in the last 24h "
        "against 0% in the 7d before"
    )


def test_cancelled_runs_do_not_make_up_the_minimum_for_a_failure_rate_anomaly() -> None:
    def agent(runs: int, cancelled: int, successes: int) -> Aggregate:
        return Aggregate(runs=runs, cancelled=cancelled, successes=successes)

    rules = AnomalyRules(min_runs=5)
    # 4 failures and 20 cancelled runs: 24 runs, but 4 attempts, under the minimum of 5
    found = anomalies(
        {"a": agent(24, 20, 0)},
        {"a": agent(20, 0, 20)},
        rules=rules,
        window_seconds=DAY,
        baseline_seconds=WEEK,
    )
    assert found == []
    found = anomalies(
        {"a": agent(25, 20, 0)},
        {"a": agent(20, 0, 20)},
        rules=rules,
        window_seconds=DAY,
        baseline_seconds=WEEK,
    )
    assert [(a.metric, a.window_value) for a in found] == [("failure_rate", 1.0)]


def test_health_names_the_most_recent_failure_and_why(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        body = health(client)
    failure = body["most_recent_failure"]
    # not the newer cancelled run: a cancelled run is no failure
    assert body["last_run"]["run_id"] == "steady-cancelled-13.6"
    assert (failure["run_id"], failure["status"], failure["error_type"]) == (
        "steady-now-5",
        "timeout",
        "timeout",
    )
    assert failure["age_seconds"] > 0
    findings = body["findings"]
    assert (
        findings[0]
        == "Last 24h: 14 runs (2 cancelled, left out of the rate), 58% succeeded (7 of 12), 5 failed."
    )
    assert findings[1].startswith("steady has failed its last 5 runs (2 cancelled runs ignored), since ")
    assert findings[1].endswith("; error types: tests_failed, timeout.")
    assert "quiet: no runs in the last 24h; about 5 expected from the 35 runs of the 7d before." in findings
    assert any(f.startswith("Most recent failure: run steady-now-5 (steady)") for f in findings)
    assert any(f.endswith("timeout: step 5 failed.") for f in findings)


def test_health_of_a_quiet_day_is_ok(store_url: str, registry: CollectorRegistry) -> None:
    runs = [r for r in incident() if r["agent"] == "fine"]
    with make_client(store_url, registry) as client:
        post(client, runs)
        body = health(client)
    assert body["status"] == "ok"
    assert (body["anomalies"], body["failure_streaks"], body["errors"]) == ([], [], [])
    assert body["most_recent_failure"] is None
    assert body["findings"] == ["Last 24h: 6 runs, 100% succeeded (6 of 6), 0 failed."]


def test_health_of_an_empty_store_is_no_data(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        body = health(client)
    assert body["status"] == "no data"
    assert body["last_run"] is None


def test_health_window_can_be_given_as_from(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        body = health(client, **{"from": at(13.5)}, baseline="1d")
    # fine-now-5 at 13.5, steady-now-5 at 13.55 and the cancelled run at 13.6
    assert (body["totals"]["runs"], body["totals"]["attempts"]) == (3, 2)
    assert (body["baseline"]["from"], body["baseline"]["to"]) == (at(12.5), at(13.5))


def test_health_rejects_a_bad_window(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        response = client.get("/api/v1/health", params={"window": "a while"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("window: ")
