"""The seeds' questions answered with exact numbers on runs built for the purpose: first-attempt
pipelines, debugging cycles per issue, retries per sub-agent, what failed runs cost, and scores
(per name, quality and collaboration composed by the layered strategies, trends)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from agent_exporter.cli import app

from .readfixtures import at, post
from .support import exporter, make_client, record


def issue(run_id: str, pipelines: list[str], cycles: int, **fields: Any) -> dict[str, Any]:
    """A run handling one issue: its pipeline attempts' statuses, `cycles` debugging cycles (the
    first `resolved`), sub-agents given in `fields`."""
    return record(
        run_id,
        pipeline_attempts=[{"status": s} for s in pipelines],
        debugging_cycles=[{"agent": "testing", "resolved": i == 0} for i in range(cycles)],
        **fields,
    )


#: four issues whose pipelines pass on the first attempt once (25 %), six debugging cycles (1.5 a
#: issue), testing retrying most (5 against coding's 2); the failed runs cost 3.00 of 4.00 USD
ISSUES = [
    issue(
        "i1",
        ["success"],
        0,
        ended_at=at(1),
        cost_usd=1.0,
        team="core",
        subagents=[{"name": "coding", "attempts": 1, "successes": 1}],
    ),
    issue(
        "i2",
        ["failure", "success"],
        1,
        ended_at=at(1.1),
        cost_usd=1.0,
        status="failure",
        team="core",
        subagents=[
            {"name": "coding", "attempts": 2, "successes": 1, "failures": 1, "retries": 1},
            {"name": "testing", "attempts": 3, "successes": 1, "failures": 2, "retries": 2},
        ],
    ),
    issue(
        "i3",
        ["error", "failure", "success"],
        2,
        ended_at=at(1.2),
        cost_usd=1.5,
        status="timeout",
        team="web",
        subagents=[{"name": "testing", "attempts": 4, "successes": 1, "failures": 3, "retries": 3}],
    ),
    issue(
        "i4",
        ["cancelled", "success"],
        3,
        ended_at=at(1.3),
        cost_usd=0.5,
        status="error",
        team="web",
        subagents=[{"name": "coding", "attempts": 2, "successes": 2, "retries": 1}],
    ),
    # a run that tracks no workflow counts in neither denominator
    record("plain", ended_at=at(1.4), cost_usd=0.0, team="web"),
]


@pytest.fixture
def api(store_url: str, registry: CollectorRegistry) -> Iterator[TestClient]:
    with make_client(store_url, registry) as client:
        post(client, ISSUES)
        yield client


def test_the_report_answers_seed_004_with_exact_numbers(api: TestClient) -> None:
    flow = api.get("/api/v1/report", params={"from": "2000-01-01"}).json()["workflow"]
    assert (flow["pipeline_runs"], flow["first_attempt_passed"], flow["first_attempt_pass_rate"]) == (
        4,
        1,
        0.25,
    )
    assert flow["pipeline_attempts"] == 8
    assert (flow["debugging_runs"], flow["debugging_cycles"], flow["debugging_cycles_per_issue"]) == (
        4,
        6,
        1.5,
    )
    assert flow["most_retries"] == "testing"
    assert [(s["name"], s["runs"], s["retries"], s["retries_per_run"]) for s in flow["subagents"]] == [
        ("testing", 2, 5, 2.5),
        ("coding", 3, 2, 2 / 3),
    ]
    assert (flow["cost_usd"], flow["failed_cost_usd"], flow["failed_cost_share"]) == (4.0, 3.0, 0.75)
    assert flow["failed_cost_sentence"] == "USD 3.00 of 4.00 went to runs that failed"


def test_the_answers_follow_the_filters(api: TestClient) -> None:
    flow = api.get("/api/v1/report", params={"from": "2000-01-01", "team": "web"}).json()["workflow"]
    assert (flow["pipeline_runs"], flow["first_attempt_passed"]) == (2, 0)
    assert flow["debugging_cycles_per_issue"] == 2.5
    assert [(s["name"], s["retries"]) for s in flow["subagents"]] == [("testing", 3), ("coding", 1)]


def test_success_rate_by_model_is_in_the_report(api: TestClient) -> None:
    [model] = api.get("/api/v1/report", params={"from": "2000-01-01"}).json()["by_model"]
    assert (model["model"], model["attempts"], model["successes"], model["success_rate"]) == (
        "claude-sonnet-4-5",
        5,
        2,
        0.4,
    )


def test_scores_compose_quality_and_collaboration_by_their_layers(api: TestClient) -> None:
    def score(run_id: str, *scores: dict[str, Any]) -> None:
        assert api.post(f"/api/v1/runs/{run_id}/scores", json={"scores": list(scores)}).status_code == 201

    score(
        "i1",
        {"name": "quality", "value": 0.9, "source": "review"},
        {"name": "quality", "value": 0.6, "source": "evaluation"},
    )
    score(
        "i2",
        {"name": "quality", "value": 0.7, "source": "review"},
        {"name": "collaboration", "value": 0.4, "source": "peer"},
    )
    score("i3", {"name": "helpfulness", "value": 0.8, "source": "peer"})
    body = api.get("/api/v1/summary", params={"from": "2000-01-01"}).json()["scores"]
    # review mean 0.8 (weight 0.4), evaluation 0.6 (0.3); peer, human and self have no evidence
    assert body["quality"] == pytest.approx((0.4 * 0.8 + 0.3 * 0.6) / 0.7)
    # peer 0.6 (mean of 0.4 and 0.8, weight 0.5); sub-agents 7 successes of 14 attempts (0.25);
    # debugging cycles 3 resolved of 6 (0.25)
    assert body["collaboration"] == pytest.approx(0.5 * 0.6 + 0.25 * 0.5 + 0.25 * 0.5)
    assert body["scores"] == 5
    assert [(n["name"], n["source"], n["scores"]) for n in body["by_name"]] == [
        ("quality", "review", 2),
        ("collaboration", "peer", 1),
        ("helpfulness", "peer", 1),
        ("quality", "evaluation", 1),
    ]
    teams = api.get("/api/v1/summary", params={"from": "2000-01-01", "group_by": "team"}).json()[
        "group_scores"
    ]
    assert [(t["key"], t["scores"], t["quality"]) for t in teams] == [
        ("core", 4, pytest.approx((0.4 * 0.8 + 0.3 * 0.6) / 0.7)),
        ("web", 1, None),
    ]


def test_score_weights_are_configuration(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry, scoring={"quality": {"review": 1.0, "self": 1.0}}) as client:
        post(client, [record("q", ended_at=at(1), quality_score=0.2)])
        client.post("/api/v1/runs/q/scores", json={"name": "quality", "value": 1.0, "source": "review"})
        assert client.get("/api/v1/summary", params={"from": "2000-01-01"}).json()["scores"]["quality"] == 0.6


def test_score_trends_need_five_days_and_then_find_the_direction(
    store_url: str, registry: CollectorRegistry
) -> None:
    with make_client(store_url, registry) as client:
        post(client, [record(f"d{d}", ended_at=at(d + 0.5)) for d in range(6)])
        for d in range(6):  # quality rising a tenth a day; collaboration on one day only
            client.post(f"/api/v1/runs/d{d}/scores", json={"name": "quality", "value": 0.3 + 0.1 * d})
        client.post("/api/v1/runs/d0/scores", json={"name": "collaboration", "value": 0.5})
        trends = client.get("/api/v1/trends", params={"to": at(6), "window": 90}).json()["scores"]
        by_name = {t["name"]: t for t in trends}
        assert by_name["quality"]["trend"] == "improving"
        assert by_name["quality"]["slope_per_day"] == pytest.approx(0.1)
        assert by_name["quality"]["data_points"] == 6
        assert by_name["collaboration"]["trend"] == "insufficient data"


def test_the_cli_report_and_show_print_the_answers(tmp_path: Path) -> None:
    with exporter(tmp_path) as server:
        response = httpx.post(f"{server.url}/api/v1/runs", json={"runs": ISSUES})
        assert response.json()["accepted"] == len(ISSUES)
        httpx.post(
            f"{server.url}/api/v1/runs/i1/scores", json={"name": "quality", "value": 0.9, "source": "review"}
        )
        env = {"AGENT_EXPORTER_URL": server.url, "COLUMNS": "200"}
        report = CliRunner().invoke(app, ["report", "--from", "2000-01-01"], env=env)
        assert report.exit_code == 0, report.output
        assert "USD 3.00 of 4.00 went to runs that failed (75.0%)" in report.output
        assert "pipelines passing on the first attempt: 25.0% (1 of 4 issues, 8 attempts)" in report.output
        assert "debugging cycles per issue: 1.50 (6 cycles over 4 issues)" in report.output
        assert "retries per sub-agent (most: testing)" in report.output
        assert "scores: 1 score; quality 0.90" in report.output
        show = CliRunner().invoke(app, ["show", "i3"], env=env)
        assert show.exit_code == 0, show.output
        assert "pipeline attempts, in order" in show.output
        assert "sub-agents" in show.output
        runs = CliRunner().invoke(app, ["runs", "--json", "--from", "2000-01-01"], env=env)
        assert {r["run_id"]: r["counts"] for r in json.loads(runs.output)["runs"]}["i1"] == {}


def test_the_web_report_page_answers_seed_004(api: TestClient) -> None:
    html = api.get("/report?range=all", headers={"accept": "text/html"}).text
    section = html[html.index('id="workflow-h"') :]
    assert "USD 3.00 of 4.00 went to runs that failed (75.0%)" in section
    assert "25.0% (1 of 4 issues)" in section
    assert "1.50 (6 cycles over 4 issues)" in section
    assert "<dt>Most retries</dt><dd>testing</dd>" in section
