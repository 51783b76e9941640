"""GET /api/v1/trends (rolling windows, Theil-Sen) and /api/v1/health (the operational digest)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from .conftest import make_client
from .readfixtures import at, post
from .support import record


def week_of_runs(days: range) -> list[dict[str, Any]]:
    """Ten runs a day on `days` (k-th day counted from the first): 4+k succeed, each lasts 60 s, costs
    1.0 + 0.1·k USD and uses 10000 - 1000·k tokens. Success rate and cost rise, tokens fall."""
    runs = []
    for k, day in enumerate(days):
        for i in range(10):
            runs.append(
                record(
                    f"d{day}-{i}",
                    ended_at=at(day + 0.5 + i / 100),
                    status="success" if i < 4 + k else "failure",
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
    assert (week["days"], week["runs"], week["data_points"], week["status"]) == (7, 70, 7, "ok")
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
    assert m["cost_per_run_usd"]["current"] == pytest.approx(1.3)
    assert m["tokens_per_run"]["trend"] == "improving"
    assert m["tokens_per_run"]["slope_per_day"] == pytest.approx(-1000.0)


def test_longer_windows_see_the_same_days_over_a_longer_span(
    store_url: str, registry: CollectorRegistry
) -> None:
    with make_client(store_url, registry) as client:
        post(client, week_of_runs(range(7, 14)))
        body = trends(client)
    assert [(w["days"], w["runs"], w["data_points"]) for w in body["windows"]] == [
        (7, 70, 7),
        (30, 70, 7),
        (90, 70, 7),
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
    before at(14): fine 6 successes; steady 1 success then 5 failures; quiet nothing."""
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
    assert (totals["runs"], totals["successes"], totals["failures"]) == (12, 7, 5)
    assert body["baseline_totals"]["runs"] == 63


def test_health_reports_the_failure_streak(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        streaks = health(client)["failure_streaks"]
    assert streaks == [
        {
            "agent": "steady",
            "failures": 5,
            "since": at(13.15),
            "last": at(13.55),
            "at_least": False,
            "error_types": ["tests_failed", "timeout"],
        }
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
    ]
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
    assert steady["window_value"] == pytest.approx(5 / 6)
    assert steady["baseline_value"] == 0.0
    assert (
        steady["message"]
        == "steady: failure rate 83% (5 of 6 runs) in the last 24h against 0% in the 7d before"
    )


def test_health_names_the_most_recent_failure_and_why(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        body = health(client)
    failure = body["most_recent_failure"]
    assert (failure["run_id"], failure["status"], failure["error_type"]) == (
        "steady-now-5",
        "timeout",
        "timeout",
    )
    assert failure["age_seconds"] > 0
    findings = body["findings"]
    assert findings[0] == "Last 24h: 12 runs, 58% succeeded (5 did not)."
    assert findings[1].startswith("steady has failed its last 5 runs, since ")
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
    assert body["findings"] == ["Last 24h: 6 runs, 100% succeeded (0 did not)."]


def test_health_of_an_empty_store_is_no_data(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        body = health(client)
    assert body["status"] == "no data"
    assert body["last_run"] is None


def test_health_window_can_be_given_as_from(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, incident())
        body = health(client, **{"from": at(13.5)}, baseline="1d")
    assert body["totals"]["runs"] == 2  # fine-now-5 at 13.5 and steady-now-5 at 13.55
    assert (body["baseline"]["from"], body["baseline"]["to"]) == (at(12.5), at(13.5))


def test_health_rejects_a_bad_window(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        response = client.get("/api/v1/health", params={"window": "a while"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("window: ")
